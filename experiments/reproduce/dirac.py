r"""Dirac-GAN benchmark: which training methods converge? (Mescheder et al. 2018)

    python -m experiments.reproduce.dirac --outdir=DIR [--quick] [--steps=N] [--lr=H]

For every method of :mod:`gan_stability.dirac` (GAN, non-saturating GAN,
WGAN with clipping, WGAN-GP, instance noise, R1, R1 at the critical
``gamma = 1``, R2, consensus optimisation) this runs simultaneous and
alternating gradient descent (one generator and one discriminator update per
iteration) from the paper's initial point ``(theta, psi) = (1, 1)`` with the
step size ``h = 0.2`` and the hyper-parameters of the paper's Dirac-GAN figure
(the authors' ``notebooks/DiracGAN.ipynb``: ``h = 0.2``, 500 iterations).
``--quick`` runs 300 iterations instead.

A run *converges* when ``||(theta, psi)|| < 1e-2`` after N iterations (the
start is at norm ``sqrt 2``). The table also gives the eigenvalues of the
Jacobian of the vector field at the equilibrium (0, 0), in closed form from
the paper and by ``jax.jacfwd``, and the spectral radius of the linearised
update operator (``< 1``: locally convergent at this step size), and compares
our verdict with the paper's.

Writes ``dirac.md`` (the table), ``dirac.csv`` (one row per run and scheme)
and ``dirac.png`` (phase portraits: streamlines of each vector field with
both trajectories) to ``--outdir`` and prints the table. Runs in seconds on a
CPU.
"""

from __future__ import annotations

import csv
import os
import time

import numpy as np
from absl import flags

from experiments import entry

FLAGS = flags.FLAGS
STEPS, QUICK_STEPS, LR = 500, 300, 0.2


def define_flags(flag_values=FLAGS):
  """Defines the command-line flags (only when run as a script, so that
  importing :func:`run` elsewhere defines no global flags)."""
  flags.DEFINE_string('outdir', '/tmp/gan_stability_dirac', 'Output directory.',
                      flag_values=flag_values)
  flags.DEFINE_bool('quick', False,
                    f'Fewer iterations ({QUICK_STEPS} instead of {STEPS}).',
                    flag_values=flag_values)
  flags.DEFINE_integer('steps', None, 'Iterations per run (overrides --quick).',
                       flag_values=flag_values)
  flags.DEFINE_float('lr', LR, 'Step size h of gradient descent.',
                     flag_values=flag_values)
Z0 = (1.0, 1.0)

# (label, method, hyper-parameter overrides of the paper's defaults, the
# paper's verdict, where the paper says so).
RUNS = (
    ('gan', 'gan', {}, False,
     'no: sim. GD spirals out (L2.4), alt. GD cycles (L2.5)'),
    ('nsgan', 'nsgan', {}, False,
     'no: same Jacobian as GAN, eigenvalues on the imaginary axis (L2.2, Fig. 3)'),
    ('wgan', 'wgan', {}, False, 'no (L3.1)'),
    ('wgan_gp', 'wgan_gp', {}, False, 'no (L3.2)'),
    ('instance_noise', 'instance_noise', {}, True, 'yes (L3.4)'),
    ('r1', 'r1', {}, True, 'yes (L3.5, Thm 4.1)'),
    ('r1_critical', 'r1', {'gamma': 1.0}, True,
     'yes, critically damped (L3.5)'),
    ('r2', 'r2', {}, True, 'yes (L3.5, Thm 4.1)'),
    ('consensus', 'consensus', {}, True, 'yes (L3.3)'),
)


def _setting(method: str, hp) -> str:
  if method in ('r1', 'r2', 'consensus'):
    return f'γ={hp.gamma:g}'
  if method == 'wgan_gp':
    return f'γ={hp.gamma:g}, g0={hp.target:g}'
  if method == 'wgan':
    return f'clip={hp.clip:g}'
  if method == 'instance_noise':
    return f'σ={hp.sigma:g}'
  return '—'


def format_eigs(eigs) -> str:
  """``a ± bi`` for a conjugate pair, else ``a, b`` (4 significant digits)."""
  e = np.asarray(eigs, np.complex128)
  g = lambda x: f'{x:.4g}'.replace('-', '−')
  if abs(e[0].imag) > 1e-9 and np.allclose(e[0], np.conj(e[1]), atol=1e-6):
    re = 0.0 if abs(e[0].real) < 5e-7 else e[0].real
    return f'{g(re)} ± {g(abs(e[0].imag))}i'
  return ', '.join(g(x.real) for x in e)


