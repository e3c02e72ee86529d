"""Tests for gan_stability.penalties against closed forms and references."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_stability import penalties, regularizers

B, D, H = 6, 5, 7


def _rng(seed):
  return np.random.default_rng(seed)


def _normal(seed, shape, scale=1.0):
  return jnp.asarray(_rng(seed).normal(0.0, scale, shape), jnp.float32)


# ---------------------------------------------------------------------------
# Discriminators.
# ---------------------------------------------------------------------------
def linear_d(w, b, x):
  """D(x) = x @ w + b, logits [B]; grad_x D = w everywhere."""
  return x @ w + b


def quadratic_d(a, x):
  """D(x) = a/2 ||x||^2 per example, logits [B]; grad_x D = a x."""
  return 0.5 * a * jnp.sum(jnp.square(x), axis=-1)


def image_d(wt, vt, x):
  """D(x) = sum(W * x) + 1/2 sum(V * x^2) over pixels; grad = W + V x."""
  return jnp.sum(wt * x + 0.5 * vt * jnp.square(x), axis=(1, 2, 3))


def mlp_d(params, x):
  """Small nonlinear MLP on a batch [B, D] -> logits [B, 1]."""
  h = jnp.tanh(x @ params['w1'] + params['b1'])
  return (h @ params['w2'] + params['b2'])[:, None]


def mlp_single(params, xi):
  """The same MLP on one example [D] -> scalar."""
  h = jnp.tanh(xi @ params['w1'] + params['b1'])
  return h @ params['w2'] + params['b2']


def _mlp_params(seed):
  r = _rng(seed)
  return {
      'w1': jnp.asarray(r.normal(0, 0.8, (D, H)), jnp.float32),
      'b1': jnp.asarray(r.normal(0, 0.3, (H,)), jnp.float32),
      'w2': jnp.asarray(r.normal(0, 0.8, (H,)), jnp.float32),
      'b2': jnp.asarray(r.normal(0, 0.3, ()), jnp.float32),
  }


def _w_with_norm(norm, seed=0):
  w = _rng(seed).normal(0, 1, (D,))
  return jnp.asarray(w / np.linalg.norm(w) * norm, jnp.float32)


def _eps_like_impl(key, real):
  """The interpolation coefficients the implementation draws (same call)."""
  shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  return np.asarray(jax.random.uniform(key, shape, dtype=real.dtype),
                    np.float64)


KEY = jax.random.PRNGKey(42)


# ---------------------------------------------------------------------------
# Linear D: closed forms.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('norm', [0.3, 1.0, 2.5])
def test_r1_r2_linear_equal_squared_weight_norm(norm):
  """Linear D has ||grad_x D|| = ||w|| everywhere: R1 = R2 = ||w||^2."""
  w = _w_with_norm(norm)
  d_fn = functools.partial(linear_d, w, jnp.float32(0.7))
  real, fake = _normal(1, (B, D), 3.0), _normal(2, (B, D), 3.0)
  np.testing.assert_allclose(float(penalties.r1_penalty(d_fn, real)),
                             norm**2, rtol=1e-5)
  np.testing.assert_allclose(float(penalties.r2_penalty(d_fn, fake)),
                             norm**2, rtol=1e-5)


@pytest.mark.parametrize('norm', [0.3, 2.5])
@pytest.mark.parametrize('target', [1.0, 0.5])
def test_gp_linear_closed_form(norm, target):
  """Linear D: two-sided GP = (||w|| - t)^2; one-sided GP = relu(||w||-t)^2,
  which is 0 when ||w|| < t."""
  w = _w_with_norm(norm, seed=3)
  d_fn = functools.partial(linear_d, w, jnp.float32(-1.0))
  real, fake = _normal(4, (B, D)), _normal(5, (B, D))
  two = penalties.gradient_penalty(d_fn, real, fake, KEY, target=target)
  one = penalties.gradient_penalty(d_fn, real, fake, KEY, target=target,
                                   one_sided=True)
  np.testing.assert_allclose(float(two), (norm - target)**2, rtol=1e-5,
                             atol=1e-7)
  np.testing.assert_allclose(float(one), max(norm - target, 0.0)**2,
                             rtol=1e-5, atol=1e-7)
  if norm < target:
    assert float(one) == 0.0
  else:
    assert float(one) == pytest.approx(float(two), rel=1e-6)


def test_gp_default_target_is_one():
  """gradient_penalty's default target is 1 (WGAN-GP)."""
  w = _w_with_norm(3.0)
  d_fn = functools.partial(linear_d, w, 0.0)
  real, fake = _normal(6, (B, D)), _normal(7, (B, D))
  np.testing.assert_allclose(
      float(penalties.gradient_penalty(d_fn, real, fake, KEY)), 4.0,
      rtol=1e-5)


