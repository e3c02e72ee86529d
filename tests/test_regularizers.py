"""Tests for gan_stability.regularizers against hand-derived values and NumPy
references."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.test_util import check_grads

from gan_stability import losses
from gan_stability import regularizers as reg
# The same small MLP parameters and linear D weights as the penalties' tests.
from tests.test_penalties import _mlp_params, _w_with_norm  # pylint: disable=g-bad-import-order

B, D, H = 6, 5, 7
KEY = jax.random.PRNGKey(42)


def _rng(seed):
  return np.random.default_rng(seed)


def _normal(seed, shape, scale=1.0, loc=0.0):
  return jnp.asarray(_rng(seed).normal(loc, scale, shape), jnp.float32)


def _f64(x):
  return np.asarray(x, np.float64)


# ---------------------------------------------------------------------------
# Discriminators.
# ---------------------------------------------------------------------------
def linear_d(w, b, x):
  """D(x) = x @ w + b, logits [B]; grad_x D = w everywhere."""
  return x @ w + b


def quadratic_d(a, x):
  """D(x) = 1/2 x^T A x per example (A symmetric), logits [B]; grad = A x."""
  return 0.5 * jnp.sum((x @ a) * x, axis=-1)


def image_d(wt, vt, x):
  """D(x) = sum(W * x) + 1/2 sum(V * x^2) over pixels; grad = W + V x."""
  return jnp.sum(wt * x + 0.5 * vt * jnp.square(x), axis=(1, 2, 3))


def mlp_d(params, x):
  """Small nonlinear MLP on a batch [B, D] -> logits [B, 1]."""
  h = jnp.tanh(x @ params['w1'] + params['b1'])
  return (h @ params['w2'] + params['b2'])[:, None]


def _sym(seed, n=D):
  m = _rng(seed).normal(0, 1, (n, n))
  return jnp.asarray(0.5 * (m + m.T), jnp.float32)


def _dragan_points_numpy(real, key, c, interpolate):
  """The DRAGAN points from the random numbers drawn as documented:
  key_u, key_alpha = split(key); u per element, alpha per example; the
  population std of the whole batch (numpy's default ddof=0)."""
  key_u, key_alpha = jax.random.split(key)
  u = _f64(jax.random.uniform(key_u, real.shape, dtype=real.dtype))
  x = _f64(real)
  delta = c * np.std(x) * u
  if not interpolate:
    return x + delta
  alpha = _f64(jax.random.uniform(
      key_alpha, (real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype))
  return x + alpha * delta


# ---------------------------------------------------------------------------
# DRAGAN.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('norm', [0.3, 2.5])
@pytest.mark.parametrize('k', [1.0, 0.5])
@pytest.mark.parametrize('interpolate', [True, False])
def test_dragan_linear_closed_form(norm, k, interpolate):
  """Linear D has ||grad D|| = ||w|| everywhere: DRAGAN = (||w|| - k)^2
  whatever the perturbation (c) and the interpolation."""
  w = _w_with_norm(norm, seed=1)
  d_fn = functools.partial(linear_d, w, jnp.float32(0.7))
  real = _normal(2, (B, D), 3.0)
  for c in (0.5, 2.0):
    got = reg.dragan_penalty(d_fn, real, KEY, k=k, c=c,
                             interpolate=interpolate)
    np.testing.assert_allclose(float(got), (norm - k)**2, rtol=1e-5,
                               atol=1e-7)


def test_dragan_defaults_are_the_codes():
  """Defaults k = 1, c = 0.5, interpolate=True; lambda = 10."""
  w = _w_with_norm(3.0, seed=3)
  d_fn = functools.partial(linear_d, w, 0.0)
  real = _normal(4, (B, D))
  np.testing.assert_allclose(float(reg.dragan_penalty(d_fn, real, KEY)),
                             4.0, rtol=1e-5)
  a = _sym(5)
  q_fn = functools.partial(quadratic_d, a)
  assert float(reg.dragan_penalty(q_fn, real, KEY)) == float(
      reg.dragan_penalty(q_fn, real, KEY, k=1.0, c=0.5, interpolate=True))
  assert reg.DRAGAN_LAMBDA == 10.0


@pytest.mark.parametrize('interpolate', [True, False])
@pytest.mark.parametrize('c', [0.5, 3.0])
def test_dragan_quadratic_matches_numpy(interpolate, c):
  """Quadratic D (grad A x): DRAGAN equals the NumPy formula at the points
  built from the same random numbers; the points themselves equal the
  NumPy ones."""
  a = _sym(6)
  d_fn = functools.partial(quadratic_d, a)
  real = _normal(7, (B, D), 2.0, loc=0.5)
  key = jax.random.PRNGKey(3)
  x_hat = _dragan_points_numpy(real, key, c, interpolate)
  np.testing.assert_allclose(
      _f64(reg.dragan_points(real, key, c=c, interpolate=interpolate)), x_hat,
      rtol=1e-5, atol=1e-6)
  norms = np.linalg.norm(x_hat @ _f64(a), axis=1)  # A symmetric: grad = A x
  for k in (1.0, 0.2):
    got = reg.dragan_penalty(d_fn, real, key, k=k, c=c,
                             interpolate=interpolate)
    np.testing.assert_allclose(float(got), np.mean((norms - k)**2),
                               rtol=1e-5, atol=1e-7)


def test_dragan_quadratic_is_sensitive_to_the_construction():
  """The quadratic-D value changes if the std is per-feature or ddof=1, if
  the interpolation is dropped, or if the perturbation is centred: the
  reference test pins down each of those choices."""
  a = _sym(8)
  d_fn = functools.partial(quadratic_d, a)
  real = _normal(9, (B, D), 2.0, loc=1.0)
  key = jax.random.PRNGKey(4)
  got = float(reg.dragan_penalty(d_fn, real, key, c=2.0))
  key_u, key_alpha = jax.random.split(key)
  u = _f64(jax.random.uniform(key_u, real.shape))
  alpha = _f64(jax.random.uniform(key_alpha, (B, 1)))
  x = _f64(real)

  def value(delta, interp=True):
    pts = x + (alpha if interp else 1.0) * delta
    return np.mean((np.linalg.norm(pts @ _f64(a), axis=1) - 1.0)**2)

  np.testing.assert_allclose(got, value(2.0 * np.std(x) * u), rtol=1e-5)
  for wrong in (value(2.0 * np.std(x, axis=0) * u),
                value(2.0 * np.std(x, ddof=1) * u),
                value(2.0 * np.std(x) * u, interp=False),
                value(2.0 * np.std(x) * (u - 0.5))):
    assert not np.isclose(wrong, got, rtol=1e-3)


def test_dragan_points_lie_in_the_codes_box():
  """x <= x_hat < x + c std(x) elementwise (u in [0, 1), one-sided as in
  the code), and x_hat - x is alpha (per example) times x_tilde - x."""
  real = _normal(10, (64, D), 1.5)
  c = 0.5
  x = _f64(real)
  top = c * np.std(x)
  tilde = _f64(reg.dragan_points(real, KEY, c=c, interpolate=False))
  hat = _f64(reg.dragan_points(real, KEY, c=c))
  for pts in (tilde, hat):
    assert np.all(pts - x >= -1e-6)
    assert np.all(pts - x < top + 1e-6)
  # tilde's perturbation fills the box (uniform per element).
  frac = (tilde - x) / top
  assert 0.4 < frac.mean() < 0.6 and frac.min() < 0.05 and frac.max() > 0.95
  ratio = (hat - x) / (tilde - x)
  np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, D)), rtol=1e-3,
                             atol=1e-4)
  assert np.std(ratio[:, 0]) > 0.1  # alpha differs between examples


