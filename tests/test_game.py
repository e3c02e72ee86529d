"""Tests for gan_stability.game: game-aware updates of the two players.

On the Dirac-GAN (Mescheder, Geiger & Nowozin, ICML 2018) the Jacobian of each
update step at the equilibrium is compared with its hand-derived eigenvalues,
and 2,000-step runs from (1, 1) with the expected behaviour; on a small
non-linear game with nested-dict parameters the methods are compared with
optax, with their definitions written out, and under jit.

Derivation of the Dirac-GAN gradients (G's parameter theta, D(x) = psi x,
f(t) = -log(1 + exp(-t)), f'(t) = sigmoid(-t), a := f'(0) = 1/2).
The paper's objective is L(theta, psi) = f(psi theta) + f(0); G minimises it,
D maximises it (minimises -L). The library's losses give exactly
g_loss = L - f(0) and d_loss = -L (dirac.py's sign convention), so each
player's gradient of its own loss is

    u(theta, psi) = (dL/dtheta, -dL/dpsi)
                  = (psi f'(theta psi), -theta f'(theta psi)),

which is minus the paper's field v = (-psi f'(psi theta), theta f'(psi theta)).
GD is w <- w - eta u. Near (0, 0), f'(theta psi) = a + O(|w|^2), so
u(w) = A w + O(|w|^3) with

    A = du/dw(0, 0) = [[0, a], [-a, 0]],   eigenvalues mu = -+ i a,
    A^2 = -a^2 I,   A^T A = a^2 I.

The Jacobian of a step at the fixed point (0, 0) is that of the step on the
linear field u = A w (derivations next to each test).
"""

import functools

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_stability import dirac, game

A0 = dirac.F_PRIME_0['gan']  # f'(0) = 1/2
GAMMA = 1.0                  # consensus weight (the paper's Dirac-GAN figure)
STEPS = 2000
Z0 = (1.0, 1.0)
# Step sizes of the 2,000-step runs. eta = 0.1 everywhere except for
# extragradient and optimistic GD: at eta = 0.1 their contraction per step at
# the equilibrium is only |lambda| = 0.99875 (and weaker further out, where
# f'(theta psi) < 1/2), so 2,000 steps end at ||w|| ~ 0.12; at eta = 0.3,
# |lambda| = 0.989 (extragradient) and 0.988 (optimistic) and they end at
# ~1e-10.
RUN_ETA = {'simultaneous': 0.1, 'alternating': 0.1, 'consensus': 0.1,
           'extragradient': 0.3, 'optimistic': 0.3}
HPARAMS = {'consensus': {'gamma': GAMMA}}


def dirac_grad_fn(theta, psi):
  """Each player's gradient of its own loss, from the library's losses."""
  g = jax.grad(lambda t: dirac.losses_at('gan', t, psi)[0])(theta)
  d = jax.grad(lambda p: dirac.losses_at('gan', theta, p)[1])(psi)
  return g, d


def make(method, eta, eta_d=None, **hp):
  return game.game_update(method, lr_g=eta,
                          lr_d=eta if eta_d is None else eta_d,
                          **{**HPARAMS.get(method, {}), **hp})