def test_linear_r1_grad_wrt_weights_is_2w():
  """d R1 / d w = 2 w for linear D (the D update's double gradient)."""
  w = _normal(8, (D,))
  real = _normal(9, (B, D))
  g = jax.grad(lambda w_: penalties.r1_penalty(
      functools.partial(linear_d, w_, 0.0), real))(w)
  np.testing.assert_allclose(np.asarray(g), 2 * np.asarray(w), rtol=1e-5)
  g2 = jax.grad(lambda w_: penalties.r2_penalty(
      functools.partial(linear_d, w_, 0.0), real))(w)
  np.testing.assert_allclose(np.asarray(g2), 2 * np.asarray(w), rtol=1e-5)


@pytest.mark.parametrize('norm,target', [(2.5, 1.0), (0.3, 1.0), (2.5, 0.5)])
def test_linear_gp_grad_wrt_weights(norm, target):
  """d GP / d w = 2 (||w|| - t) w / ||w||; the one-sided version equals it
  above the target and is 0 below it."""
  w = _w_with_norm(norm, seed=10)
  real, fake = _normal(11, (B, D)), _normal(12, (B, D))

  def gp(w_, one_sided):
    return penalties.gradient_penalty(functools.partial(linear_d, w_, 0.0),
                                      real, fake, KEY, target=target,
                                      one_sided=one_sided)

  w64 = np.asarray(w, np.float64)
  n = np.linalg.norm(w64)
  expected = 2 * (n - target) * w64 / n
  np.testing.assert_allclose(np.asarray(jax.grad(gp)(w, False)), expected,
                             rtol=1e-4, atol=1e-6)
  g1 = np.asarray(jax.grad(gp)(w, True))
  if norm > target:
    np.testing.assert_allclose(g1, expected, rtol=1e-4, atol=1e-6)
  else:
    np.testing.assert_array_equal(g1, 0.0)


def test_gp_flat_discriminator_is_finite():
  """A locally flat D (w = 0) gives GP ~ target^2 and a finite (zero)
  gradient w.r.t. w, thanks to the sqrt floor."""
  w = jnp.zeros((D,), jnp.float32)
  real, fake = _normal(13, (B, D)), _normal(14, (B, D))

  def gp(w_):
    return penalties.gradient_penalty(functools.partial(linear_d, w_, 0.0),
                                      real, fake, KEY)

  val, g = jax.value_and_grad(gp)(w)
  assert float(val) == pytest.approx(1.0, abs=1e-5)
  assert np.all(np.isfinite(np.asarray(g)))
  np.testing.assert_allclose(np.asarray(g), 0.0, atol=1e-6)


# ---------------------------------------------------------------------------
# Quadratic / image D: per-example gradients and the interpolation.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('a', [0.5, -2.0])
def test_r1_r2_quadratic(a):
  """grad_x (a/2 ||x||^2) = a x, so R1 = a^2 mean_i ||x_i||^2."""
  d_fn = functools.partial(quadratic_d, a)
  x = _normal(15, (B, D), 2.0)
  x64 = np.asarray(x, np.float64)
  ref = a**2 * np.mean(np.sum(x64**2, axis=1))
  np.testing.assert_allclose(float(penalties.r1_penalty(d_fn, x)), ref,
                             rtol=1e-5)
  np.testing.assert_allclose(float(penalties.r2_penalty(d_fn, x)), ref,
                             rtol=1e-5)