def test_dragan_image_shaped_matches_numpy():
  """Image inputs [B,4,4,3]: alpha is (B,1,1,1), norms summed over all
  pixels and channels; grad = W + V x."""
  r = _rng(11)
  wt = jnp.asarray(r.normal(0, 0.2, (4, 4, 3)), jnp.float32)
  vt = jnp.asarray(r.normal(0, 0.5, (4, 4, 3)), jnp.float32)
  real = jnp.asarray(r.normal(0, 1, (B, 4, 4, 3)), jnp.float32)
  key = jax.random.PRNGKey(11)
  x_hat = _dragan_points_numpy(real, key, 0.5, True)
  g = _f64(wt) + _f64(vt) * x_hat
  norms = np.sqrt(np.sum(g**2, axis=(1, 2, 3)))
  got = jax.jit(lambda w_, v_, r_: reg.dragan_penalty(
      functools.partial(image_d, w_, v_), r_, key))(wt, vt, real)
  np.testing.assert_allclose(float(got), np.mean((norms - 1.0)**2),
                             rtol=1e-5)


@pytest.mark.parametrize('norm', [2.5, 0.3])
def test_dragan_linear_grad_wrt_weights(norm):
  """d DRAGAN / d w = 2 (||w|| - k) w / ||w|| for linear D (the D update's
  double gradient)."""
  w = _w_with_norm(norm, seed=12)
  real = _normal(13, (B, D))
  g = jax.grad(lambda w_: reg.dragan_penalty(
      functools.partial(linear_d, w_, 0.0), real, KEY))(w)
  w64 = _f64(w)
  n = np.linalg.norm(w64)
  np.testing.assert_allclose(_f64(g), 2 * (n - 1.0) * w64 / n, rtol=1e-4,
                             atol=1e-6)