def test_dirac_grad_fn_is_the_derived_field():
  fp = lambda t: 1.0 / (1.0 + np.exp(t))  # f'(t) = sigmoid(-t)
  grad_fn = jax.jit(dirac_grad_fn)
  for theta, psi in [(1.0, 1.0), (-0.7, 1.3), (2.0, -0.5), (0.0, 0.0)]:
    g, d = grad_fn(jnp.float32(theta), jnp.float32(psi))
    np.testing.assert_allclose(
        [g, d], [psi * fp(theta * psi), -theta * fp(theta * psi)],
        rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# Jacobians of one step at the equilibrium.
# ---------------------------------------------------------------------------
def _step_jacobian(method, eta, eta_d=None):
  """d(theta', psi')/d(theta, psi) of one step at (0, 0), by jax.jacobian.

  The state is a later step's (count = 1), for uniformity with the
  optimistic methods, whose first step is special.
  """
  update = make(method, eta, eta_d)
  zero = jnp.float32(0.0)

  def step(z):
    state = update.init(zero, zero)._replace(count=jnp.int32(1))
    (theta, psi), _ = update.step(dirac_grad_fn, z[0], z[1], state)
    return jnp.stack([theta, psi])

  return np.asarray(jax.jit(jax.jacobian(step))(jnp.zeros(2, jnp.float32)),
                    np.float64)


def _assert_eigs(jac, expected):
  got = dirac.sort_complex(np.linalg.eigvals(jac))
  np.testing.assert_allclose(got, dirac.sort_complex(expected), rtol=0,
                             atol=1e-6)
  return got


@pytest.mark.parametrize('eta', [0.1, 0.3])
def test_simultaneous_jacobian(eta):
  # w <- (I - eta A) w = [[1, -eta a], [eta a, 1]] w:
  # eigenvalues 1 -+ eta mu = 1 +- i eta a, modulus sqrt(1 + eta^2 a^2) > 1.
  lam = 1 + 1j * eta * A0
  eigs = _assert_eigs(_step_jacobian('simultaneous', eta),
                      [lam, lam.conjugate()])
  assert np.all(np.abs(eigs) > 1.0)


def test_simultaneous_jacobian_per_player_rates():
  # [[1, -eta_G a], [eta_D a, 1]]: trace 2, det 1 + eta_G eta_D a^2,
  # eigenvalues 1 +- i a sqrt(eta_G eta_D).
  lam = 1 + 1j * A0 * np.sqrt(0.1 * 0.4)
  _assert_eigs(_step_jacobian('simultaneous', 0.1, 0.4), [lam, lam.conjugate()])


@pytest.mark.parametrize('eta', [0.1, 0.3])
def test_alternating_jacobian(eta):
  # D first: psi' = psi + eta a theta; then G at the new D:
  # theta' = theta - eta a psi' = (1 - eta^2 a^2) theta - eta a psi, so
  # M = [[1 - eta^2 a^2, -eta a], [eta a, 1]], det M = 1,
  # tr M = 2 - eta^2 a^2: eigenvalues
  # 1 - eta^2 a^2 / 2 +- i eta a sqrt(1 - eta^2 a^2 / 4), modulus exactly 1
  # (for eta a <= 2) [Mescheder et al. 2018, Lemma 2.5].
  x = eta * A0
  m = np.array([[1 - x * x, -x], [x, 1.0]])
  lam = 1 - x * x / 2 + 1j * x * np.sqrt(1 - x * x / 4)
  jac = _step_jacobian('alternating', eta)
  np.testing.assert_allclose(jac, m, atol=1e-7)
  eigs = _assert_eigs(jac, [lam, lam.conjugate()])
  np.testing.assert_allclose(np.abs(eigs), 1.0, atol=1e-6)
  np.testing.assert_allclose(dirac.sort_complex(np.linalg.eigvals(m)),
                             dirac.sort_complex([lam, lam.conjugate()]),
                             atol=1e-12)


@pytest.mark.parametrize('eta', [0.1, 0.3])
def test_consensus_jacobian(eta):
  # w <- w - eta (u + gamma J^T u); J = A at (0, 0) and J^T u ~ A^T A w =
  # a^2 w, so the step is (I - eta A - gamma eta a^2 I): eigenvalues
  # 1 - gamma eta a^2 +- i eta a, modulus < 1 for small eta.
  lam = 1 - GAMMA * eta * A0**2 + 1j * eta * A0
  eigs = _assert_eigs(_step_jacobian('consensus', eta), [lam, lam.conjugate()])
  assert np.all(np.abs(eigs) < 1.0)


@pytest.mark.parametrize('eta', [0.1, 0.3])
def test_extragradient_jacobian(eta):
  # w' = (I - eta A) w; w <- w - eta A w' = (I - eta A + eta^2 A^2) w
  # = (1 - eta^2 a^2) I - eta A: eigenvalues 1 - eta^2 a^2 +- i eta a,
  # |lambda|^2 = 1 - eta^2 a^2 + eta^4 a^4 < 1 for eta a < 1.
  lam = 1 - (eta * A0)**2 + 1j * eta * A0
  eigs = _assert_eigs(_step_jacobian('extragradient', eta),
                      [lam, lam.conjugate()])
  assert np.all(np.abs(eigs) < 1.0)


@pytest.mark.parametrize('eta', [0.1, 0.3])
def test_optimistic_jacobian(eta):
  # State s_t = (w_t, p_t) with p_t = u_{t-1} (4 numbers). One step:
  #   w_{t+1} = w_t - 2 eta A w_t + eta p_t,   p_{t+1} = u_t = A w_t,
  # i.e. T = [[I - 2 eta A, eta I], [A, 0]]. For T s = lambda s:
  # p = A w / lambda and lambda w = (I - 2 eta A) w + eta A w / lambda; with
  # A w = mu w this is the companion polynomial
  #   lambda^2 - (1 - 2 eta mu) lambda - eta mu = 0,
  #   lambda = ((1 - 2 eta mu) +- sqrt(1 + 4 eta^2 mu^2)) / 2,
  # and mu = -+ i a gives the four eigenvalues
  #   (1 -+ 2 i eta a +- sqrt(1 - 4 eta^2 a^2)) / 2.
  update = make('optimistic', eta)

  def step(s):
    state = game.OptimisticState(count=jnp.int32(1), prev_g=s[2],
                                 prev_d=s[3])
    (theta, psi), state = update.step(dirac_grad_fn, s[0], s[1], state)
    return jnp.stack([theta, psi, state.prev_g, state.prev_d])

  jac = np.asarray(jax.jit(jax.jacobian(step))(jnp.zeros(4, jnp.float32)),
                   np.float64)
  a_mat = np.array([[0.0, A0], [-A0, 0.0]])
  np.testing.assert_allclose(
      jac, np.block([[np.eye(2) - 2 * eta * a_mat, eta * np.eye(2)],
                     [a_mat, np.zeros((2, 2))]]), atol=1e-7)
  expected = []
  for mu in (1j * A0, -1j * A0):
    expected += list(np.roots([1.0, -(1 - 2 * eta * mu), -eta * mu]))
    root = np.sqrt(complex(1 + 4 * eta**2 * mu**2))
    closed = [(1 - 2 * eta * mu + root) / 2, (1 - 2 * eta * mu - root) / 2]
    np.testing.assert_allclose(
        dirac.sort_complex(closed), dirac.sort_complex(expected[-2:]),
        atol=1e-12)
  eigs = _assert_eigs(jac, expected)
  assert np.all(np.abs(eigs) < 1.0)


# ---------------------------------------------------------------------------
# 2,000 steps from (1, 1).
# ---------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _trajectory(method):
  update = make(method, RUN_ETA[method])

  @jax.jit
  def run(theta, psi):
    def body(carry, _):
      (theta, psi), state = carry
      (theta, psi), state = update.step(dirac_grad_fn, theta, psi, state)
      return ((theta, psi), state), jnp.stack([theta, psi])

    _, zs = jax.lax.scan(body, ((theta, psi), update.init(theta, psi)), None,
                         length=STEPS)
    return zs

  zs = run(jnp.float32(Z0[0]), jnp.float32(Z0[1]))
  zs = np.concatenate([np.asarray([Z0]), np.asarray(zs, np.float64)])
  assert zs.shape == (STEPS + 1, 2) and np.all(np.isfinite(zs))
  return np.linalg.norm(zs, axis=-1)


def test_simultaneous_moves_away():
  norms = _trajectory('simultaneous')
  assert norms[-1] > 1.5 * norms[0]
  assert np.mean(np.diff(norms) > 0) > 0.99  # spirals out, step after step


def test_alternating_stays_bounded():
  norms = _trajectory('alternating')
  # Neither converges nor diverges: the orbit stays near the initial circle.
  assert norms.max() < 2.0 * norms[0]
  assert norms[-100:].min() > 0.25 * norms[0]


@pytest.mark.parametrize('method', ['consensus', 'extragradient', 'optimistic'])
def test_converges_to_equilibrium(method):
  norms = _trajectory(method)
  assert norms[-1] < 1e-2, (method, norms[-1])


def test_simultaneous_and_consensus_match_dirac_module():
  # dirac.update(scheme='simultaneous') steps z + h v(z) with the paper's v
  # (= -u); for consensus v - gamma grad 1/2 ||v||^2 (= -(u + gamma J^T u)).
  for method, dirac_method in [('simultaneous', 'gan'),
                               ('consensus', 'consensus')]:
    update = make(method, 0.1)
    step = jax.jit(functools.partial(update.step, dirac_grad_fn))
    theta, psi = jnp.float32(1.0), jnp.float32(1.0)
    state = update.init(theta, psi)
    z = jnp.array(Z0, jnp.float32)
    hp = dirac.default_hparams(dirac_method, gamma=GAMMA)
    reference = jax.jit(functools.partial(
        dirac.update, method=dirac_method, lr=0.1, scheme='simultaneous',
        hparams=hp))
    for _ in range(5):
      (theta, psi), state = step(theta, psi, state)
      z = reference(z)
      np.testing.assert_allclose([theta, psi], z, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------
# A small non-linear game with nested-dict parameters.
# ---------------------------------------------------------------------------
REAL = jnp.array([[0.5, -1.0], [1.5, 0.3], [-0.2, 0.8]], jnp.float32)


def _init_params():
  g = {'gen': {'shift': jnp.array([0.3, -0.2], jnp.float32),
               'scale': jnp.float32(1.2)}}
  d = {'disc': {'kernel': jnp.array([[0.4, -0.1], [0.2, 0.3]], jnp.float32),
                'bias': jnp.array([0.1, -0.05], jnp.float32)},
       'head': jnp.array([0.7, -0.6], jnp.float32)}
  return g, d


def _logits(d, x):
  h = jnp.tanh(x @ d['disc']['kernel'] + d['disc']['bias'])
  return h @ d['head']


def _fake(g):
  return g['gen']['scale'] * REAL[::-1] * 0.5 + g['gen']['shift']


def nested_grad_fn(g, d):
  """Non-saturating GAN on the toy generator/discriminator above."""
  def g_loss(g):
    return jnp.mean(jax.nn.softplus(-_logits(d, _fake(g))))

  def d_loss(d):
    return (jnp.mean(jax.nn.softplus(-_logits(d, REAL))) +
            jnp.mean(jax.nn.softplus(_logits(d, _fake(g)))))

  return jax.grad(g_loss)(g), jax.grad(d_loss)(d)


_grad = jax.jit(nested_grad_fn)  # for the references


def _run(update, steps=5, grad_fn=nested_grad_fn, jit=True):
  g, d = _init_params()
  state = update.init(g, d)
  step = jax.jit(update.step, static_argnums=0) if jit else update.step
  out = []
  for _ in range(steps):
    (g, d), state = step(grad_fn, g, d, state)
    out.append((g, d))
  return out, state


def _assert_trees_close(x, y, rtol=1e-6, atol=1e-7):
  assert jax.tree.structure(x) == jax.tree.structure(y)
  for a, b in zip(jax.tree.leaves(x), jax.tree.leaves(y)):
    assert jnp.shape(a) == jnp.shape(b)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


LR_G, LR_D = 0.05, 0.2


def _optax_reference(opt_g, opt_d, steps):
  """Each player updated by its own optax optimiser from the same point."""

  @jax.jit
  def step(g, d, sg, sd):
    ug, ud = nested_grad_fn(g, d)
    ug, sg = opt_g.update(ug, sg, g)
    ud, sd = opt_d.update(ud, sd, d)
    return optax.apply_updates(g, ug), optax.apply_updates(d, ud), sg, sd

  g, d = _init_params()
  sg, sd = opt_g.init(g), opt_d.init(d)
  out = []
  for _ in range(steps):
    g, d, sg, sd = step(g, d, sg, sd)
    out.append((g, d))
  return out


def test_simultaneous_is_two_optax_sgd_updates():
  out, _ = _run(game.game_update('simultaneous', lr_g=LR_G, lr_d=LR_D))
  expected = _optax_reference(optax.sgd(LR_G), optax.sgd(LR_D), len(out))
  _assert_trees_close(out, expected)


def test_optimistic_is_optax_optimistic_gradient_descent():
  out, _ = _run(game.game_update('optimistic', lr_g=LR_G, lr_d=LR_D))
  expected = _optax_reference(optax.optimistic_gradient_descent(LR_G),
                              optax.optimistic_gradient_descent(LR_D),
                              len(out))
  _assert_trees_close(out, expected)


def test_optimistic_by_definition():
  # w_1 = w_0 - eta u_0 (u_{-1} := u_0), then w_{t+1} = w_t - 2 eta u_t +
  # eta u_{t-1}.
  out, state = _run(game.game_update('optimistic', lr_g=LR_G, lr_d=LR_D))
  g, d = _init_params()
  prev = None
  for got in out:
    u = _grad(g, d)
    q = u if prev is None else prev
    g = jax.tree.map(lambda w, a, b: w - LR_G * (2 * a - b), g, u[0], q[0])
    d = jax.tree.map(lambda w, a, b: w - LR_D * (2 * a - b), d, u[1], q[1])
    prev = u
    _assert_trees_close(got, (g, d))
  # The state keeps u_{t-1}: the gradient at the point before the last step.
  _assert_trees_close((state.prev_g, state.prev_d), _grad(*out[-2]))
  assert int(state.count) == len(out)


def test_optimistic_adam_is_algorithm_1():
  b1, b2, eps = 0.5, 0.9, 1e-8  # the paper's WGAN settings
  update = game.game_update('optimistic_adam', lr_g=LR_G, lr_d=LR_D, b1=b1,
                            b2=b2, eps=eps)
  out, _ = _run(update)
  # Daskalakis et al. (2018), Algorithm 1, written out in float64 per leaf.
  g, d = jax.tree.map(lambda x: np.asarray(x, np.float64), _init_params())
  w = [g, d]
  m = [jax.tree.map(np.zeros_like, p) for p in w]
  v = [jax.tree.map(np.zeros_like, p) for p in w]
  r_prev = [None, None]
  for t, got in enumerate(out, start=1):
    grads = _grad(*jax.tree.map(jnp.float32, w))
    for i, lr in enumerate((LR_G, LR_D)):
      gi = jax.tree.map(lambda x: np.asarray(x, np.float64), grads[i])
      m[i] = jax.tree.map(lambda a, x: b1 * a + (1 - b1) * x, m[i], gi)
      v[i] = jax.tree.map(lambda a, x: b2 * a + (1 - b2) * x * x, v[i], gi)
      r = jax.tree.map(
          lambda a, c: (a / (1 - b1**t)) / (np.sqrt(c / (1 - b2**t)) + eps),
          m[i], v[i])
      q = r if r_prev[i] is None else r_prev[i]
      w[i] = jax.tree.map(lambda x, a, b: x - lr * (2 * a - b), w[i], r, q)
      r_prev[i] = r
    _assert_trees_close(got, tuple(w), rtol=1e-5, atol=1e-6)


def test_optimistic_adam_is_optax_optimistic_adam_v2():
  out, _ = _run(game.game_update('optimistic_adam', lr_g=LR_G, lr_d=LR_D))
  expected = _optax_reference(optax.optimistic_adam_v2(LR_G, nesterov=False),
                              optax.optimistic_adam_v2(LR_D, nesterov=False),
                              len(out))
  _assert_trees_close(out, expected, rtol=1e-5, atol=1e-6)


def test_alternating_and_extragradient_by_definition():
  g0, d0 = _init_params()
  sub = lambda w, u, lr: jax.tree.map(lambda a, b: a - lr * b, w, u)
  # Alternating: D at (g, d), then G at (g, d_new).
  (g, d), = _run(game.game_update('alternating', lr_g=LR_G, lr_d=LR_D),
                 steps=1)[0]
  d1 = sub(d0, _grad(g0, d0)[1], LR_D)
  g1 = sub(g0, _grad(g0, d1)[0], LR_G)
  _assert_trees_close((g, d), (g1, d1))
  # Extragradient: gradients at the extrapolated point, applied at w.
  (g, d), = _run(game.game_update('extragradient', lr_g=LR_G, lr_d=LR_D),
                 steps=1)[0]
  ug, ud = _grad(g0, d0)
  ug, ud = _grad(sub(g0, ug, LR_G), sub(d0, ud, LR_D))
  _assert_trees_close((g, d), (sub(g0, ug, LR_G), sub(d0, ud, LR_D)))


def test_consensus_vjp_equals_explicit_jacobian():
  # J^T u with J = du/dw of the joint (flattened) field, formed explicitly.
  gamma = 0.3
  update = game.game_update('consensus', lr_g=LR_G, lr_d=LR_D, gamma=gamma)
  g0, d0 = _init_params()
  (g, d), = _run(update, steps=1)[0]
  flat, unravel = jax.flatten_util.ravel_pytree((g0, d0))

  def field(x):
    return jax.flatten_util.ravel_pytree(nested_grad_fn(*unravel(x)))[0]

  u = jax.jit(field)(flat)
  jac = jax.jit(jax.jacobian(field))(flat)
  direction = unravel(u + gamma * jac.T @ u)
  expected = (jax.tree.map(lambda w, x: w - LR_G * x, g0, direction[0]),
              jax.tree.map(lambda w, x: w - LR_D * x, d0, direction[1]))
  _assert_trees_close((g, d), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('method', list(game.GAME_UPDATES))
def test_jit_equals_no_jit_and_keeps_structure(method):
  hp = {'gamma': 0.3} if method == 'consensus' else {}
  update = game.game_update(method, lr_g=LR_G, lr_d=LR_D, **hp)
  eager, eager_state = _run(update, steps=3, jit=False)
  jitted, jitted_state = _run(update, steps=3, jit=True)
  _assert_trees_close(eager, jitted, rtol=1e-5, atol=1e-6)
  _assert_trees_close(eager_state, jitted_state, rtol=1e-5, atol=1e-6)
  assert jax.tree.structure(eager[-1]) == jax.tree.structure(_init_params())
  for leaf in jax.tree.leaves(eager[-1]):
    assert leaf.dtype == jnp.float32
  assert int(eager_state.count) == 3


def test_learning_rate_schedules():
  # lr may be an optax schedule of the step count.
  sched_g = optax.linear_schedule(LR_G, 0.0, 4)
  sched_d = lambda count: LR_D * (count + 1)
  out, _ = _run(game.game_update('simultaneous', lr_g=sched_g, lr_d=sched_d),
                steps=3)
  g, d = _init_params()
  for t, got in enumerate(out):
    ug, ud = _grad(g, d)
    g = jax.tree.map(lambda w, u: w - sched_g(t) * u, g, ug)
    d = jax.tree.map(lambda w, u: w - sched_d(t) * u, d, ud)
    _assert_trees_close(got, (g, d))


def test_bad_method_and_hparams():
  with pytest.raises(ValueError) as err:
    game.game_update('adam', lr_g=0.1, lr_d=0.1)
  for name in game.GAME_UPDATES:
    assert repr(name) in str(err.value)
  assert "'adam'" in str(err.value)
  with pytest.raises(TypeError):
    game.game_update('consensus', lr_g=0.1, lr_d=0.1)  # gamma is required
  with pytest.raises(TypeError):
    game.game_update('simultaneous', lr_g=0.1, lr_d=0.1, gamma=1.0)


def _run_joint(update, steps=5):
  g, d = _init_params()
  state = update.init(g, d)
  with_aux = lambda g, d: (nested_grad_fn(g, d), jnp.float32(1.0))
  step = jax.jit(functools.partial(update.step, with_aux))
  out = []
  for _ in range(steps):
    (g, d), state, aux, _ = step(g, d, state)
    assert float(aux) == 1.0
    out.append((g, d))
  return out, state


@pytest.mark.parametrize('method', game.JOINT_METHODS)
def test_joint_update_with_sgd_is_the_plain_method(method):
  # The train step's form (any optax optimiser) with optax.sgd(eta) is the
  # textbook form w - eta (...) above, step for step.
  hp = {'gamma': 0.3} if method == 'consensus' else {}
  joint, _ = _run_joint(game.joint_update(method, optax.sgd(LR_G),
                                          optax.sgd(LR_D), **hp))
  plain, _ = _run(game.game_update(method, lr_g=LR_G, lr_d=LR_D, **hp))
  _assert_trees_close(joint, plain, rtol=1e-5, atol=1e-6)


def test_joint_optimistic_with_adam_is_optimistic_adam():
  joint, _ = _run_joint(game.joint_update(
      'optimistic', optax.adam(LR_G, b1=0.5, b2=0.9),
      optax.adam(LR_D, b1=0.5, b2=0.9)))
  plain, _ = _run(game.optimistic_adam(lr_g=LR_G, lr_d=LR_D, b1=0.5, b2=0.9))
  _assert_trees_close(joint, plain, rtol=1e-5, atol=1e-6)


def test_joint_update_bad_method():
  with pytest.raises(ValueError, match="'optimistic_adam'.*allowed"):
    game.joint_update('optimistic_adam', optax.sgd(0.1), optax.sgd(0.1))