@pytest.mark.parametrize('a', [0.5, -2.0])
@pytest.mark.parametrize('one_sided', [False, True])
def test_gp_quadratic_reproduces_interpolation(a, one_sided):
  """GP with quadratic D equals the numpy formula on x_hat = eps real +
  (1 - eps) fake with eps drawn exactly as the implementation does."""
  d_fn = functools.partial(quadratic_d, a)
  real, fake = _normal(16, (B, D)), _normal(17, (B, D), 0.5)
  key = jax.random.PRNGKey(3)
  eps = _eps_like_impl(key, real)
  assert eps.shape == (B, 1)
  x_hat = eps * np.asarray(real, np.float64) + (1 - eps) * np.asarray(
      fake, np.float64)
  norms = abs(a) * np.linalg.norm(x_hat, axis=1)
  excess = norms - 1.0
  if one_sided:
    excess = np.maximum(excess, 0.0)
  ref = np.mean(excess**2)
  got = penalties.gradient_penalty(d_fn, real, fake, key, one_sided=one_sided)
  np.testing.assert_allclose(float(got), ref, rtol=1e-5, atol=1e-7)
  # Sanity: the test is sensitive to which side gets eps.
  swapped = np.mean((abs(a) * np.linalg.norm(
      eps * np.asarray(fake, np.float64) +
      (1 - eps) * np.asarray(real, np.float64), axis=1) - 1.0)**2)
  assert not np.isclose(swapped, float(got), rtol=1e-3)


def test_gp_depends_on_key():
  """Different keys give different interpolates (and values) for a
  nonlinear D; the same key gives the same value."""
  d_fn = functools.partial(quadratic_d, 1.5)
  real, fake = _normal(18, (B, D)), _normal(19, (B, D))
  v1 = float(penalties.gradient_penalty(d_fn, real, fake, KEY))
  v1b = float(penalties.gradient_penalty(d_fn, real, fake, KEY))
  v2 = float(penalties.gradient_penalty(d_fn, real, fake,
                                        jax.random.PRNGKey(7)))
  assert v1 == v1b
  assert v1 != pytest.approx(v2, rel=1e-3)


def test_gp_accepts_new_style_keys():
  """A typed key from jax.random.key gives the numpy reference value."""
  d_fn = functools.partial(quadratic_d, 1.0)
  real, fake = _normal(20, (B, D)), _normal(21, (B, D))
  key = jax.random.key(5)
  eps = _eps_like_impl(key, real)
  x_hat = eps * np.asarray(real, np.float64) + (1 - eps) * np.asarray(
      fake, np.float64)
  ref = np.mean((np.linalg.norm(x_hat, axis=1) - 1.0)**2)
  np.testing.assert_allclose(
      float(penalties.gradient_penalty(d_fn, real, fake, key)), ref,
      rtol=1e-5)


def _image_setup():
  r = _rng(22)
  wt = jnp.asarray(r.normal(0, 0.2, (4, 4, 3)), jnp.float32)
  vt = jnp.asarray(r.normal(0, 0.5, (4, 4, 3)), jnp.float32)
  real = jnp.asarray(r.normal(0, 1, (B, 4, 4, 3)), jnp.float32)
  fake = jnp.asarray(r.normal(0, 1, (B, 4, 4, 3)), jnp.float32)
  return wt, vt, real, fake


def test_image_shaped_r1_r2():
  """Image inputs [B,4,4,3]: grad = W + V x per example, norms summed over
  all pixels/channels."""
  wt, vt, real, fake = _image_setup()
  d_fn = functools.partial(image_d, wt, vt)
  w64, v64 = np.asarray(wt, np.float64), np.asarray(vt, np.float64)
  for fn, x in [(penalties.r1_penalty, real), (penalties.r2_penalty, fake)]:
    g = w64 + v64 * np.asarray(x, np.float64)
    ref = np.mean(np.sum(g**2, axis=(1, 2, 3)))
    np.testing.assert_allclose(float(fn(d_fn, x)), ref, rtol=1e-5)


def test_image_shaped_linear_gp():
  """Image inputs with a linear D (V = 0): GP = (||W|| - t)^2."""
  wt, _, real, fake = _image_setup()
  d_fn = functools.partial(image_d, wt, jnp.zeros_like(wt))
  n = np.linalg.norm(np.asarray(wt, np.float64))
  np.testing.assert_allclose(
      float(penalties.gradient_penalty(d_fn, real, fake, KEY, target=0.5)),
      (n - 0.5)**2, rtol=1e-5)


def test_image_shaped_gp_reproduces_interpolation():
  """Image inputs: eps has shape (B,1,1,1); GP equals the numpy formula."""
  wt, vt, real, fake = _image_setup()
  d_fn = functools.partial(image_d, wt, vt)
  key = jax.random.PRNGKey(11)
  eps = _eps_like_impl(key, real)
  assert eps.shape == (B, 1, 1, 1)
  x_hat = eps * np.asarray(real, np.float64) + (1 - eps) * np.asarray(
      fake, np.float64)
  g = np.asarray(wt, np.float64) + np.asarray(vt, np.float64) * x_hat
  norms = np.sqrt(np.sum(g**2, axis=(1, 2, 3)))
  for target in (1.0, 2.0):
    ref = np.mean((norms - target)**2)
    np.testing.assert_allclose(
        float(penalties.gradient_penalty(d_fn, real, fake, key,
                                         target=target)), ref, rtol=1e-5)


