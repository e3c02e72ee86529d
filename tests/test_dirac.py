"""Tests for gan_stability.dirac and experiments/reproduce/dirac.py against the
closed forms of Mescheder, Geiger & Nowozin (ICML 2018).

The benchmark script runs once (module fixture, 300 iterations); the
convergence tests use the same settings so that its compiled simulations are
reused."""

import csv
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_stability import dirac

H = 0.2          # the paper's step size
STEPS = 300      # = the script's --quick
Z0 = (1.0, 1.0)  # the paper's initial point
CONVERGING = ('instance_noise', 'r1', 'r2', 'consensus')
NOT_CONVERGING = ('gan', 'nsgan', 'wgan', 'wgan_gp')


# The script's phase-portrait grid (21 x 21 points on [-2, 2]^2): evaluating
# the fields on it reuses the script's compiled functions.
_AXIS = np.linspace(-2.0, 2.0, 21)
GRID = np.stack([g.ravel() for g in np.meshgrid(_AXIS, _AXIS)], -1)


def _field(method, zs=GRID, **overrides):
  return np.asarray(dirac.vector_field_batch(
      jnp.asarray(zs, jnp.float32), method,
      hparams=dirac.default_hparams(method, **overrides)), np.float64)


# ---------------------------------------------------------------------------
# The benchmark script.
# ---------------------------------------------------------------------------
@pytest.fixture(scope='module')
def script_run(tmp_path_factory):
  from experiments.reproduce import dirac as script
  outdir = str(tmp_path_factory.mktemp('dirac'))
  rows = script.run(outdir, quick=True)
  return outdir, rows, script


def test_script_quick_writes_outputs(script_run):
  outdir, rows, script = script_run
  for name in ('dirac.md', 'dirac.csv', 'dirac.png'):
    assert os.path.getsize(os.path.join(outdir, name)) > 0
  with open(os.path.join(outdir, 'dirac.csv')) as f:
    csv_rows = list(csv.DictReader(f))
  assert len(csv_rows) == 2 * len(script.RUNS)
  numeric = [k for k in csv_rows[0] if k.endswith(('_norm', '_re', '_im'))
             or k.startswith(('min_norm', 'max_norm', 'update_spectral'))]
  assert len(numeric) >= 10
  for r in csv_rows:
    assert int(r['steps']) == script.QUICK_STEPS
    for k in numeric:
      assert math.isfinite(float(r[k])), (r['label'], k, r[k])
  assert all(r['agrees'] == 'True' for r in csv_rows)
  with open(os.path.join(outdir, 'dirac.md')) as f:
    md = f.read()
  for label, *_ in script.RUNS:
    assert f'| {label} |' in md
  paper_table, games_table = md.split('Game updates through the real train '
                                     'step')
  assert '| no |' not in paper_table  # the "agrees" column
  # The second table (the game updates through the train step):
  # convergence as expected for every game.
  with open(os.path.join(outdir, 'dirac_games.csv')) as f:
    games = list(csv.DictReader(f))
  assert len(games) == len(script.GAME_RUNS)
  assert all(g['converged'] == g['expected'] for g in games)
  assert all(f"| {g['method']} |" in games_table for g in games)
  import matplotlib.image
  img = matplotlib.image.imread(os.path.join(outdir, 'dirac.png'))
  assert img.ndim == 3 and img.shape[0] > 500 and img.shape[1] > 500


def test_script_rows_match_paper(script_run):
  _, rows, _ = script_run
  by = {(r['label'], r['scheme']): r for r in rows}
  for (label, scheme), r in by.items():
    assert r['converged'] == r['paper_converges'], (label, scheme)
    rho = r['update_spectral_radius_jacfwd']
    assert rho == pytest.approx(r['update_spectral_radius_analytic'],
                                rel=1e-5)
    if r['paper_converges']:
      assert rho < 1
    else:
      assert rho >= 1 - 1e-6
  assert by[('gan', 'simultaneous')]['behaviour'] == 'spirals out'
  assert by[('gan', 'alternating')]['behaviour'] == 'oscillates'
  assert by[('r1_critical', 'simultaneous')]['eig_analytic'] == '−0.5, −0.5'