def test_dragan_flat_discriminator_is_finite():
  """w = 0: DRAGAN ~ k^2 with a finite zero gradient (the sqrt floor)."""
  real = _normal(14, (B, D))
  val, g = jax.value_and_grad(lambda w_: reg.dragan_penalty(
      functools.partial(linear_d, w_, 0.0), real, KEY))(jnp.zeros((D,)))
  assert float(val) == pytest.approx(1.0, abs=1e-5)
  np.testing.assert_allclose(_f64(g), 0.0, atol=1e-6)


def test_dragan_mlp_check_grads():
  """Finite differences (order 1, rev) of DRAGAN w.r.t. an MLP's
  parameters -- the double gradient D's update takes."""
  real = _normal(15, (B, D))

  def pen(params):
    return reg.dragan_penalty(functools.partial(mlp_d, params), real, KEY,
                              k=0.3)

  check_grads(pen, (_mlp_params(16),), order=1, modes=['rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


def test_dragan_key_dependence_and_vmap():
  """vmap over (params, real, key) equals a Python loop; same key -> same
  value, other key -> other value (nonlinear D)."""
  n = 3
  plist = [_mlp_params(20 + i) for i in range(n)]
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *plist)
  reals = _normal(19, (n, B, D))
  keys = jax.random.split(KEY, n)

  def pen(p, r, k):
    return reg.dragan_penalty(functools.partial(mlp_d, p), r, k, k=0.5)

  vm = _f64(jax.jit(jax.vmap(pen))(stacked, reals, keys))
  pen_jit = jax.jit(pen)
  loop = np.array([float(pen_jit(plist[i], reals[i], keys[i]))
                   for i in range(n)])
  np.testing.assert_allclose(vm, loop, rtol=1e-5, atol=1e-7)
  assert len(set(np.round(vm, 6))) == n
  v1 = float(pen_jit(plist[0], reals[0], KEY))
  assert v1 == float(pen_jit(plist[0], reals[0], KEY))
  assert v1 != pytest.approx(
      float(pen_jit(plist[0], reals[0], jax.random.PRNGKey(7))), rel=1e-4)


# ---------------------------------------------------------------------------
# Consistency regularisation.
# ---------------------------------------------------------------------------
def test_consistency_hand_values():
  """CR = mean over examples of the squared difference: logits [B] and
  [B,1] agree; [B,2] sums per example before the mean."""
  d_x = jnp.array([1.0, 2.0, 3.0, 0.0])
  d_aug = jnp.array([0.0, 2.0, 5.0, -1.0])
  # diffs 1, 0, -2, 1 -> squares 1, 0, 4, 1 -> mean 1.5
  assert float(reg.consistency(d_x, d_aug)) == pytest.approx(1.5)
  assert float(reg.consistency(d_x[:, None], d_aug[:, None])) == (
      pytest.approx(1.5))
  two = reg.consistency(jnp.array([[1.0, 2.0], [0.0, 0.0]]),
                        jnp.array([[0.0, 0.0], [0.0, 1.0]]))
  assert float(two) == pytest.approx((5.0 + 1.0) / 2)  # per example 5, 1
  assert float(reg.consistency(d_x, d_x)) == 0.0
  with pytest.raises(ValueError, match='differ'):
    reg.consistency(d_x, d_aug[:, None])


def test_balanced_consistency_hand_values_and_defaults():
  """bCR = lambda_real CR(real) + lambda_fake CR(fake), defaults 10, 10."""
  d_real = jnp.array([1.0, 2.0, 3.0, 0.0])
  d_real_aug = jnp.array([0.0, 2.0, 5.0, -1.0])   # CR(real) = 1.5
  d_fake = jnp.array([-1.0, 0.5, 0.0, 2.0])
  d_fake_aug = jnp.array([-1.0, 1.5, 0.0, 0.0])   # squares 0,1,0,4 -> 1.25
  assert float(reg.balanced_consistency(d_real, d_real_aug, d_fake,
                                        d_fake_aug)) == pytest.approx(27.5)
  assert float(reg.balanced_consistency(
      d_real, d_real_aug, d_fake, d_fake_aug, lambda_real=2.0,
      lambda_fake=0.5)) == pytest.approx(2 * 1.5 + 0.5 * 1.25)
  assert float(reg.balanced_consistency(
      d_real, d_real_aug, d_fake, d_fake_aug, lambda_real=0.0,
      lambda_fake=1.0)) == pytest.approx(1.25)
  assert reg.BCR_LAMBDA_REAL == reg.BCR_LAMBDA_FAKE == 10.0
  assert reg.CR_LAMBDA == 10.0


def test_latent_consistency_hand_values_and_defaults():
  """zCR: L_dis = CR on D(G(z)) vs D(G(z + dz)); L_gen = -mean over
  examples of the squared distance summed over pixels. Defaults
  lambda_dis = 5, lambda_gen = 0.5, sigma = 0.03."""
  assert float(reg.latent_consistency_d(
      jnp.array([[0.0], [1.0]]), jnp.array([[3.0], [1.0]]))) == (
          pytest.approx(4.5))
  g_z = jnp.zeros((2, 2, 2, 1))
  g_noisy = jnp.concatenate([jnp.ones((1, 2, 2, 1)),
                             2.0 * jnp.ones((1, 2, 2, 1))])
  # per example: 4 * 1^2 = 4 and 4 * 2^2 = 16 -> mean 10, negated.
  assert float(reg.latent_consistency_g(g_z, g_noisy)) == pytest.approx(-10.0)
  assert float(reg.latent_consistency_g(g_noisy, g_noisy)) == 0.0
  assert (reg.ZCR_LAMBDA_DIS, reg.ZCR_LAMBDA_GEN, reg.ZCR_SIGMA_NOISE) == (
      5.0, 0.5, 0.03)
  with pytest.raises(ValueError):
    reg.latent_consistency_g(g_z, g_noisy[:1])


def test_latent_consistency_g_pushes_samples_apart():
  """grad of L_gen w.r.t. G(z) is -2 (G(z) - G(z+dz)) / B: a descent step
  on G's loss increases the distance."""
  g_z, g_noisy = _normal(30, (B, 3, 3, 1)), _normal(31, (B, 3, 3, 1))
  grad = jax.grad(reg.latent_consistency_g)(g_z, g_noisy)
  np.testing.assert_allclose(_f64(grad), -2 * (_f64(g_z) - _f64(g_noisy)) / B,
                             rtol=1e-5, atol=1e-7)
  stepped = g_z - 0.1 * grad
  assert float(reg.latent_consistency_g(stepped, g_noisy)) < float(
      reg.latent_consistency_g(g_z, g_noisy))


def test_perturb_latents_statistics():
  """z + dz with dz ~ N(0, sigma^2): mean ~ z, std ~ sigma (default 0.03)
  over many samples; the draw is jax.random.normal(key, z.shape)."""
  z = jnp.full((20000, 8), 0.7, jnp.float32)
  dz = _f64(reg.perturb_latents(z, KEY)) - 0.7
  n = dz.size
  assert abs(dz.mean()) < 4 * 0.03 / np.sqrt(n)
  assert dz.std() == pytest.approx(0.03, rel=0.02)
  small = _normal(32, (4, 8))
  key = jax.random.PRNGKey(5)
  np.testing.assert_allclose(
      _f64(reg.perturb_latents(small, key, sigma=0.2)),
      _f64(small) + 0.2 * _f64(jax.random.normal(key, (4, 8))), rtol=1e-6,
      atol=1e-7)


def test_consistency_check_grads():
  """check_grads (order 2, rev) of CR and zCR's G term w.r.t. the outputs;
  order 1 of CR on an MLP D w.r.t. its parameters (x vs an augmented x)."""
  check_grads(reg.consistency, (_normal(33, (B, 1)), _normal(34, (B, 1))),
              order=2, modes=['rev'])
  check_grads(reg.latent_consistency_g,
              (_normal(35, (B, 2, 2, 1)), _normal(36, (B, 2, 2, 1))), order=2,
              modes=['rev'])
  x = _normal(37, (B, D))
  x_aug = x + _normal(38, (B, D), 0.3)

  def cr(params):
    return reg.consistency(mlp_d(params, x), mlp_d(params, x_aug))

  check_grads(cr, (_mlp_params(39),), order=1, modes=['rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


# ---------------------------------------------------------------------------
# LeCam.
# ---------------------------------------------------------------------------
D_REAL = jnp.array([0.5, 2.0, -1.0])
D_FAKE = jnp.array([-2.0, 0.3, 1.0])
EMA_REAL, EMA_FAKE = jnp.float32(0.8), jnp.float32(0.1)


def test_lecam_hand_values_with_relu_cut():
  """Hinge (code) form: relu(D(x) - a_F) = .4, 1.9, 0 (cut) and
  relu(a_R - D(G(z))) = 2.8, .5, 0 (cut): (0.16 + 3.61) / 3 +
  (7.84 + 0.25) / 3. Paper form: (0.16 + 3.61 + 1.21) / 3 +
  (7.84 + 0.25 + 0.04) / 3."""
  got = reg.lecam(D_REAL, D_FAKE, EMA_REAL, EMA_FAKE)
  assert float(got) == pytest.approx((0.16 + 3.61) / 3 + (7.84 + 0.25) / 3,
                                     rel=1e-5)
  paper = reg.lecam(D_REAL, D_FAKE, EMA_REAL, EMA_FAKE, hinge=False)
  assert float(paper) == pytest.approx(
      (0.16 + 3.61 + 1.21) / 3 + (7.84 + 0.25 + 0.04) / 3, rel=1e-5)
  # NumPy references.
  r, f = _f64(D_REAL), _f64(D_FAKE)
  np.testing.assert_allclose(
      float(got), np.mean(np.maximum(r - 0.1, 0)**2) +
      np.mean(np.maximum(0.8 - f, 0)**2), rtol=1e-5)
  # [B, 1] logits give the same value.
  assert float(reg.lecam(D_REAL[:, None], D_FAKE[:, None], EMA_REAL,
                         EMA_FAKE)) == pytest.approx(float(got), rel=1e-6)


def test_lecam_everything_cut_is_zero():
  """Real outputs below the fake anchor and fake outputs above the real
  anchor: the hinge form is exactly 0 with a zero gradient; the paper's
  form is not."""
  d_real, d_fake = jnp.array([-1.0, 0.0]), jnp.array([1.0, 2.0])
  ema_real, ema_fake = jnp.float32(0.5), jnp.float32(0.2)
  assert float(reg.lecam(d_real, d_fake, ema_real, ema_fake)) == 0.0
  g = jax.grad(reg.lecam, argnums=(0, 1))(d_real, d_fake, ema_real, ema_fake)
  for gi in g:
    np.testing.assert_array_equal(_f64(gi), 0.0)
  assert float(reg.lecam(d_real, d_fake, ema_real, ema_fake,
                         hinge=False)) > 0


def test_lecam_gradients_and_constant_anchors():
  """d/d D(x) = 2 relu(D(x) - a_F) / B, d/d D(G(z)) = -2 relu(a_R -
  D(G(z))) / B; the anchors get exactly no gradient."""
  g_real, g_fake, g_er, g_ef = jax.grad(reg.lecam, argnums=(0, 1, 2, 3))(
      D_REAL, D_FAKE, EMA_REAL, EMA_FAKE)
  np.testing.assert_allclose(_f64(g_real), 2 * np.array([0.4, 1.9, 0.0]) / 3,
                             rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(_f64(g_fake), -2 * np.array([2.8, 0.5, 0.0]) / 3,
                             rtol=1e-5, atol=1e-7)
  assert float(g_er) == 0.0 and float(g_ef) == 0.0


def test_lecam_check_grads():
  """check_grads (order 2, rev) w.r.t. the outputs, away from the kink,
  for both forms; and order 1 w.r.t. an MLP D's parameters."""
  for hinge in (True, False):
    check_grads(lambda r, f: reg.lecam(r, f, EMA_REAL, EMA_FAKE, hinge=hinge),
                (jnp.array([0.5, 2.0, -1.0]), jnp.array([-2.0, 0.3, 1.0])),
                order=2, modes=['rev'])
  real, fake = _normal(40, (B, D), 2.0), _normal(41, (B, D), 2.0)

  def pen(params):
    return reg.lecam(mlp_d(params, real), mlp_d(params, fake),
                     jnp.float32(0.2), jnp.float32(-0.1))

  check_grads(pen, (_mlp_params(42),), order=1, modes=['rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


def test_ema_update():
  """decay ema + (1 - decay) value; default decay 0.99; n constant updates
  give v + (ema0 - v) decay^n; value is a constant (no gradient)."""
  assert float(reg.ema_update(1.0, 3.0, decay=0.9)) == pytest.approx(1.2)
  assert float(reg.ema_update(1.0, 3.0)) == pytest.approx(1.02)
  ema = jnp.float32(1.0)
  for _ in range(50):
    ema = reg.ema_update(ema, 3.0, decay=0.9)
  assert float(ema) == pytest.approx(3.0 + (1.0 - 3.0) * 0.9**50, rel=1e-5)
  assert float(jax.grad(lambda v: reg.ema_update(0.0, v, decay=0.5))(2.0)) == (
      0.0)
  assert float(jax.jit(functools.partial(reg.ema_update, decay=0.9))(
      1.0, 3.0)) == pytest.approx(1.2)


# ---------------------------------------------------------------------------
# Instance noise.
# ---------------------------------------------------------------------------
def test_instance_noise_statistics():
  """x + sigma N(0, I): mean ~ x, std ~ sigma over many samples;
  sigma = 0 returns x exactly; traced sigma under jit."""
  x = jnp.full((20000,), 2.0, jnp.float32)
  k1, k2 = jax.random.split(KEY)
  for sigma, key in ((0.1, k1), (1.5, k2)):
    noisy = _f64(reg.instance_noise(x, key, sigma))
    assert abs(noisy.mean() - 2.0) < 4 * sigma / np.sqrt(x.size)
    assert noisy.std() == pytest.approx(sigma, rel=0.02)
  np.testing.assert_array_equal(_f64(reg.instance_noise(x, KEY, 0.0)),
                                _f64(x))
  want = _f64(x) + 0.3 * _f64(jax.random.normal(k1, x.shape))
  got = jax.jit(reg.instance_noise)(x, k1, jnp.float32(0.3))
  np.testing.assert_allclose(_f64(got), want, rtol=1e-6, atol=1e-6)
  # Independent keys for real and fake give different noise.
  assert not np.allclose(_f64(reg.instance_noise(x, k1, 1.0)),
                         _f64(reg.instance_noise(x, k2, 1.0)))


@pytest.mark.parametrize('kind,expected', [
    ('linear', {0: 2.0, 25: 1.5, 50: 1.0, 100: 0.0, 150: 0.0}),
    ('exponential', {0: 2.0, 50: 0.2, 100: 0.02, 200: 0.0002}),
    ('constant', {0: 2.0, 50: 2.0, 100: 2.0, 1000: 2.0}),
])
def test_noise_schedule_values(kind, expected):
  """sigma0 = 2, anneal_steps = 100: linear 2 (1 - t)_+, exponential
  2 * 0.01^t, constant 2; eager and jit with a traced int step agree."""
  sched = functools.partial(reg.noise_schedule, sigma0=2.0, anneal_steps=100,
                            kind=kind)
  jitted = jax.jit(sched)
  for step, want in expected.items():
    assert float(sched(step)) == pytest.approx(want, rel=1e-5, abs=1e-7)
    assert float(jitted(jnp.int32(step))) == pytest.approx(want, rel=1e-5,
                                                           abs=1e-7)
  steps = jnp.arange(0, 300, 7)
  np.testing.assert_allclose(_f64(jax.vmap(sched)(steps)),
                             [float(sched(int(s))) for s in steps], rtol=1e-6,
                             atol=1e-7)


def test_noise_schedule_monotone_and_final_ratio():
  """Linear and exponential schedules never increase; final_ratio sets the
  exponential value at anneal_steps."""
  steps = jnp.arange(0, 400)
  for kind in ('linear', 'exponential'):
    s = _f64(reg.noise_schedule(steps, sigma0=1.0, anneal_steps=200,
                                kind=kind))
    assert np.all(np.diff(s) <= 0)
  assert float(reg.noise_schedule(200, sigma0=1.0, anneal_steps=200,
                                  kind='exponential', final_ratio=0.5)) == (
                                      pytest.approx(0.5))


def test_noise_schedule_errors():
  with pytest.raises(ValueError, match='kind'):
    reg.noise_schedule(0, sigma0=1.0, anneal_steps=10, kind='cosine')
  with pytest.raises(ValueError, match='anneal_steps'):
    reg.noise_schedule(0, sigma0=1.0, anneal_steps=0)
  with pytest.raises(ValueError, match='final_ratio'):
    reg.noise_schedule(0, sigma0=1.0, anneal_steps=10, kind='exponential',
                       final_ratio=1.5)


def test_instance_noise_annealed_to_zero_under_jit():
  """With a linear schedule, the jitted noisy batch equals x from
  anneal_steps on and differs before."""
  x = _normal(51, (B, D))

  @jax.jit
  def noisy(step, key):
    return reg.instance_noise(
        x, key, reg.noise_schedule(step, sigma0=0.5, anneal_steps=10))

  np.testing.assert_array_equal(_f64(noisy(10, KEY)), _f64(x))
  np.testing.assert_array_equal(_f64(noisy(25, KEY)), _f64(x))
  assert not np.allclose(_f64(noisy(3, KEY)), _f64(x))


# ---------------------------------------------------------------------------
# One-sided label smoothing.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('t', [0.9, 0.7, 1.0])
def test_smoothed_loss_matches_optax_reference(t):
  """Equals mean BCE(real, t) + mean BCE(fake, 0) from optax."""
  real, fake = _normal(60, (B,), 3.0), _normal(61, (B, 1), 3.0)
  want = (jnp.mean(optax.sigmoid_binary_cross_entropy(real, jnp.full_like(
      real, t))) + jnp.mean(optax.sigmoid_binary_cross_entropy(
          fake, jnp.zeros_like(fake))))
  got = reg.smoothed_d_loss(real, fake, real_target=t)
  np.testing.assert_allclose(float(got), float(want), rtol=1e-5)


def test_smoothed_loss_defaults_and_standard_limit():
  """real_target defaults to 0.9; real_target = 1 is the standard
  (minimax) D loss; the fake part is mean softplus(fake) whatever t
  (one-sided)."""
  real, fake = _normal(62, (B,), 2.0), _normal(63, (B,), 2.0)
  assert float(reg.smoothed_d_loss(real, fake)) == float(
      reg.smoothed_d_loss(real, fake, real_target=0.9))
  np.testing.assert_allclose(
      float(reg.smoothed_d_loss(real, fake, real_target=1.0)),
      float(losses.minimax_d_loss(real, fake)), rtol=1e-6)
  fake_part = np.mean(np.log1p(np.exp(_f64(fake))))
  for t in (0.6, 0.9, 1.0):
    z = jnp.zeros_like(real)  # real part at logit 0 is log 2 for every t
    assert float(reg.smoothed_d_loss(z, fake, real_target=t)) == (
        pytest.approx(np.log(2) + fake_part, rel=1e-5))
  # Smoothing changes the real part only (different t, same fake part).
  assert float(reg.smoothed_d_loss(real, fake, real_target=0.9)) != (
      pytest.approx(float(reg.smoothed_d_loss(real, fake, real_target=1.0))))


def test_smoothed_loss_optimum_and_stability():
  """The real part is minimal at logit(t) = log 9 for t = 0.9 (gradient 0,
  value = binary entropy of 0.9); finite for logits +-1e4 (value
  0.1 * 1e4 for a real logit of 1e4)."""
  t = 0.9
  at_opt = jnp.full((B,), np.log(t / (1 - t)), jnp.float32)
  fake = jnp.full((B,), -1e4, jnp.float32)  # fake part ~ 0
  val, g = jax.value_and_grad(reg.smoothed_d_loss)(at_opt, fake)
  entropy = -(t * np.log(t) + (1 - t) * np.log(1 - t))
  assert float(val) == pytest.approx(entropy, rel=1e-5)
  np.testing.assert_allclose(_f64(g), 0.0, atol=1e-6)
  big = reg.smoothed_d_loss(jnp.full((B,), 1e4), jnp.full((B,), 1e4))
  assert np.isfinite(float(big))
  assert float(reg.smoothed_d_loss(jnp.full((B,), 1e4), fake)) == (
      pytest.approx(0.1 * 1e4, rel=1e-5))
  g = jax.grad(reg.smoothed_d_loss, argnums=(0, 1))(
      jnp.array([-1e4, 1e4]), jnp.array([-1e4, 1e4]))
  assert all(np.all(np.isfinite(_f64(gi))) for gi in g)


def test_smoothed_loss_check_grads():
  """check_grads (order 2, rev) w.r.t. both logits; order 1 w.r.t. an MLP
  D's parameters."""
  check_grads(reg.smoothed_d_loss, (_normal(64, (B,)), _normal(65, (B,))),
              order=2, modes=['rev'])
  real, fake = _normal(66, (B, D)), _normal(67, (B, D))
  check_grads(lambda p: reg.smoothed_d_loss(mlp_d(p, real), mlp_d(p, fake)),
              (_mlp_params(68),), order=1, modes=['rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


# ---------------------------------------------------------------------------
# Lazy regularisation.
# ---------------------------------------------------------------------------
def test_lazy_values_eager_and_jit():
  """every * penalty on multiples of every, 0 otherwise; a traced step
  under jit gives the same values."""
  p = jnp.float32(0.37)
  jitted = jax.jit(functools.partial(reg.lazy, every=4))
  for step in range(10):
    want = 4 * 0.37 if step % 4 == 0 else 0.0
    assert float(reg.lazy(p, step, every=4)) == pytest.approx(want)
    assert float(jitted(p, jnp.int32(step))) == pytest.approx(want)
  vec = jnp.array([1.0, 2.0])
  np.testing.assert_allclose(_f64(reg.lazy(vec, 16, every=16)), [16.0, 32.0])
  assert float(reg.lazy(p, 7, every=1)) == pytest.approx(0.37)


def test_lazy_cond_equals_lazy():
  """lazy_cond(step, every, fn, *args) == lazy(fn(*args), step) for every
  step, eager and under jit, with fn the DRAGAN penalty."""
  a = _sym(70)
  real = _normal(71, (B, D))

  def fn(r, k):
    return reg.dragan_penalty(functools.partial(quadratic_d, a), r, k)

  value = fn(real, KEY)
  assert float(value) > 0
  jitted = jax.jit(lambda s, r, k: reg.lazy_cond(s, 3, fn, r, k))
  wants = [float(reg.lazy(value, step, every=3)) for step in range(5)]
  assert wants[0] == wants[3] == pytest.approx(3 * float(value))
  assert wants[1] == wants[2] == wants[4] == 0.0
  assert float(reg.lazy_cond(0, 3, fn, real, KEY)) == pytest.approx(
      wants[0], rel=1e-6)
  for step in range(5):
    assert float(jitted(jnp.int32(step), real, KEY)) == pytest.approx(
        wants[step], rel=1e-6)
  # Batched step under vmap (cond -> select) still gives lazy's values.
  vm = jax.jit(jax.vmap(lambda s: reg.lazy_cond(s, 3, fn, real, KEY)))(
      jnp.arange(5))
  np.testing.assert_allclose(_f64(vm), wants, rtol=1e-6)


def test_lazy_cond_does_not_run_fn_off_step():
  """fn's body runs (a debug callback counts it) only on the
  regularisation steps, eager and under jit."""
  calls = []

  def fn(x):
    jax.debug.callback(lambda: calls.append(1))
    return jnp.sum(x**2)

  x = jnp.arange(3.0)
  jitted = jax.jit(lambda s, x_: reg.lazy_cond(s, 4, fn, x_))
  for run in (lambda s: reg.lazy_cond(s, 4, fn, x),
              lambda s: jitted(jnp.int32(s), x)):
    calls.clear()
    out = [float(run(s)) for s in range(6)]
    jax.effects_barrier()
    assert len(calls) == 2  # steps 0 and 4
    assert out == [20.0 if s % 4 == 0 else 0.0 for s in range(6)]


def test_lazy_cond_gradient_is_clean_off_step_unlike_lazy():
  """fn = sqrt(x) at x = 0 has an infinite gradient. Off-step, lazy_cond's
  gradient is exactly 0 (fn is not differentiated), whereas lazy's
  jnp.where gives 0 * inf = nan -- the documented pitfall."""
  x = jnp.float32(0.0)
  g_cond = jax.grad(lambda x_: reg.lazy_cond(1, 2, jnp.sqrt, x_))(x)
  g_lazy = jax.grad(lambda x_: reg.lazy(jnp.sqrt(x_), 1, every=2))(x)
  assert float(g_cond) == 0.0
  assert np.isnan(float(g_lazy))
  # On-step, both scale the penalty's gradient by every.
  y = jnp.float32(4.0)
  g_on = jax.grad(lambda y_: reg.lazy_cond(2, 2, jnp.sqrt, y_))(y)
  assert float(g_on) == pytest.approx(2 * 0.25)
  assert float(jax.grad(lambda y_: reg.lazy(jnp.sqrt(y_), 2, every=2))(
      y)) == pytest.approx(0.5)


def test_lazy_every_must_be_a_positive_int():
  for bad in (0, -2, 2.0, True):
    with pytest.raises(ValueError, match='every'):
      reg.lazy(jnp.float32(1.0), 0, every=bad)
    with pytest.raises(ValueError, match='every'):
      reg.lazy_cond(0, bad, jnp.sqrt, jnp.float32(1.0))


# ---------------------------------------------------------------------------
# jit == no jit, everything together.
# ---------------------------------------------------------------------------
def test_all_regularizers_jit_equals_eager():
  """Every function of the module, jitted with traced arguments (D's
  parameters, batches, keys, the step), equals its eager value."""
  params = _mlp_params(80)
  real, fake = _normal(81, (B, D)), _normal(82, (B, D))
  z = _normal(83, (B, 3))

  def everything(p, r, f, z_, key, step):
    k1, k2, k3 = jax.random.split(key, 3)
    d_fn = functools.partial(mlp_d, p)
    d_r, d_f = d_fn(r), d_fn(f)
    d_r_aug, d_f_aug = d_fn(r[:, ::-1]), d_fn(f[:, ::-1])
    z_noisy = reg.perturb_latents(z_, k2)
    return jnp.stack([
        reg.dragan_penalty(d_fn, r, k1, k=0.5),
        reg.dragan_penalty(d_fn, r, k1, interpolate=False),
        reg.consistency(d_r, d_r_aug),
        reg.balanced_consistency(d_r, d_r_aug, d_f, d_f_aug),
        reg.latent_consistency_d(d_fn(jnp.tile(z_, (1, 2))[:, :D]),
                                 d_fn(jnp.tile(z_noisy, (1, 2))[:, :D])),
        reg.latent_consistency_g(z_, z_noisy),
        reg.lecam(d_r, d_f, jnp.float32(0.3), jnp.float32(-0.2)),
        reg.lecam(d_r, d_f, jnp.float32(0.3), jnp.float32(-0.2), hinge=False),
        reg.ema_update(jnp.float32(0.3), jnp.mean(d_r)),
        jnp.sum(reg.instance_noise(r, k3, reg.noise_schedule(
            step, sigma0=0.5, anneal_steps=20))),
        reg.noise_schedule(step, sigma0=0.5, anneal_steps=20,
                           kind='exponential'),
        reg.smoothed_d_loss(d_r, d_f),
        reg.lazy(reg.consistency(d_r, d_r_aug), step, every=2),
        reg.lazy_cond(step, 2, reg.consistency, d_r, d_r_aug),
    ])

  eager = _f64(everything(params, real, fake, z, KEY, 4))
  jitted = _f64(jax.jit(everything)(params, real, fake, z, KEY, jnp.int32(4)))
  np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-6)
  assert np.all(np.isfinite(eager))
  assert eager[-1] > 0 and eager[-2] > 0  # step 4: the lazy terms are on


def test_penalties_module_names_the_same_functions():
  from gan_stability import penalties
  assert penalties.dragan is reg.dragan_penalty
  assert penalties.consistency is reg.consistency
  assert penalties.balanced_consistency is reg.balanced_consistency
  assert penalties.lecam is reg.lecam