# ---------------------------------------------------------------------------
# Nonlinear MLP D.
# ---------------------------------------------------------------------------
def _per_example_sq_norms(params, x):
  g = jax.vmap(jax.grad(mlp_single, argnums=1), in_axes=(None, 0))(params, x)
  return np.sum(np.asarray(g, np.float64)**2, axis=1)


def _mlp_input_grads_numpy(params, x):
  """Analytic per-example input gradient W1 (w2 * (1 - tanh^2))."""
  p = {k: np.asarray(v, np.float64) for k, v in params.items()}
  x = np.asarray(x, np.float64)
  h = np.tanh(x @ p['w1'] + p['b1'])
  return ((1 - h**2) * p['w2']) @ p['w1'].T


def test_mlp_r1_matches_per_example_reference():
  """R1/R2 on an MLP equal mean ||grad D(x_i)||^2 from vmap(grad) and from
  the analytic tanh-MLP input gradient."""
  params = _mlp_params(23)
  x = _normal(24, (B, D), 1.5)
  d_fn = functools.partial(mlp_d, params)
  ref_vmap = np.mean(_per_example_sq_norms(params, x))
  ref_np = np.mean(np.sum(_mlp_input_grads_numpy(params, x)**2, axis=1))
  np.testing.assert_allclose(ref_vmap, ref_np, rtol=1e-5)
  np.testing.assert_allclose(float(penalties.r1_penalty(d_fn, x)), ref_np,
                             rtol=1e-5)
  np.testing.assert_allclose(float(penalties.r2_penalty(d_fn, x)), ref_np,
                             rtol=1e-5)


@pytest.mark.parametrize('one_sided', [False, True])
def test_mlp_gp_matches_per_example_reference(one_sided):
  """GP on an MLP equals the per-example vmap(grad) reference evaluated at
  the implementation's interpolates."""
  params = _mlp_params(25)
  real, fake = _normal(26, (B, D), 1.5), _normal(27, (B, D), 1.5)
  key = jax.random.PRNGKey(9)
  eps = jnp.asarray(_eps_like_impl(key, real), jnp.float32)
  x_hat = eps * real + (1.0 - eps) * fake
  norms = np.sqrt(_per_example_sq_norms(params, x_hat))
  target = float(np.median(norms))  # some above, some below the target
  excess = norms - target
  if one_sided:
    excess = np.maximum(excess, 0.0)
  ref = np.mean(excess**2)
  got = penalties.gradient_penalty(functools.partial(mlp_d, params), real,
                                   fake, key, target=target,
                                   one_sided=one_sided)
  np.testing.assert_allclose(float(got), ref, rtol=1e-4, atol=1e-7)


def test_mlp_column_and_flat_logits_agree():
  """d_fn returning [B, 1] and [B] give identical penalties."""
  params = _mlp_params(28)
  real, fake = _normal(29, (B, D)), _normal(30, (B, D))
  col = functools.partial(mlp_d, params)
  flat = lambda x: mlp_d(params, x)[:, 0]
  for name in ('gp', 'gp_one_sided', 'r1', 'r2'):
    fn = penalties.get_penalty(name, target=0.3)
    np.testing.assert_allclose(float(fn(col, real, fake, KEY)),
                               float(fn(flat, real, fake, KEY)), rtol=1e-6)


@pytest.mark.parametrize('name', ['r1', 'r2', 'gp', 'gp_one_sided'])
def test_mlp_penalty_grads_wrt_params_check_grads(name):
  """Finite-difference check (order 1, rev) of each penalty as a function
  of the MLP's parameters -- the double gradient the D update uses."""
  real, fake = _normal(31, (B, D)), _normal(32, (B, D))
  fn = penalties.get_penalty(name, target=0.2)

  def pen(params):
    return fn(functools.partial(mlp_d, params), real, fake, KEY)

  check_grads(pen, (_mlp_params(33),), order=1, modes=['rev'], atol=1e-2,
              rtol=1e-2, eps=1e-3)