# ---------------------------------------------------------------------------
# The vector fields built from the library's losses/penalties equal the
# paper's closed forms (this also pins the sign convention).
# ---------------------------------------------------------------------------
def _fp(t):   # f'(t) for f(t) = -log(1 + exp(-t))
  return 1.0 / (1.0 + np.exp(t))


def _fpp(t):  # f''(t)
  s = 1.0 / (1.0 + np.exp(-t))
  return -s * (1.0 - s)


def test_paper_f_derivatives_at_zero():
  assert float(jax.grad(dirac.f_gan)(0.0)) == pytest.approx(
      dirac.F_PRIME_0['gan'])
  assert float(jax.grad(jax.grad(dirac.f_gan))(0.0)) == pytest.approx(
      dirac.F_SECOND_0['gan'])
  assert float(jax.grad(dirac.f_wgan)(0.0)) == 1.0


@pytest.mark.parametrize('method', dirac.METHODS)
def test_vector_field_closed_form(method):
  hp = dirac.default_hparams(method)
  got = _field(method)
  for (theta, psi), v in zip(GRID, got):
    if method == 'wgan_gp' and abs(psi) < 0.05:
      continue  # the library's sqrt(psi^2 + 1e-12) floor; see the module doc
    t = psi * theta
    if method in ('gan', 'r1', 'r2'):
      want = [-psi * _fp(t), theta * _fp(t)]
      if method != 'gan':
        want[1] -= hp.gamma * psi
    elif method == 'nsgan':
      want = [-psi * _fp(-t), theta * _fp(t)]
    elif method == 'wgan':
      want = [-psi, theta]
    elif method == 'wgan_gp':
      want = [-psi, theta - hp.gamma * (abs(psi) - hp.target) * np.sign(psi)]
    elif method == 'consensus':
      # w = v - gamma grad(1/2 (theta^2 + psi^2) f'(t)^2).
      r2 = theta**2 + psi**2
      want = [-psi * _fp(t) - hp.gamma * (
          theta * _fp(t)**2 + r2 * _fp(t) * _fpp(t) * psi),
              theta * _fp(t) - hp.gamma * (
                  psi * _fp(t)**2 + r2 * _fp(t) * _fpp(t) * theta)]
    else:  # instance noise: Gauss-Hermite expectation (40 nodes)
      x, w = np.polynomial.hermite_e.hermegauss(40)
      w = w / w.sum()
      e = hp.sigma * x
      want = [np.sum(w * -psi * _fp(psi * (theta + e))),
              np.sum(w * ((theta + e) * _fp(psi * (theta + e))
                          - e * _fp(-psi * e)))]
    # instance noise: 256 equal-weight quantile nodes vs the exact expectation
    tol = 1.5e-3 if method == 'instance_noise' else 1e-5
    np.testing.assert_allclose(v, want, atol=tol * max(1.0, np.abs(want).max()))


def test_gan_field_is_orthogonal_to_z():
  """[1, Lemma 2.3]: the continuous flow keeps theta^2 + psi^2 constant."""
  np.testing.assert_allclose(np.sum(GRID * _field('gan'), -1), 0.0, atol=1e-5)


def test_r1_equals_r2_on_dirac():
  """grad_x D_psi = psi everywhere: R1 and R2 are both gamma/2 psi^2."""
  np.testing.assert_allclose(_field('r1'), _field('r2'), atol=1e-7)


def test_noise_nodes_moments():
  z = np.asarray(dirac.noise_nodes(256), np.float64)
  assert abs(z.mean()) < 1e-7
  assert np.mean(z**2) == pytest.approx(1.0, abs=1e-6)


def test_unknown_method_raises():
  with pytest.raises(ValueError, match='unknown method'):
    dirac.vector_field(jnp.zeros(2), 'lsgan')
  with pytest.raises(ValueError, match='unknown scheme'):
    dirac.simulate('gan', steps=3, lr=H, scheme='leapfrog')


# ---------------------------------------------------------------------------
# Jacobians and eigenvalues at the equilibrium.
# ---------------------------------------------------------------------------
CASES = [(m, {}) for m in dirac.METHODS] + [('r1', {'gamma': 1.0}),
                                             ('consensus', {'gamma': 0.3}),
                                             ('instance_noise', {'sigma': 2.0})]