def run(outdir: str, *, quick: bool = False, steps: int | None = None,
        lr: float = LR) -> list[dict]:
  """Runs the benchmark; writes dirac.md/csv/png; returns the CSV rows."""
  from gan_stability import dirac  # pylint: disable=g-import-not-at-top

  steps = steps or (QUICK_STEPS if quick else STEPS)
  os.makedirs(outdir, exist_ok=True)
  start = time.time()
  rows, panels = [], []
  for label, method, overrides, paper_conv, paper_text in RUNS:
    hp = dirac.default_hparams(method, **overrides)
    eig_analytic = dirac.analytic_eigenvalues(method, hparams=hp)
    jac = dirac.jacobian_at_equilibrium(method, hparams=hp)
    eig_jac = dirac.eigenvalues(jac)
    trajs = {}
    for scheme in dirac.SCHEMES:
      traj = np.asarray(dirac.simulate(method, Z0, steps=steps, lr=lr,
                                       scheme=scheme, hparams=hp))
      trajs[scheme] = traj
      info = dirac.describe(traj)
      rho = np.abs(dirac.eigenvalues(dirac.linear_update_operator(
          jac, lr=lr, scheme=scheme))).max()
      rho_analytic = np.abs(dirac.analytic_update_eigenvalues(
          method, lr=lr, scheme=scheme, hparams=hp)).max()
      rows.append({
          'label': label, 'method': method, 'setting': _setting(method, hp),
          'scheme': scheme, 'lr': lr, 'steps': steps,
          **info,
          'paper_converges': paper_conv,
          'agrees': info['converged'] == paper_conv,
          'paper': paper_text,
          'eig_analytic': format_eigs(eig_analytic),
          'eig_jacfwd': format_eigs(eig_jac),
          'eig_analytic_1_re': eig_analytic[0].real,
          'eig_analytic_1_im': eig_analytic[0].imag,
          'eig_analytic_2_re': eig_analytic[1].real,
          'eig_analytic_2_im': eig_analytic[1].imag,
          'eig_jacfwd_1_re': eig_jac[0].real, 'eig_jacfwd_1_im': eig_jac[0].imag,
          'eig_jacfwd_2_re': eig_jac[1].real, 'eig_jacfwd_2_im': eig_jac[1].imag,
          'update_spectral_radius_jacfwd': float(rho),
          'update_spectral_radius_analytic': float(rho_analytic),
      })
    panels.append((label, method, hp, trajs))

  table = markdown_table(rows, steps=steps, lr=lr)
  games = game_rows(steps=min(steps * 4, GAME_STEPS))
  table += '\n' + game_table(games)
  with open(os.path.join(outdir, 'dirac.md'), 'w') as f:
    f.write(table)
  with open(os.path.join(outdir, 'dirac_games.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(games[0]))
    writer.writeheader()
    writer.writerows(games)
  with open(os.path.join(outdir, 'dirac.csv'), 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  plot_phase_portraits(os.path.join(outdir, 'dirac.png'), panels)
  print(table, flush=True)
  print(f'wrote {outdir}/dirac.md, dirac.csv, dirac_games.csv, dirac.png '
        f'({time.time() - start:.1f} s)', flush=True)
  return rows


def markdown_table(rows: list[dict], *, steps: int, lr: float) -> str:
  by = {}
  for r in rows:
    by.setdefault(r['label'], {})[r['scheme']] = r
  yn = lambda b: 'yes' if b else 'no'
  lines = [
      f'Dirac-GAN (Mescheder et al. 2018), start (θ, ψ) = (1, 1), '
      f'h = {lr:g}, {steps} iterations (1 G + 1 D update each); '
      f'converges = ‖(θ, ψ)‖ < 1e-2 at the end. sim = simultaneous GD, '
      f'alt = alternating GD. Eigenvalues: of the Jacobian of the vector '
      f'field at (0, 0); ρ: spectral radius of the linearised update '
      f'(from the jacfwd Jacobian; < 1 = locally convergent at this h). '
      f'L = Lemma of the paper.',
      '',
      '| method | setting | ‖z_N‖ sim | ‖z_N‖ alt | behaviour sim / alt '
      '| converges (ours) sim / alt | paper | agrees | eig. analytic '
      '| eig. jacfwd | ρ sim / alt |',
      '|---|---|---|---|---|---|---|---|---|---|---|',
  ]
  for label, d in by.items():
    s, a = d['simultaneous'], d['alternating']
    lines.append(
        f"| {label} | {s['setting']} | {s['final_norm']:.3g} "
        f"| {a['final_norm']:.3g} | {s['behaviour']} / {a['behaviour']} "
        f"| {yn(s['converged'])} / {yn(a['converged'])} | {s['paper']} "
        f"| {yn(s['agrees'] and a['agrees'])} | {s['eig_analytic']} "
        f"| {s['eig_jacfwd']} | {s['update_spectral_radius_jacfwd']:.4g} / "
        f"{a['update_spectral_radius_jacfwd']:.4g} |")
  lines += [
      '',
      '* Settings are those of the paper\'s Dirac-GAN figure (authors\' '
      'notebook; the paper\'s figure shows alternating GD).',
      '* wgan_gp: ‖∇D‖ = |ψ| is not differentiable at ψ = 0 and the penalty '
      'pulls |ψ| to g0, so the exact field has no Jacobian at (0, 0); the '
      'eigenvalues shown are those of the library\'s smoothed norm '
      '√(ψ² + 1e-12) (a repelling node).',
      '* nsgan: same Jacobian as the GAN. Simultaneous GD settles on a limit '
      'cycle; alternating GD only decays algebraically (the continuous flow '
      'loses ‖z‖² at a rate ∝ ‖z‖⁴), nowhere near the threshold.',
      '* r1 and r2 coincide on the Dirac-GAN (∇ₓD = ψ for every x); '
      'r1_critical is γ = 2|f′(0)| = 1, where the eigenvalues are real and '
      'equal.',
  ]
  return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------------------
# The game updates through the library's real train step.
# ---------------------------------------------------------------------------
# (method, consensus gamma, converges?) of the train-step table: the game
# updates of gan_stability.game.joint_update as config.game, with SGD.
GAME_RUNS = (('simultaneous', None, False), ('alternating', None, False),
             ('consensus', 1.0, True), ('extragradient', None, True),
             ('optimistic', None, True))
GAME_LR, GAME_STEPS = 0.3, 2000


def dirac_modules():
  """The Dirac-GAN as Flax modules of the train step's interface: G has one
  parameter ``theta`` and puts all its mass there, ``G(z) = theta`` for every
  ``z``; ``D(x) = psi x``. Both start at 0 (the step's linearisation is taken
  there; trajectories set their own start)."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  class DiracG(nn.Module):

    @nn.compact
    def __call__(self, z, *, train=False):
      del train
      theta = self.param('theta', nn.initializers.zeros, ())
      return jnp.broadcast_to(theta, (z.shape[0], 1))

  class DiracD(nn.Module):

    @nn.compact
    def __call__(self, x, *, update_stats=False, train=False):
      del update_stats, train
      return self.param('psi', nn.initializers.zeros, ()) * x[:, 0]

  return DiracG(), DiracD()


def game_config(method: str, *, lr: float = GAME_LR,
                gamma: float | None = None):
  """A validated GAN config of the Dirac-GAN: the non-saturating loss (the
  GAN's Jacobian at the equilibrium, ``f'(0) = 1/2``), no penalty, SGD with
  rate ``lr`` for both players, ``n_critic = 1``, ``config.game = method``."""
  from experiments.configs import mog  # pylint: disable=g-import-not-at-top
  from gan_stability import config as config_lib  # pylint: disable=g-import-not-at-top
  c = mog.get_config('nonsaturating')
  c.update(game=method, n_critic=1, batch_size=1)
  c.model.z_dim = 1
  c.optimizer.update(name='sgd', b1=0.0, g_lr=lr, d_lr=lr)
  if gamma is not None:
    c.consensus_gamma = gamma
  config_lib.validate(c, num_devices=1)
  return c


def game_step_map(method: str, *, lr: float = GAME_LR,
                  gamma: float | None = None):
  """``(f, dim)``: ``f(s) -> s'`` is one call of the library's train step
  (``gan_stability.train.gan.make_train_step``) on the Dirac-GAN, on the
  flat state ``s = (theta, psi)``, for ``optimistic`` ``(theta, psi,
  Delta_theta, Delta_psi)`` with the previous updates (not the first step)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_stability.train import gan  # pylint: disable=g-import-not-at-top

  config = game_config(method, lr=lr, gamma=gamma)
  g_mod, d_mod = dirac_modules()
  template = gan.init_state(config, g_mod, d_mod, jax.random.key(0), (1,))
  step = gan.make_train_step(config, g_mod, d_mod)
  batch = {'x': jnp.zeros((1, 1, 1), jnp.float32)}
  key = jax.random.key(0)
  optimistic = method == 'optimistic'

  def f(s):
    state = template.replace(
        step=jnp.int32(1 if optimistic else 0),
        g_params={'theta': s[0]}, d_params={'psi': s[1]},
        game_state=({'prev_g': {'theta': s[2]}, 'prev_d': {'psi': s[3]}}
                    if optimistic else None))
    new, _ = step(state, batch, key)
    out = [new.g_params['theta'], new.d_params['psi']]
    if optimistic:
      out += [new.game_state['prev_g']['theta'],
              new.game_state['prev_d']['psi']]
    return jnp.stack(out)

  return f, 4 if optimistic else 2


def analytic_game_eigenvalues(method: str, *, lr: float = GAME_LR,
                              gamma: float | None = None,
                              a: float = 0.5) -> np.ndarray:
  """Eigenvalues of the linearised step at the equilibrium, in closed form
  (``u = A w``, ``A`` with eigenvalues ``+- i a``, ``a = f'(0)``; see
  :mod:`gan_stability.game`): simultaneous ``1 +- i h a``; alternating the
  roots of ``l^2 - (2 - h^2 a^2) l + 1``; consensus
  ``1 - gamma h a^2 +- i h a``; extragradient ``1 - h^2 a^2 +- i h a``;
  optimistic, for ``mu = +- i a``, the roots of
  ``l^2 - (1 - 2 h mu) l - h mu``."""
  h = lr
  if method == 'simultaneous':
    e = [1 + 1j * h * a, 1 - 1j * h * a]
  elif method == 'alternating':
    e = np.roots([1, -(2 - h * h * a * a), 1])
  elif method == 'consensus':
    e = [1 - gamma * h * a * a + 1j * h * a, 1 - gamma * h * a * a - 1j * h * a]
  elif method == 'extragradient':
    e = [1 - h * h * a * a + 1j * h * a, 1 - h * h * a * a - 1j * h * a]
  elif method == 'optimistic':
    e = np.concatenate([np.roots([1, -(1 - 2 * h * mu), -h * mu])
                        for mu in (1j * a, -1j * a)])
  else:
    raise ValueError(f'unknown method {method!r}')
  return np.asarray(e, np.complex128)


def _sorted(e):
  e = np.asarray(e, np.complex128)
  return e[np.lexsort((np.round(e.imag, 9), np.round(e.real, 9)))]


def game_rows(*, lr: float = GAME_LR, steps: int = GAME_STEPS) -> list[dict]:
  """One row per method of :data:`GAME_RUNS`: ``steps`` train steps from
  ``(theta, psi) = (1, 1)`` (one compiled ``lax.scan`` of the step), the
  final norm, and the eigenvalues of ``jax.jacfwd`` of the step at the
  equilibrium against :func:`analytic_game_eigenvalues`."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top

  rows = []
  for method, gamma, expected in GAME_RUNS:
    f, dim = game_step_map(method, lr=lr, gamma=gamma)
    jac = np.asarray(jax.jacfwd(f)(jnp.zeros(dim, jnp.float32)), np.float64)
    got = _sorted(np.linalg.eigvals(jac))
    want = _sorted(analytic_game_eigenvalues(method, lr=lr, gamma=gamma))
    # The optimistic start: no previous update (the first step is a GD
    # step), expressed as Delta_{-1} = the first step's own update.
    s0 = jnp.asarray([1.0, 1.0] + ([0.0, 0.0] if dim == 4 else []))
    if dim == 4:
      first, _ = game_step_map('simultaneous', lr=lr)
      s1 = first(s0[:2])
      s0 = jnp.concatenate([s1, s1 - s0[:2]])
      n = steps - 1
    else:
      n = steps
    final = jax.jit(lambda s: jax.lax.fori_loop(0, n, lambda _, x: f(x),
                                                s))(s0)
    norm = float(jnp.linalg.norm(final[:2]))
    rows.append({
        'method': method,
        'setting': '—' if gamma is None else f'γ={gamma:g}',
        'lr': lr, 'steps': steps, 'final_norm': norm,
        'converged': norm < 1e-2, 'expected': expected,
        'spectral_radius': float(np.abs(got).max()),
        'eig_step_jacfwd': format_eigs_all(got),
        'eig_step_analytic': format_eigs_all(want),
        'eig_max_abs_error': float(np.abs(got - want).max()),
    })
  return rows


def format_eigs_all(eigs) -> str:
  """Every eigenvalue, conjugate pairs as ``a ± bi`` (4 significant
  digits)."""
  e = list(np.asarray(eigs, np.complex128))
  g = lambda x: f'{x:.4g}'.replace('-', '−')
  out = []
  while e:
    x = e.pop(0)
    mate = next((i for i, y in enumerate(e) if abs(y - np.conj(x)) < 1e-6
                 and abs(x.imag) > 1e-9), None)
    if mate is not None:
      e.pop(mate)
      out.append(f'{g(x.real)} ± {g(abs(x.imag))}i')
    else:
      out.append(g(x.real) if abs(x.imag) < 1e-9 else
                 f'{g(x.real)} {"+" if x.imag > 0 else "−"} '
                 f'{g(abs(x.imag))}i')
  return ', '.join(out)


def game_table(rows: list[dict]) -> str:
  yn = lambda b: 'yes' if b else 'no'
  r0 = rows[0]
  lines = [
      f'Game updates through the real train step '
      f'(`gan_stability.train.gan.make_train_step`, `config.game`), '
      f'Dirac-GAN as Flax modules, non-saturating loss, SGD h = '
      f'{r0["lr"]:g}, {r0["steps"]} steps from (θ, ψ) = (1, 1). '
      f'Eigenvalues: of `jax.jacfwd` of one train step at (0, 0) (optimistic: '
      f'on the state (θ, ψ, Δθ, Δψ)) and in closed form '
      f'(`analytic_game_eigenvalues`); ρ = spectral radius.',
      '',
      '| game | setting | ‖z_N‖ | converges | expected | ρ | eig. of the '
      'step (jacfwd) | eig. analytic | max error |',
      '|---|---|---|---|---|---|---|---|---|',
  ]
  for r in rows:
    lines.append(
        f"| {r['method']} | {r['setting']} | {r['final_norm']:.3g} "
        f"| {yn(r['converged'])} | {yn(r['expected'])} "
        f"| {r['spectral_radius']:.5g} | {r['eig_step_jacfwd']} "
        f"| {r['eig_step_analytic']} | {r['eig_max_abs_error']:.1e} |")
  return '\n'.join(lines) + '\n'


def plot_phase_portraits(path: str, panels, *, span: float = 2.0,
                         grid: int = 21):
  """One subplot per run: streamlines of ``v`` and both trajectories."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.colors  # pylint: disable=g-import-not-at-top
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  from gan_stability import dirac  # pylint: disable=g-import-not-at-top

  axis = np.linspace(-span, span, grid)
  tt, pp = np.meshgrid(axis, axis)
  points = jnp.asarray(np.stack([tt.ravel(), pp.ravel()], -1), jnp.float32)
  ncols = 3
  nrows = (len(panels) + ncols - 1) // ncols
  fig, axes = plt.subplots(nrows, ncols, figsize=(3.4 * ncols, 3.4 * nrows),
                           dpi=90, squeeze=False)
  for ax, (label, method, hp, trajs) in zip(axes.ravel(), panels):
    v = np.asarray(dirac.vector_field_batch(points, method, hparams=hp))
    v = v.reshape(grid, grid, 2)
    speed = np.hypot(v[..., 0], v[..., 1])
    ax.streamplot(axis, axis, v[..., 0], v[..., 1], color=speed,
                  cmap='Greys', norm=matplotlib.colors.Normalize(
                      -0.6 * speed.max(), speed.max()),
                  density=0.8, linewidth=0.6, arrowsize=0.7)
    if method == 'wgan':
      for sgn in (1, -1):
        ax.axhspan(sgn * hp.clip, sgn * span, color='tab:red', alpha=0.08,
                   linewidth=0)
    for scheme, style, color in (('simultaneous', '--', 'tab:orange'),
                                 ('alternating', '-', 'tab:blue')):
      t = np.clip(trajs[scheme], -span, span)
      ax.plot(t[:, 0], t[:, 1], style, color=color, linewidth=1.0,
              label=scheme)
    ax.plot([1.0], [1.0], 'o', color='k', markersize=3)
    ax.plot([0.0], [0.0], '*', color='tab:green', markersize=8)
    ax.set_xlim(-span, span)
    ax.set_ylim(-span, span)
    ax.set_aspect('equal')
    ax.set_title(f'{label} ({_setting(method, hp)})', fontsize=9)
    ax.set_xlabel('θ', fontsize=8)
    ax.set_ylabel('ψ', fontsize=8)
    ax.tick_params(labelsize=7)
  for ax in axes.ravel()[len(panels):]:
    ax.axis('off')
  axes.ravel()[0].legend(fontsize=7, loc='lower left')
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'steps')
  if not FLAGS.lr > 0:
    entry.fail(f'--lr: expected > 0, got {FLAGS.lr}')
  run(FLAGS.outdir, quick=FLAGS.quick, steps=FLAGS.steps, lr=FLAGS.lr)


if __name__ == '__main__':
  define_flags()
  entry.main(main)