def test_mlp_r1_param_grad_matches_reference_grad():
  """jax.grad of R1 w.r.t. MLP params equals jax.grad of the independent
  vmap(grad) per-example reference."""
  params = _mlp_params(34)
  x = _normal(35, (B, D))

  def ref(p):
    g = jax.vmap(jax.grad(mlp_single, argnums=1), in_axes=(None, 0))(p, x)
    return jnp.mean(jnp.sum(g**2, axis=1))

  got = jax.grad(lambda p: penalties.r1_penalty(
      functools.partial(mlp_d, p), x))(params)
  want = jax.grad(ref)(params)
  for k in params:
    np.testing.assert_allclose(np.asarray(got[k]), np.asarray(want[k]),
                               rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------
# Gradients w.r.t. the inputs.
# ---------------------------------------------------------------------------
def test_r2_passes_no_gradient_to_fake():
  """R2 treats fake as a constant: grad w.r.t. fake is exactly 0, whereas
  R1's gradient w.r.t. real is 2 a^2 x / B for quadratic D."""
  a = 1.5
  d_fn = functools.partial(quadratic_d, a)
  x = _normal(36, (B, D))
  g2 = jax.grad(lambda f: penalties.r2_penalty(d_fn, f))(x)
  np.testing.assert_array_equal(np.asarray(g2), 0.0)
  g1 = jax.grad(lambda r: penalties.r1_penalty(d_fn, r))(x)
  np.testing.assert_allclose(np.asarray(g1), 2 * a**2 * np.asarray(x) / B,
                             rtol=1e-5)


# ---------------------------------------------------------------------------
# Transformations.
# ---------------------------------------------------------------------------
def test_penalties_under_jit():
  """jit-compiled penalties (D params as traced args) equal eager values."""
  params = _mlp_params(37)
  real, fake = _normal(38, (B, D)), _normal(39, (B, D))

  def all_pens(p, r, f, k):
    d_fn = functools.partial(mlp_d, p)
    return jnp.stack([
        penalties.r1_penalty(d_fn, r),
        penalties.r2_penalty(d_fn, f),
        penalties.gradient_penalty(d_fn, r, f, k, target=0.5),
        penalties.gradient_penalty(d_fn, r, f, k, target=0.5,
                                   one_sided=True),
    ])

  eager = np.asarray(all_pens(params, real, fake, KEY))
  jitted = np.asarray(jax.jit(all_pens)(params, real, fake, KEY))
  np.testing.assert_allclose(jitted, eager, rtol=1e-5, atol=1e-7)
  assert np.all(eager > 0)


def test_penalties_under_vmap_equal_python_loop():
  """vmap over several independent (params, real, fake, key) sets equals a
  Python loop over them, for every penalty."""
  n = 3
  plist = [_mlp_params(40 + i) for i in range(n)]
  stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *plist)
  reals = _normal(50, (n, B, D))
  fakes = _normal(51, (n, B, D))
  keys = jax.random.split(KEY, n)

  def all_pens(p, r, f, k):
    d_fn = functools.partial(mlp_d, p)
    return jnp.stack([
        penalties.r1_penalty(d_fn, r),
        penalties.r2_penalty(d_fn, f),
        penalties.gradient_penalty(d_fn, r, f, k, target=0.5),
        penalties.gradient_penalty(d_fn, r, f, k, target=0.5,
                                   one_sided=True),
    ])

  vm = np.asarray(jax.vmap(all_pens)(stacked, reals, fakes, keys))
  loop = np.stack([np.asarray(all_pens(plist[i], reals[i], fakes[i], keys[i]))
                   for i in range(n)])
  assert vm.shape == (n, 4)
  np.testing.assert_allclose(vm, loop, rtol=1e-5, atol=1e-7)
  # Different parameter sets give different values (vmap did not collapse).
  assert not np.allclose(vm[0], vm[1])


def test_vmap_over_linear_weights_closed_form():
  """vmap of R1 / GP over a stack of linear weights gives ||w_k||^2 and
  (||w_k|| - 1)^2 per row."""
  norms = np.array([0.5, 1.0, 2.0, 3.0])
  ws = jnp.stack([_w_with_norm(nm, seed=i) for i, nm in enumerate(norms)])
  real, fake = _normal(52, (B, D)), _normal(53, (B, D))
  r1 = jax.vmap(lambda w: penalties.r1_penalty(
      functools.partial(linear_d, w, 0.0), real))(ws)
  gp = jax.vmap(lambda w: penalties.gradient_penalty(
      functools.partial(linear_d, w, 0.0), real, fake, KEY))(ws)
  np.testing.assert_allclose(np.asarray(r1), norms**2, rtol=1e-5)
  np.testing.assert_allclose(np.asarray(gp), (norms - 1.0)**2, rtol=1e-5,
                             atol=1e-7)


