"""Tests for gan_stability.losses: values, stability, gradients, shapes."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_stability import losses

B = 16
F32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------------
# Independent float64 numpy references, written from the formulas with
# sigmoid / log (deliberately *not* via softplus).
# ---------------------------------------------------------------------------
def _sigmoid(x):
  return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def _ref_minimax_d(r, f):
  return -np.mean(np.log(_sigmoid(r))) - np.mean(np.log(1.0 - _sigmoid(f)))


def _ref_minimax_g(f):
  return np.mean(np.log(1.0 - _sigmoid(f)))


def _ref_nonsat_g(f):
  return -np.mean(np.log(_sigmoid(f)))


def _ref_wasserstein_d(r, f):
  return np.mean(np.asarray(f, np.float64)) - np.mean(np.asarray(r, np.float64))


def _ref_wasserstein_g(f):
  return -np.mean(np.asarray(f, np.float64))


def _ref_hinge_d(r, f):
  r = np.asarray(r, np.float64)
  f = np.asarray(f, np.float64)
  return np.mean(np.maximum(0.0, 1.0 - r)) + np.mean(np.maximum(0.0, 1.0 + f))


def _ref_hinge_g(f):
  return -np.mean(np.asarray(f, np.float64))


def _ref_ls_d(r, f):
  r = np.asarray(r, np.float64)
  f = np.asarray(f, np.float64)
  return 0.5 * np.mean((r - 1.0) ** 2) + 0.5 * np.mean(f ** 2)


def _ref_ls_g(f):
  return 0.5 * np.mean((np.asarray(f, np.float64) - 1.0) ** 2)


REFS = {
    'minimax': (_ref_minimax_d, _ref_minimax_g),
    'nonsaturating': (_ref_minimax_d, _ref_nonsat_g),
    'wasserstein': (_ref_wasserstein_d, _ref_wasserstein_g),
    'hinge': (_ref_hinge_d, _ref_hinge_g),
    'least_squares': (_ref_ls_d, _ref_ls_g),
}

NAMES = sorted(losses.LOSSES)


def _logits(seed, shape=(B,), scale=3.0):
  """Moderate random logits, |x| < 8, as float32."""
  rng = np.random.default_rng(seed)
  return np.clip(rng.normal(0.0, scale, shape), -7.9, 7.9).astype(np.float32)


def test_loss_table_matches_references():
  """LOSSES holds exactly the five documented families, each a (d, g) pair."""
  assert set(losses.LOSSES) == set(REFS)
  assert losses.LOSSES['minimax'] == (losses.minimax_d_loss,
                                      losses.minimax_g_loss)
  assert losses.LOSSES['least_squares'][1] is losses.least_squares_g_loss


# ---------------------------------------------------------------------------
# Values against the numpy reference.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_d_loss_matches_numpy_reference(name, seed):
  """Each d_loss equals the float64 formula on random moderate logits."""
  d_fn, _ = losses.LOSSES[name]
  ref_d, _ = REFS[name]
  r, f = _logits(seed), _logits(seed + 100)
  got = d_fn(jnp.asarray(r), jnp.asarray(f))
  assert got.shape == ()
  np.testing.assert_allclose(float(got), ref_d(r, f), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('seed', [0, 1, 2])
def test_g_loss_matches_numpy_reference(name, seed):
  """Each g_loss equals the float64 formula on random moderate logits."""
  _, g_fn = losses.LOSSES[name]
  _, ref_g = REFS[name]
  f = _logits(seed + 200)
  got = g_fn(jnp.asarray(f))
  assert got.shape == ()
  np.testing.assert_allclose(float(got), ref_g(f), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------
# Hand-computed values.
# ---------------------------------------------------------------------------
def test_minimax_d_loss_at_half_is_two_log_two():
  """At D = 1/2 (logit 0) the BCE discriminator loss is 2 log 2."""
  z = jnp.zeros((5,))
  np.testing.assert_allclose(float(losses.minimax_d_loss(z, z)),
                             2 * math.log(2), rtol=1e-6)
  np.testing.assert_allclose(float(losses.nonsaturating_d_loss(z, z)),
                             2 * math.log(2), rtol=1e-6)


def test_g_losses_at_zero():
  """At logit 0: nonsaturating G loss is log 2, minimax G loss is -log 2."""
  z = jnp.zeros((3,))
  np.testing.assert_allclose(float(losses.nonsaturating_g_loss(z)),
                             math.log(2), rtol=1e-6)
  np.testing.assert_allclose(float(losses.minimax_g_loss(z)),
                             -math.log(2), rtol=1e-6)


def test_minimax_d_loss_hand_values():
  """Hand-computed BCE: real=[ln 3], fake=[-ln 3] gives 2*log(4/3)."""
  # sigmoid(ln 3) = 3/4, so -log(3/4) - log(1 - 1/4) = 2 log(4/3).
  r = jnp.array([math.log(3.0)])
  f = jnp.array([-math.log(3.0)])
  np.testing.assert_allclose(float(losses.minimax_d_loss(r, f)),
                             2 * math.log(4 / 3), rtol=1e-6)


def test_hinge_d_loss_hand_value():
  """real=[2,0], fake=[-2,0.5]: mean(0,1) + mean(0,1.5) = 0.5 + 0.75."""
  r = jnp.array([2.0, 0.0])
  f = jnp.array([-2.0, 0.5])
  np.testing.assert_allclose(float(losses.hinge_d_loss(r, f)), 1.25,
                             rtol=1e-7)


def test_hinge_g_and_wasserstein_hand_values():
  """Hinge G and WGAN G are -mean(fake); WGAN D is mean(fake)-mean(real)."""
  f = jnp.array([1.0, -3.0, 0.5, 0.5])  # mean -0.25
  r = jnp.array([2.0, 4.0])  # mean 3
  assert float(losses.hinge_g_loss(f)) == pytest.approx(0.25)
  assert float(losses.wasserstein_g_loss(f)) == pytest.approx(0.25)
  assert float(losses.wasserstein_d_loss(r, f)) == pytest.approx(-3.25)


def test_least_squares_hand_values():
  """LSGAN: optimum (real=1, fake=0) gives 0; real=[3,1], fake=[2,0] gives
  0.5*mean(4,0) + 0.5*mean(4,0) = 2; G loss at fake=[0,3] is 0.5*mean(1,4)."""
  one = jnp.ones((4,))
  zero = jnp.zeros((4,))
  assert float(losses.least_squares_d_loss(one, zero)) == 0.0
  assert float(losses.least_squares_g_loss(one)) == 0.0
  got = losses.least_squares_d_loss(jnp.array([3.0, 1.0]),
                                    jnp.array([2.0, 0.0]))
  assert float(got) == pytest.approx(2.0)
  got = losses.least_squares_g_loss(jnp.array([0.0, 3.0]))
  assert float(got) == pytest.approx(1.25)


def test_get_losses_returns_pairs():
  """get_losses(name) returns LOSSES[name] for every name."""
  for name in NAMES:
    assert losses.get_losses(name) == losses.LOSSES[name]


def test_get_losses_unknown_name_raises():
  """Unknown names raise ValueError naming config.loss and allowed names."""
  with pytest.raises(ValueError) as exc:
    losses.get_losses('vanilla')
  msg = str(exc.value)
  assert 'config.loss' in msg
  assert 'vanilla' in msg
  for name in NAMES:
    assert name in msg


# ---------------------------------------------------------------------------
# Numerical stability.
# ---------------------------------------------------------------------------
def test_bce_confident_correct_discriminator_gives_zero_loss():
  """minimax_d_loss(real=1e4, fake=-1e4) is 0 and its gradient is 0."""
  r = jnp.full((4,), 1e4)
  f = jnp.full((4,), -1e4)
  val = losses.minimax_d_loss(r, f)
  assert np.isfinite(float(val))
  assert float(val) == pytest.approx(0.0, abs=1e-30)
  gr, gf = jax.grad(losses.minimax_d_loss, argnums=(0, 1))(r, f)
  np.testing.assert_array_equal(np.asarray(gr), 0.0)
  np.testing.assert_array_equal(np.asarray(gf), 0.0)


@pytest.mark.parametrize('m', [80.0, 1e4])
def test_bce_confident_wrong_discriminator_is_linear(m):
  """minimax_d_loss(real=-m, fake=m) = 2m (softplus asymptote), gradients
  -1/B and +1/B, all finite (no log(0) = -inf)."""
  r = jnp.full((4,), -m)
  f = jnp.full((4,), m)
  val = float(losses.minimax_d_loss(r, f))
  assert val == pytest.approx(2 * m, rel=1e-6)
  gr, gf = jax.grad(losses.minimax_d_loss, argnums=(0, 1))(r, f)
  np.testing.assert_allclose(np.asarray(gr), -0.25, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(gf), 0.25, rtol=1e-6)


@pytest.mark.parametrize('m', [80.0, 1e4])
def test_generator_losses_asymptotics(m):
  """nonsaturating_g_loss(-m) ~ m with gradient -1 (no saturation);
  nonsaturating_g_loss(+m) ~ 0; minimax_g_loss(-m) ~ 0 with vanishing
  gradient (the saturation the paper describes); minimax_g_loss(m) ~ -m."""
  neg = jnp.array([-m])
  pos = jnp.array([m])
  assert float(losses.nonsaturating_g_loss(neg)) == pytest.approx(m, rel=1e-6)
  assert float(jax.grad(losses.nonsaturating_g_loss)(neg)[0]) == (
      pytest.approx(-1.0, rel=1e-6))
  assert float(losses.nonsaturating_g_loss(pos)) == pytest.approx(0.0,
                                                                   abs=1e-30)
  assert float(losses.minimax_g_loss(neg)) == pytest.approx(0.0, abs=1e-30)
  assert abs(float(jax.grad(losses.minimax_g_loss)(neg)[0])) < 1e-30
  assert float(losses.minimax_g_loss(pos)) == pytest.approx(-m, rel=1e-6)
  assert float(jax.grad(losses.minimax_g_loss)(pos)[0]) == pytest.approx(
      -1.0, rel=1e-6)


def test_softplus_mid_range_matches_reference_at_80():
  """At |x| = 80 the loss matches log1p(exp(-|x|)) + max(x, 0) in float64
  (where a naive log(sigmoid) in float32 would already give -inf)."""
  x = np.array([-80.0, 80.0, -30.0, 30.0], np.float32)
  ref = np.mean(np.log1p(np.exp(-np.abs(x.astype(np.float64)))) +
                np.maximum(-x.astype(np.float64), 0.0))
  np.testing.assert_allclose(float(losses.nonsaturating_g_loss(jnp.asarray(x))),
                             ref, rtol=1e-6)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('m', [80.0, 1e4])
def test_all_losses_finite_at_large_logits(name, m):
  """Every loss and its gradients are finite for logits of +-80 and +-1e4."""
  d_fn, g_fn = losses.LOSSES[name]
  x = jnp.array([m, -m, m, -m])
  y = jnp.array([-m, -m, m, m])
  vd = d_fn(x, y)
  vg = g_fn(x)
  assert np.isfinite(float(vd)) and np.isfinite(float(vg))
  gd = jax.grad(d_fn, argnums=(0, 1))(x, y)
  gg = jax.grad(g_fn)(x)
  for g in (*gd, gg):
    assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.abs(np.asarray(g)) <= 1.0 / 4 * 2 * m + 1.0)
  # Values: these are balanced inputs, so the exact answers are simple.
  expected_d = {
      'minimax': m,  # mean(softplus(-x)) = m/2, mean(softplus(y)) = m/2
      'nonsaturating': m,
      'wasserstein': 0.0,
      'hinge': (1 + m) / 2 + (1 + m) / 2,
      'least_squares': 0.5 * ((m - 1) ** 2 + (m + 1) ** 2) / 2 + 0.5 * m**2,
  }[name]
  assert float(vd) == pytest.approx(expected_d, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize('fn,x,expected,grad', [
    (losses.nonsaturating_g_loss, -F32_MAX, F32_MAX, -1.0),
    (losses.nonsaturating_g_loss, F32_MAX, 0.0, 0.0),
    (losses.minimax_g_loss, F32_MAX, -F32_MAX, -1.0),
    (losses.minimax_g_loss, -F32_MAX, 0.0, 0.0),
])
def test_bce_losses_at_float32_extremes(fn, x, expected, grad):
  """softplus-based G losses at +-float32 max: value and gradient exact and
  finite (a single element, so the mean cannot overflow)."""
  arr = jnp.array([x], jnp.float32)
  val = float(fn(arr))
  assert np.isfinite(val)
  assert val == pytest.approx(expected, rel=1e-6, abs=1e-30)
  g = np.asarray(jax.grad(fn)(arr))
  assert np.all(np.isfinite(g))
  assert g[0] == pytest.approx(grad, abs=1e-30)


def test_bce_d_loss_float32_extremes():
  """minimax_d_loss at real=+max, fake=-max is 0 with zero gradient; at
  real=-max (single element) it is max, finite, gradient -1."""
  big = jnp.array([F32_MAX], jnp.float32)
  assert float(losses.minimax_d_loss(big, -big)) == 0.0
  gr, gf = jax.grad(losses.minimax_d_loss, argnums=(0, 1))(big, -big)
  assert float(gr[0]) == 0.0 and float(gf[0]) == 0.0
  val = float(losses.minimax_d_loss(-big, -big))
  assert val == pytest.approx(F32_MAX, rel=1e-6)
  gr, gf = jax.grad(losses.minimax_d_loss, argnums=(0, 1))(-big, -big)
  assert float(gr[0]) == -1.0 and float(gf[0]) == 0.0


# ---------------------------------------------------------------------------
# Gradients.
# ---------------------------------------------------------------------------
def _away_from_kinks(x):
  """Move hinge inputs at least 0.1 away from +-1 (relu kinks)."""
  x = np.asarray(x, np.float32)
  for k in (-1.0, 1.0):
    near = np.abs(x - k) < 0.1
    x = np.where(near, k + 0.2 * np.sign(x - k + 1e-9), x)
  return x.astype(np.float32)


@pytest.mark.parametrize('name', NAMES)
def test_check_grads_d_loss(name):
  """Finite-difference check (order 2, fwd and rev) of every d_loss."""
  d_fn, _ = losses.LOSSES[name]
  r = jnp.asarray(_away_from_kinks(_logits(3, (6,), 2.0)))
  f = jnp.asarray(_away_from_kinks(_logits(4, (6,), 2.0)))
  check_grads(d_fn, (r, f), order=2, modes=['fwd', 'rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


@pytest.mark.parametrize('name', NAMES)
def test_check_grads_g_loss(name):
  """Finite-difference check (order 2, fwd and rev) of every g_loss."""
  _, g_fn = losses.LOSSES[name]
  f = jnp.asarray(_away_from_kinks(_logits(5, (6,), 2.0)))
  check_grads(g_fn, (f,), order=2, modes=['fwd', 'rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


def _sig(x):
  return _sigmoid(x)


ANALYTIC_D_GRADS = {
    # (d/d real, d/d fake) elementwise, before the 1/n of the mean.
    'minimax': (lambda r: -_sig(-r), lambda f: _sig(f)),
    'nonsaturating': (lambda r: -_sig(-r), lambda f: _sig(f)),
    'wasserstein': (lambda r: -np.ones_like(r), lambda f: np.ones_like(f)),
    'hinge': (lambda r: -(r < 1.0).astype(np.float64),
              lambda f: (f > -1.0).astype(np.float64)),
    'least_squares': (lambda r: r - 1.0, lambda f: f),
}

ANALYTIC_G_GRADS = {
    'minimax': lambda f: -_sig(f),
    'nonsaturating': lambda f: -_sig(-f),
    'wasserstein': lambda f: -np.ones_like(f),
    'hinge': lambda f: -np.ones_like(f),
    'least_squares': lambda f: f - 1.0,
}


@pytest.mark.parametrize('name', NAMES)
def test_d_loss_grad_matches_analytic(name):
  """jax.grad of d_loss equals the analytic derivative (e.g. d softplus(x)
  / dx = sigmoid(x)) divided by the batch size."""
  d_fn, _ = losses.LOSSES[name]
  r = _away_from_kinks(_logits(6))
  f = _away_from_kinks(_logits(7))
  gr, gf = jax.grad(d_fn, argnums=(0, 1))(jnp.asarray(r), jnp.asarray(f))
  dr, df = ANALYTIC_D_GRADS[name]
  r64 = r.astype(np.float64)
  f64 = f.astype(np.float64)
  np.testing.assert_allclose(np.asarray(gr), dr(r64) / r.size, rtol=1e-5,
                             atol=1e-7)
  np.testing.assert_allclose(np.asarray(gf), df(f64) / f.size, rtol=1e-5,
                             atol=1e-7)


@pytest.mark.parametrize('name', NAMES)
def test_g_loss_grad_matches_analytic(name):
  """jax.grad of g_loss equals the analytic derivative / batch size."""
  _, g_fn = losses.LOSSES[name]
  f = _away_from_kinks(_logits(8))
  g = jax.grad(g_fn)(jnp.asarray(f))
  np.testing.assert_allclose(np.asarray(g),
                             ANALYTIC_G_GRADS[name](f.astype(np.float64)) /
                             f.size, rtol=1e-5, atol=1e-7)


def test_bce_second_derivative_is_sigmoid_prime():
  """d^2/dx^2 of mean softplus(x) = sigmoid(x)(1 - sigmoid(x)) / n."""
  f = _logits(9, (5,))
  hess_diag = jax.vmap(
      lambda e: jax.jvp(jax.grad(losses.minimax_g_loss), (jnp.asarray(f),),
                        (e,))[1])(jnp.eye(5))
  s = _sig(f.astype(np.float64))
  np.testing.assert_allclose(np.asarray(hess_diag), -np.diag(s * (1 - s)) / 5,
                             rtol=1e-4, atol=1e-7)


# ---------------------------------------------------------------------------
# Shapes, dtypes and transformations.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('name', NAMES)
def test_column_and_flat_logits_agree(name):
  """Logits [B] and [B, 1] (and mixed) give the same scalar loss."""
  d_fn, g_fn = losses.LOSSES[name]
  r, f = _logits(10), _logits(11)
  rc, fc = r[:, None], f[:, None]
  flat_d = d_fn(jnp.asarray(r), jnp.asarray(f))
  for a, b in [(rc, fc), (r, fc), (rc, f)]:
    v = d_fn(jnp.asarray(a), jnp.asarray(b))
    assert v.shape == ()
    np.testing.assert_allclose(float(v), float(flat_d), rtol=1e-6)
  vg = g_fn(jnp.asarray(fc))
  assert vg.shape == ()
  np.testing.assert_allclose(float(vg), float(g_fn(jnp.asarray(f))),
                             rtol=1e-6)


@pytest.mark.parametrize('name', NAMES)
def test_multidim_logits_average_over_all_elements(name):
  """Logits of shape [4, 3, 2] (e.g. patch discriminators) are averaged over
  every element: same value as the flattened vector."""
  d_fn, g_fn = losses.LOSSES[name]
  r, f = _logits(17, (4, 3, 2)), _logits(18, (4, 3, 2))
  ref_d, ref_g = REFS[name]
  np.testing.assert_allclose(float(d_fn(jnp.asarray(r), jnp.asarray(f))),
                             ref_d(r.ravel(), f.ravel()), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(float(g_fn(jnp.asarray(f))), ref_g(f.ravel()),
                             rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('name', NAMES)
def test_jit_matches_eager(name):
  """jit-compiled losses return the eager values."""
  d_fn, g_fn = losses.LOSSES[name]
  r, f = jnp.asarray(_logits(12)), jnp.asarray(_logits(13))
  np.testing.assert_allclose(float(jax.jit(d_fn)(r, f)), float(d_fn(r, f)),
                             rtol=1e-6)
  np.testing.assert_allclose(float(jax.jit(g_fn)(f)), float(g_fn(f)),
                             rtol=1e-6)


def test_bfloat16_inputs_are_averaged_in_float32():
  """bfloat16 logits give a float32 scalar close to the reference."""
  f = _logits(14)
  v = losses.nonsaturating_g_loss(jnp.asarray(f, jnp.bfloat16))
  assert v.dtype == jnp.float32
  np.testing.assert_allclose(float(v), _ref_nonsat_g(f), rtol=2e-2)


def test_float64_precision_under_x64():
  """With x64 enabled, float64 logits give a float64 result matching the
  numpy reference to 1e-12."""
  with jax.enable_x64(True):
    r = np.random.default_rng(15).normal(0, 3, (32,))
    f = np.random.default_rng(16).normal(0, 3, (32,))
    v = losses.minimax_d_loss(jnp.asarray(r, jnp.float64),
                              jnp.asarray(f, jnp.float64))
    assert v.dtype == jnp.float64
    np.testing.assert_allclose(float(v), _ref_minimax_d(r, f), rtol=1e-12)