@pytest.mark.parametrize('method,overrides', CASES)
def test_jacfwd_equals_analytic_jacobian(method, overrides):
  hp = dirac.default_hparams(method, **overrides)
  jac = dirac.jacobian_at_equilibrium(method, hparams=hp)
  want = dirac.analytic_jacobian(method, hparams=hp)
  np.testing.assert_allclose(jac, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('method,overrides', CASES)
def test_eigenvalues_closed_form(method, overrides):
  hp = dirac.default_hparams(method, **overrides)
  closed = dirac.analytic_eigenvalues(method, hparams=hp)
  np.testing.assert_allclose(
      closed, dirac.eigenvalues(dirac.analytic_jacobian(method, hparams=hp)),
      rtol=1e-6, atol=1e-6)
  # A repeated eigenvalue (critical damping) moves by ~sqrt(float32 error).
  atol = 1e-3 if overrides.get('gamma') == 1.0 and method == 'r1' else 1e-5
  np.testing.assert_allclose(
      closed, dirac.eigenvalues(dirac.jacobian_at_equilibrium(
          method, hparams=hp)), rtol=1e-5, atol=atol)
  re = closed.real.max()
  if method in ('gan', 'nsgan', 'wgan'):
    assert abs(re) < 1e-12             # on the imaginary axis
  elif method == 'wgan_gp':
    assert closed.real.min() > 0       # repelling node (smoothed penalty)
  else:
    assert re < 0                      # locally attracting


def test_paper_eigenvalue_formulas():
  a = 0.5
  np.testing.assert_allclose(dirac.analytic_eigenvalues('gan'), [-a * 1j, a * 1j])
  hp = dirac.default_hparams('r1', gamma=0.3)
  want = -0.15 + np.array([-1, 1]) * 1j * math.sqrt(a**2 - 0.15**2)
  np.testing.assert_allclose(dirac.analytic_eigenvalues('r1', hparams=hp), want)
  hp = dirac.default_hparams('instance_noise', sigma=0.7)
  b = -0.25 * 0.49
  want = b + np.array([-1, 1]) * 1j * math.sqrt(a**2 - b**2)
  np.testing.assert_allclose(
      dirac.analytic_eigenvalues('instance_noise', hparams=hp), want)
  np.testing.assert_allclose(dirac.analytic_eigenvalues('consensus'),
                             [-0.25 - 0.5j, -0.25 + 0.5j])


def test_critical_damping_at_gamma_one():
  """R1/R2: eigenvalues real and equal iff gamma = 2|f'(0)| = 1."""
  assert dirac.critical_gamma('r1') == 1.0
  jac = dirac.jacobian_at_equilibrium(
      'r1', hparams=dirac.default_hparams('r1', gamma=1.0))
  disc = np.trace(jac)**2 - 4 * np.linalg.det(jac)
  assert abs(disc) < 1e-6
  np.testing.assert_allclose(np.trace(jac) / 2, -0.5, atol=1e-7)
  eig = lambda g: dirac.analytic_eigenvalues(
      'r1', hparams=dirac.default_hparams('r1', gamma=g))
  np.testing.assert_allclose(eig(1.0), [-0.5, -0.5], atol=1e-12)
  assert np.all(np.abs(eig(0.9).imag) > 0)          # under-damped: complex
  e = eig(1.1)
  assert np.all(e.imag == 0) and e[0].real < e[1].real < 0  # over-damped
  # gamma = 1 gives the fastest local decay (smallest max real part).
  gammas = np.linspace(0.1, 3.0, 291)
  abscissa = [eig(g).real.max() for g in gammas]
  assert gammas[int(np.argmin(abscissa))] == pytest.approx(1.0)


@pytest.mark.parametrize('method', ['gan', 'wgan', 'r1'])
@pytest.mark.parametrize('scheme', dirac.SCHEMES)
def test_update_jacobian(method, scheme):
  """jacfwd of the real update step = the linear operator of the analytic J."""
  got = dirac.update_jacobian_at_equilibrium(method, lr=H, scheme=scheme)
  want = dirac.linear_update_operator(dirac.analytic_jacobian(method), lr=H,
                                      scheme=scheme)
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_gan_update_eigenvalues_lemmas_2_4_and_2_5():
  a = 0.5
  sim = dirac.analytic_update_eigenvalues('gan', lr=H, scheme='simultaneous')
  np.testing.assert_allclose(sim, [1 - 1j * H * a, 1 + 1j * H * a])
  assert np.all(np.abs(sim) > 1)  # Lemma 2.4: not locally convergent
  for n_g, n_d, h in ((1, 1, H), (1, 3, H), (2, 2, 1.5)):
    alpha = math.sqrt(n_g * n_d) * h * a
    c = 1 - alpha**2 / 2
    want = dirac.sort_complex([c - np.sqrt(complex(c * c - 1)),
                               c + np.sqrt(complex(c * c - 1))])
    got = dirac.analytic_update_eigenvalues('gan', lr=h, n_g=n_g, n_d=n_d)
    np.testing.assert_allclose(got, want, atol=1e-12)
    np.testing.assert_allclose(np.abs(got), 1.0, atol=1e-12)  # alpha <= 2
  got = dirac.analytic_update_eigenvalues('gan', lr=5.0)        # alpha = 2.5
  assert np.abs(got).max() > 1


# ---------------------------------------------------------------------------
# Trajectories.
# ---------------------------------------------------------------------------
def _norms(method, scheme, steps=STEPS, **overrides):
  traj = dirac.simulate(method, Z0, steps=steps, lr=H, scheme=scheme,
                        hparams=dirac.default_hparams(method, **overrides))
  traj = np.asarray(traj, np.float64)
  assert traj.shape == (steps + 1, 2) and np.all(np.isfinite(traj))
  return traj, np.linalg.norm(traj, axis=-1)


@pytest.mark.parametrize('method', CONVERGING)
@pytest.mark.parametrize('scheme', dirac.SCHEMES)
def test_regularised_methods_converge(method, scheme):
  _, n = _norms(method, scheme)
  assert n[-1] < dirac.CONVERGENCE_TOL
  # the norm decreases over the run (checked on windows of 30 iterations)
  windows = n[: (len(n) // 30) * 30].reshape(-1, 30).max(axis=1)
  assert np.all(np.diff(windows) < 0)


@pytest.mark.parametrize('scheme', dirac.SCHEMES)
def test_critical_r1_converges_fastest(scheme):
  _, n_crit = _norms('r1', scheme, gamma=1.0)
  _, n_paper = _norms('r1', scheme)
  assert n_crit[-1] < 1e-6 and n_crit[-1] < n_paper[-1]


@pytest.mark.parametrize('method', NOT_CONVERGING)
@pytest.mark.parametrize('scheme', dirac.SCHEMES)
def test_unregularised_methods_do_not_converge(method, scheme):
  _, n = _norms(method, scheme)
  assert n[-1] > 10 * dirac.CONVERGENCE_TOL
  second_half = n[len(n) // 2:]
  if method == 'gan':
    assert second_half.min() >= 0.9 * n[0]   # stays at >= ~ the initial norm
  elif method == 'wgan':
    # Clipping |psi| <= 1 cuts the initial orbit (radius sqrt 2) down to the
    # unit circle, the largest orbit inside the constraint; it stays there.
    assert second_half.min() >= 0.9
  elif method == 'wgan_gp':
    assert second_half.min() >= 0.5 * n[0]


def test_gan_simultaneous_spirals_out():
  """[1, Lemma 2.4]: r_{k+1}^2 = r_k^2 (1 + h^2 f'(psi theta)^2) exactly."""
  traj, n = _norms('gan', 'simultaneous')
  theta, psi = traj[:-1, 0], traj[:-1, 1]
  ratio = n[1:]**2 / n[:-1]**2
  np.testing.assert_allclose(ratio, 1 + H**2 * _fp(psi * theta)**2, rtol=1e-5)
  assert np.all(np.diff(n) > 0)
  assert dirac.describe(traj)['behaviour'] == 'spirals out'


def test_wgan_clipping_holds():
  for scheme in dirac.SCHEMES:
    traj, _ = _norms('wgan', scheme)
    assert np.abs(traj[:, 1]).max() <= 1.0 + 1e-6