def test_jit_grad_of_penalty_matches_eager_grad():
  """jax.jit(jax.grad(penalty wrt params)) equals the eager gradient."""
  params = _mlp_params(54)
  real, fake = _normal(55, (B, D)), _normal(56, (B, D))

  def gp(p):
    return penalties.gradient_penalty(functools.partial(mlp_d, p), real,
                                      fake, KEY)

  eager = jax.grad(gp)(params)
  jitted = jax.jit(jax.grad(gp))(params)
  for k in params:
    np.testing.assert_allclose(np.asarray(jitted[k]), np.asarray(eager[k]),
                               rtol=1e-5, atol=1e-7)
  # The output bias does not affect grad_x D, so its gradient is exactly 0;
  # every other parameter gets a nonzero gradient.
  assert float(eager['b2']) == 0.0
  for k in ('w1', 'b1', 'w2'):
    assert np.any(np.asarray(eager[k]) != 0)


# ---------------------------------------------------------------------------
# Errors and get_penalty.
# ---------------------------------------------------------------------------
def test_gp_shape_mismatch_raises():
  """gradient_penalty rejects real/fake batches of different shapes."""
  d_fn = functools.partial(quadratic_d, 1.0)
  with pytest.raises(ValueError, match='differ'):
    penalties.gradient_penalty(d_fn, jnp.zeros((B, D)), jnp.zeros((B, D + 1)),
                               KEY)
  with pytest.raises(ValueError):
    penalties.gradient_penalty(d_fn, jnp.zeros((B, D)),
                               jnp.zeros((B + 1, D)), KEY)


def test_get_penalty_none():
  """'none' selects no penalty."""
  assert penalties.get_penalty('none') is None
  assert 'none' in penalties.names()


def test_get_penalty_unknown_raises():
  """Unknown names raise ValueError naming config.penalty and the choices."""
  with pytest.raises(ValueError) as exc:
    penalties.get_penalty('wgan-gp')
  msg = str(exc.value)
  assert 'config.penalty' in msg
  assert 'wgan-gp' in msg
  for name in penalties.names():
    assert repr(name) in msg


@pytest.mark.parametrize('target', [1.0, 0.4])
def test_get_penalty_matches_direct_calls(target):
  """Every named penalty equals the corresponding direct call, with the
  target forwarded to the gradient penalties."""
  params = _mlp_params(57)
  d_fn = functools.partial(mlp_d, params)
  real, fake = _normal(58, (B, D), 1.5), _normal(59, (B, D), 1.5)
  direct = {
      'gp': penalties.gradient_penalty(d_fn, real, fake, KEY, target=target),
      'gp_one_sided': penalties.gradient_penalty(d_fn, real, fake, KEY,
                                                 target=target,
                                                 one_sided=True),
      'r1': penalties.r1_penalty(d_fn, real),
      'r2': penalties.r2_penalty(d_fn, fake),
      'dragan': regularizers.dragan_penalty(d_fn, real, KEY, k=target,
                                            c=0.3),
  }
  assert set(direct) | {'none'} == set(penalties.names())
  for name, want in direct.items():
    # Each entry takes the parameters it declares (the config fields).
    got = penalties.get_penalty(name, target=target, k=target, c=0.3)(
        d_fn, real, fake, KEY)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
  # r1 and r2 differ here (real != fake), so the mapping is not swapped.
  assert float(direct['r1']) != pytest.approx(float(direct['r2']), rel=1e-3)


def test_get_penalty_target_changes_gp_linear():
  """get_penalty('gp', target=t) with linear D gives (||w|| - t)^2."""
  w = _w_with_norm(2.0)
  d_fn = functools.partial(linear_d, w, 0.0)
  real, fake = _normal(60, (B, D)), _normal(61, (B, D))
  for t in (0.0, 1.0, 1.5, 3.0):
    v = penalties.get_penalty('gp', target=t)(d_fn, real, fake, KEY)
    np.testing.assert_allclose(float(v), (2.0 - t)**2, rtol=1e-5, atol=1e-6)
    v1 = penalties.get_penalty('gp_one_sided', target=t)(d_fn, real, fake,
                                                         KEY)
    np.testing.assert_allclose(float(v1), max(2.0 - t, 0.0)**2, rtol=1e-5,
                               atol=1e-6)
