"""Tests for gan_stability.augment: DiffAugment and ADA against independent
NumPy implementations (the random numbers are drawn here from the same keys,
the transforms applied in NumPy), hand-derived images, gradients, and the
ADA p heuristic on a scripted sequence."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_stability import augment

KEY = jax.random.PRNGKey(42)
KEYS = [jax.random.PRNGKey(s) for s in (0, 1, 7)]
# Non-square shapes catch height / width mix-ups; sizes 8 / 12 / 10 / 7 give
# even and odd cutout sides and translation ranges of 1 and 2 pixels.
SHAPES = [(6, 8, 12, 3), (5, 10, 7, 1)]


def _images(seed, shape):
  return jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, shape),
                     jnp.float32)


def _np(a):
  return np.asarray(a, np.float64)


def _assert_close(actual, desired):
  np.testing.assert_allclose(_np(actual), desired, rtol=0, atol=1e-6)


# ---------------------------------------------------------------------------
# NumPy references of DiffAugment (Zhao et al. 2020).
# ---------------------------------------------------------------------------
def np_brightness(x, u):
  return x + (u - 0.5)[:, None, None, None]


def np_saturation(x, u):
  m = x.mean(axis=3, keepdims=True)
  return (x - m) * (2 * u)[:, None, None, None] + m


def np_contrast(x, u):
  m = x.mean(axis=(1, 2, 3), keepdims=True)
  return (x - m) * (u + 0.5)[:, None, None, None] + m


def np_translation(x, t_h, t_w):
  """out[b, i, j] = x[b, i + t_h, j + t_w], zeros outside (loops)."""
  b, h, w, _ = x.shape
  out = np.zeros_like(x)
  for n in range(b):
    for i in range(h):
      for j in range(w):
        si, sj = i + t_h[n], j + t_w[n]
        if 0 <= si < h and 0 <= sj < w:
          out[n, i, j] = x[n, si, sj]
  return out


def np_cutout_mask(shape, o_h, o_w, c_h, c_w):
  """The reference code's construction: clamp every cell of the square."""
  b, h, w = shape[:3]
  mask = np.ones((b, h, w))
  for n in range(b):
    for k in range(c_h):
      for l in range(c_w):
        i = min(max(o_h[n] - c_h // 2 + k, 0), h - 1)
        j = min(max(o_w[n] - c_w // 2 + l, 0), w - 1)
        mask[n, i, j] = 0
  return mask


def draw_uniform(key, b):
  return _np(jax.random.uniform(key, (b,)))


def draw_translation(key, shape, ratio=0.125):
  s_h, s_w = int(shape[1] * ratio + 0.5), int(shape[2] * ratio + 0.5)
  k_h, k_w = jax.random.split(key)
  return (np.asarray(jax.random.randint(k_h, (shape[0],), -s_h, s_h + 1)),
          np.asarray(jax.random.randint(k_w, (shape[0],), -s_w, s_w + 1)))


def draw_cutout(key, shape, ratio=0.5):
  c_h, c_w = int(shape[1] * ratio + 0.5), int(shape[2] * ratio + 0.5)
  k_h, k_w = jax.random.split(key)
  o_h = np.asarray(jax.random.randint(k_h, (shape[0],), 0,
                                      shape[1] + 1 - c_h % 2))
  o_w = np.asarray(jax.random.randint(k_w, (shape[0],), 0,
                                      shape[2] + 1 - c_w % 2))
  return o_h, o_w, c_h, c_w


def np_diffaugment(x, key, names, t_ratio=0.125, c_ratio=0.5):
  """The policy as the composition of the NumPy transforms."""
  x = _np(x)
  b = x.shape[0]
  for name, k in zip(names, jax.random.split(key, len(names))):
    if name == 'color':
      kb, ks, kc = jax.random.split(k, 3)
      x = np_brightness(x, draw_uniform(kb, b))
      x = np_saturation(x, draw_uniform(ks, b))
      x = np_contrast(x, draw_uniform(kc, b))
    elif name == 'translation':
      x = np_translation(x, *draw_translation(k, x.shape, t_ratio))
    else:
      o_h, o_w, c_h, c_w = draw_cutout(k, x.shape, c_ratio)
      x = x * np_cutout_mask(x.shape, o_h, o_w, c_h, c_w)[..., None]
  return x


# ---------------------------------------------------------------------------
# DiffAugment: each transform vs NumPy.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('shape', SHAPES)
@pytest.mark.parametrize('ki', range(len(KEYS)))
def test_diffaugment_transforms_match_numpy(shape, ki):
  """Each transform equals its NumPy reference on the same draws (1e-6)."""
  key = KEYS[ki]
  x = _images(ki, shape)
  b = shape[0]
  _assert_close(augment.rand_brightness(x, key),
                np_brightness(_np(x), draw_uniform(key, b)))
  _assert_close(augment.rand_saturation(x, key),
                np_saturation(_np(x), draw_uniform(key, b)))
  _assert_close(augment.rand_contrast(x, key),
                np_contrast(_np(x), draw_uniform(key, b)))
  _assert_close(augment.rand_translation(x, key),
                np_translation(_np(x), *draw_translation(key, shape)))
  _assert_close(augment.rand_translation(x, key, ratio=0.25),
                np_translation(_np(x), *draw_translation(key, shape, 0.25)))
  for ratio in (0.5, 0.3):
    o_h, o_w, c_h, c_w = draw_cutout(key, shape, ratio)
    mask = np_cutout_mask(shape, o_h, o_w, c_h, c_w)
    np.testing.assert_array_equal(
        np.asarray(augment.cutout_mask(shape, key, ratio=ratio)), mask)
    _assert_close(augment.rand_cutout(x, key, ratio=ratio),
                  _np(x) * mask[..., None])


def test_saturation_is_identity_on_one_channel():
  x = _images(3, (4, 5, 5, 1))
  _assert_close(augment.rand_saturation(x, KEY), _np(x))


def test_diffaugment_random_ranges():
  """Over many examples the factors cover the documented ranges:
  brightness offset in [-0.5, 0.5), saturation in [0, 2), contrast in
  [0.5, 1.5); translation shifts take every integer in [-s, s]."""
  n = 4000
  x = _images(4, (n, 4, 4, 3))
  off = _np(augment.rand_brightness(x, KEY) - x)[:, 0, 0, 0]
  assert off.min() >= -0.5 and off.max() < 0.5
  assert off.min() < -0.49 and off.max() > 0.49
  m = x.mean(axis=3, keepdims=True)
  sat = _np((augment.rand_saturation(x, KEY) - m) / (x - m))
  sat = np.median(sat.reshape(n, -1), axis=1)
  assert sat.min() >= 0 and sat.max() < 2 and sat.min() < 0.01
  assert sat.max() > 1.99
  m = x.mean(axis=(1, 2, 3), keepdims=True)
  con = _np((augment.rand_contrast(x, KEY) - m) / (x - m))
  con = np.median(con.reshape(n, -1), axis=1)
  assert con.min() >= 0.5 - 1e-5 and con.max() < 1.5 + 1e-5
  assert con.min() < 0.51 and con.max() > 1.49
  t_h, t_w = augment.translation_shifts((n, 16, 24), KEY)  # s = 2 and 3
  assert sorted(set(np.asarray(t_h).tolist())) == [-2, -1, 0, 1, 2]
  assert sorted(set(np.asarray(t_w).tolist())) == [-3, -2, -1, 0, 1, 2, 3]


# ---------------------------------------------------------------------------
# DiffAugment: the policy.
# ---------------------------------------------------------------------------
@pytest.mark.parametrize('policy', [
    'color,translation,cutout', 'cutout,color', 'translation', 'color',
    ' translation , cutout '])
def test_diffaugment_is_the_composition(policy):
  x = _images(5, SHAPES[0])
  names = [p.strip() for p in policy.split(',')]
  _assert_close(augment.diffaugment(x, KEY, policy=policy),
                np_diffaugment(x, KEY, names))


def test_diffaugment_default_policy_ratios_and_sequence():
  x = _images(6, SHAPES[1])
  names = ['color', 'translation', 'cutout']
  _assert_close(augment.diffaugment(x, KEY), np_diffaugment(x, KEY, names))
  _assert_close(augment.diffaugment(x, KEY, policy=tuple(names),
                            translation_ratio=0.25, cutout_ratio=0.3),
                np_diffaugment(x, KEY, names, 0.25, 0.3))
  np.testing.assert_array_equal(
      np.asarray(augment.diffaugment(x, KEY, policy='')), np.asarray(x))


def test_translation_by_hand():
  """A 4x4 image, ratio 1/4 (shifts in [-1, 1]): out[i, j] = x[i+t_h, j+t_w]
  with zeros where that pixel does not exist."""
  x = jnp.arange(1, 17, dtype=jnp.float32).reshape(1, 4, 4, 1) / 16
  expected = {
      (1, -1): [[0, 5, 6, 7],
                [0, 9, 10, 11],
                [0, 13, 14, 15],
                [0, 0, 0, 0]],
      (-1, 1): [[0, 0, 0, 0],
                [2, 3, 4, 0],
                [6, 7, 8, 0],
                [10, 11, 12, 0]],
      (0, 0): [[1, 2, 3, 4],
               [5, 6, 7, 8],
               [9, 10, 11, 12],
               [13, 14, 15, 16]],
  }
  found = set()
  for seed in range(200):
    key = jax.random.PRNGKey(seed)
    t_h, t_w = augment.translation_shifts(x.shape, key, ratio=0.25)
    shift = (int(t_h[0]), int(t_w[0]))
    if shift in expected and shift not in found:
      found.add(shift)
      out = augment.rand_translation(x, key, ratio=0.25)
      np.testing.assert_array_equal(
          np.asarray(out)[0, :, :, 0] * 16, np.asarray(expected[shift]))
  assert found == set(expected)


@pytest.mark.parametrize('hw,side', [((8, 8), 4), ((10, 7), (5, 4)),
                                     ((9, 9), 5)])
def test_cutout_zeros_exactly_a_square(hw, side):
  """The zeros form one rectangle of side int(size/2 + 0.5) per axis,
  clipped at the border (partly outside for some examples), the rest of the
  image unchanged; every example has a cut."""
  c_h, c_w = side if isinstance(side, tuple) else (side, side)
  h, w = hw
  b = 300
  x = _images(7, (b, h, w, 2)) * 0.5 + 0.75  # in [0.25, 1.25]: no zeros
  out = np.asarray(augment.rand_cutout(x, KEY))
  clipped = 0
  for n in range(b):
    cut = out[n, :, :, 0] == 0
    np.testing.assert_array_equal(out[n][~cut], np.asarray(x[n])[~cut])
    np.testing.assert_array_equal(out[n, :, :, 1] == 0, cut)
    rows, cols = np.flatnonzero(cut.any(1)), np.flatnonzero(cut.any(0))
    assert rows.size and cols.size
    # A full rectangle of contiguous rows and columns ...
    assert cut.sum() == rows.size * cols.size
    assert rows[-1] - rows[0] + 1 == rows.size
    assert cols[-1] - cols[0] + 1 == cols.size
    # ... of the full side unless it touches the border.
    for idx, c, size in ((rows, c_h, h), (cols, c_w, w)):
      assert idx.size <= c
      if idx.size < c:
        assert idx[0] == 0 or idx[-1] == size - 1
        clipped += 1
  assert clipped > 0


# ---------------------------------------------------------------------------
# DiffAugment: gradients, jit, vmap.
# ---------------------------------------------------------------------------
def test_diffaugment_check_grads():
  x = _images(8, (3, 8, 8, 3))
  wt = _images(9, (3, 8, 8, 3))
  f = jax.jit(lambda v: jnp.sum(jnp.sin(2.0 * augment.diffaugment(v, KEY)) * wt))
  check_grads(f, (x,), order=1, modes=['rev'], atol=1e-2, rtol=1e-2,
              eps=1e-3)


def test_cutout_gradient_is_the_mask():
  x = _images(10, SHAPES[0])
  g = jax.grad(lambda v: jnp.sum(augment.rand_cutout(v, KEY)))(x)
  mask = np.asarray(augment.cutout_mask(x.shape, KEY))
  np.testing.assert_array_equal(
      np.asarray(g), np.broadcast_to(mask[..., None], x.shape))
  assert 0 < mask.mean() < 1


def test_translation_gradient_counts_uses():
  """d sum(out)/dx is 1 on pixels that land in the output, 0 on those
  shifted out."""
  x = _images(11, SHAPES[0])
  g = jax.grad(lambda v: jnp.sum(augment.rand_translation(v, KEY)))(x)
  t_h, t_w = draw_translation(KEY, x.shape)
  ones = np.ones(x.shape)
  expected = np_translation(ones, -t_h, -t_w)  # the pixels that are used
  np.testing.assert_array_equal(np.asarray(g), expected)


def test_diffaugment_jit_equals_eager_and_vmaps():
  """jit(vmap(diffaugment)) over two batches and two keys equals the eager
  calls one by one."""
  x = _images(12, SHAPES[0])
  f = functools.partial(augment.diffaugment, policy='color,translation,cutout')
  xs = jnp.stack([x, -x])
  keys = jax.random.split(KEY, 2)
  out = jax.jit(jax.vmap(f))(xs, keys)
  for i in range(2):
    _assert_close(out[i], _np(f(xs[i], keys[i])))


def test_parse_policy():
  """The config validates augment_policy with parse_policy."""
  assert augment.parse_policy(' color, cutout ,') == ['color', 'cutout']
  assert augment.parse_policy(('translation',)) == ['translation']
  assert augment.parse_policy('') == []
  with pytest.raises(ValueError, match='color, translation, cutout'):
    augment.parse_policy('color,flip')


def test_diffaugment_bad_policy_raises():
  x = _images(13, SHAPES[0])
  with pytest.raises(ValueError, match='color, translation, cutout'):
    augment.diffaugment(x, KEY, policy='color,colour')
  with pytest.raises(ValueError, match="'rotate'"):
    augment.diffaugment(x, KEY, policy=['rotate'])
  with pytest.raises(ValueError, match='NHWC'):
    augment.diffaugment(x[0], KEY)


# ---------------------------------------------------------------------------
# ADA (Karras et al. 2020): NumPy references on the same draws.
# ---------------------------------------------------------------------------
def ada_draws(key):
  """Every ADA transform splits its key as (gate, param)."""
  return jax.random.split(key)


def np_ada(name, x, key, ratio=0.125, std=None):
  """The NumPy reference of one ADA transform at p = 1."""
  x = _np(x)
  b, h, w, c = x.shape
  k_gate, k_param = ada_draws(key)
  assert np.asarray(jax.random.uniform(k_gate, (b,)) < 1.0).all()
  if name == 'xflip':
    i = np.asarray(jax.random.randint(k_param, (b,), 0, 2))
    return np.where((i == 1)[:, None, None, None], x[:, :, ::-1], x)
  if name == 'rotate90':
    k = np.asarray(jax.random.randint(k_param, (b,), 0, 4))
    return np.stack([np.rot90(x[n], k[n], axes=(0, 1)) for n in range(b)])
  if name == 'translate':
    t = np.asarray(jax.random.uniform(k_param, (b, 2), minval=-1.0,
                                      maxval=1.0) * ratio)
    t_w = np.round(t[:, 0] * np.float32(w)).astype(int)
    t_h = np.round(t[:, 1] * np.float32(h)).astype(int)
    s = max(h, w) - 1
    pad = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), mode='reflect')
    return np.stack([pad[n, s - t_h[n]:s - t_h[n] + h,
                         s - t_w[n]:s - t_w[n] + w] for n in range(b)])
  normal = _np(jax.random.normal(k_param, (b,)))[:, None, None, None]
  if name == 'brightness':
    return x + (0.2 if std is None else std) * normal
  if name == 'contrast':
    return x * 2.0 ** ((0.5 if std is None else std) * normal)
  if name == 'saturation':
    if c == 1:
      return x
    m = x.mean(axis=3, keepdims=True)
    return m + 2.0 ** ((1.0 if std is None else std) * normal) * (x - m)
  raise AssertionError(name)


ADA_NAMES = list(augment.ADA_TRANSFORMS)
SQUARE = [(6, 8, 8, 3), (5, 6, 6, 1)]


@pytest.mark.parametrize('name', ADA_NAMES)
@pytest.mark.parametrize('shape', SQUARE)
def test_ada_transforms_match_numpy_at_p1(name, shape):
  fn = augment.ADA_TRANSFORMS[name]
  for ki, key in enumerate(KEYS):
    x = _images(20 + ki, shape)
    _assert_close(fn(x, key, 1.0), np_ada(name, x, key))


def test_ada_translate_non_square_and_large_ratio_match_numpy():
  """Reflection for shifts of several pixels, on a non-square image."""
  x = _images(30, (8, 8, 12, 3))
  for key in KEYS:
    _assert_close(augment.ada_translate(x, key, 1.0, ratio=0.25),
                  np_ada('translate', x, key, ratio=0.25))


def test_ada_colour_keyword_stds():
  x = _images(31, SQUARE[0])
  for name in ('brightness', 'contrast', 'saturation'):
    _assert_close(augment.ADA_TRANSFORMS[name](x, KEY, 1.0, std=0.7),
                  np_ada(name, x, KEY, std=0.7))


def test_ada_rotate90_direction_by_hand():
  """k = 1 turns [[1, 2], [3, 4]] counter-clockwise into [[2, 4], [1, 3]]."""
  x = jnp.asarray([[1., 2.], [3., 4.]]).reshape(1, 2, 2, 1)
  want = {0: [[1, 2], [3, 4]], 1: [[2, 4], [1, 3]], 2: [[4, 3], [2, 1]],
          3: [[3, 1], [4, 2]]}
  seen = set()
  for seed in range(60):
    key = jax.random.PRNGKey(seed)
    k = int(jax.random.randint(ada_draws(key)[1], (1,), 0, 4)[0])
    out = np.asarray(augment.ada_rotate90(x, key, 1.0))[0, :, :, 0]
    np.testing.assert_array_equal(out, np.asarray(want[k], np.float32))
    seen.add(k)
  assert seen == {0, 1, 2, 3}


@pytest.mark.parametrize('name', ['xflip', 'rotate90'])
def test_ada_xflip_rotate90_are_exact_permutations(name):
  x = _images(32, (64, 6, 6, 3))
  out = np.asarray(augment.ADA_TRANSFORMS[name](x, KEY, 1.0))
  xs = np.asarray(x)
  for n in range(x.shape[0]):
    np.testing.assert_array_equal(np.sort(out[n], axis=None),
                                  np.sort(xs[n], axis=None))
  assert (out != xs).any()


def test_ada_p0_is_exact_identity():
  x = _images(33, SQUARE[0])
  for key in KEYS:
    np.testing.assert_array_equal(np.asarray(augment.ada_augment(x, key, 0.)),
                                  np.asarray(x))
    for fn in augment.ADA_TRANSFORMS.values():
      np.testing.assert_array_equal(np.asarray(fn(x, key, 0.0)),
                                    np.asarray(x))


# Fraction of examples that change when the transform is applied: the paper
# draws k in {0, 1, 2, 3} for rotate90 (k = 0: unchanged) and i in {0, 1}
# for xflip; an 8x8 translation by round(U[-1, 1)) per axis is a no-op with
# probability 1/4.
CHANGED_GIVEN_APPLIED = {'xflip': 0.5, 'rotate90': 0.75, 'translate': 0.75,
                         'brightness': 1.0, 'contrast': 1.0,
                         'saturation': 1.0}


@pytest.mark.parametrize('name', ADA_NAMES)
def test_ada_fraction_transformed_at_p03(name):
  """Over 10,000 examples at p = 0.3: 0.3 +- 0.02 are selected, only the
  selected ones change, and the changed fraction is p times the chance the
  drawn parameter is not the identity."""
  n, p = 10_000, 0.3
  x = _images(34, (n, 8, 8, 3))
  key = jax.random.PRNGKey(123)
  out = np.asarray(jax.jit(augment.ADA_TRANSFORMS[name])(x, key, p))
  gate = np.asarray(augment.ada_gate(ada_draws(key)[0], p, n))
  changed = (out != np.asarray(x)).reshape(n, -1).any(axis=1)
  assert abs(gate.mean() - p) < 0.02
  assert not (changed & ~gate).any()
  assert abs(changed.mean() - p * CHANGED_GIVEN_APPLIED[name]) < 0.02


def test_ada_parameter_distributions():
  """At p = 1 over 10,000 examples: brightness offsets have std 0.2,
  log2 contrast factors std 0.5, log2 saturation factors std 1, the four
  rotations are equally likely, the 8x8 shifts are in [-1, 1]."""
  n = 10_000
  x = _images(35, (n, 8, 8, 3))
  b = _np(augment.ada_brightness(x, KEY, 1.0) - x)[:, 0, 0, 0]
  assert abs(b.mean()) < 0.01 and abs(b.std() - 0.2) < 0.01
  c = np.log2(_np(augment.ada_contrast(x, KEY, 1.0) / x)[:, 0, 0, 0])
  assert abs(c.mean()) < 0.02 and abs(c.std() - 0.5) < 0.02
  m = x.mean(axis=3, keepdims=True)
  s = np.log2(_np((augment.ada_saturation(x, KEY, 1.0) - m) / (x - m)))
  s = np.median(s.reshape(n, -1), axis=1)
  assert abs(s.mean()) < 0.04 and abs(s.std() - 1.0) < 0.04
  k = np.asarray(jax.random.randint(ada_draws(KEY)[1], (n,), 0, 4))
  np.testing.assert_allclose(np.bincount(k, minlength=4) / n, 0.25,
                             atol=0.02)
  t_h, t_w = augment.ada_translate_shifts((n, 8, 8), KEY)
  for t in (np.asarray(t_h), np.asarray(t_w)):
    assert set(t.tolist()) == {-1, 0, 1}
    assert abs((t == 0).mean() - 0.5) < 0.02


def test_ada_augment_is_the_composition():
  x = _images(36, SQUARE[0])
  p = jnp.float32(0.6)
  key = jax.random.PRNGKey(5)
  names = ('xflip', 'rotate90', 'translate', 'brightness', 'contrast',
           'saturation')
  want = x
  for name, k in zip(names, jax.random.split(key, len(names))):
    want = augment.ADA_TRANSFORMS[name](want, k, p)
  _assert_close(augment.ada_augment(x, key, p), _np(want))
  sub = ('brightness', 'xflip')
  want = x
  for name, k in zip(sub, jax.random.split(key, 2)):
    want = augment.ADA_TRANSFORMS[name](want, k, p)
  _assert_close(augment.ada_augment(x, key, p, transforms=sub), _np(want))


def test_ada_augment_keyword_hyperparameters():
  x = _images(37, SQUARE[0])
  names = ('translate', 'brightness', 'contrast', 'saturation')
  keys = jax.random.split(KEY, 4)
  want = _np(x)
  for name, k, kw in zip(names, keys, [{'ratio': 0.25}, {'std': 0.1},
                                       {'std': 0.3}, {'std': 0.4}]):
    want = np_ada(name, want.astype(np.float32), k, **kw)
  got = augment.ada_augment(x, KEY, 1.0, transforms=names,
                            translate_ratio=0.25, brightness_std=0.1,
                            contrast_std=0.3, saturation_std=0.4)
  _assert_close(got, want)


def test_ada_jit_traced_p_equals_eager_and_grads():
  x = _images(38, SQUARE[0])
  f = jax.jit(augment.ada_augment)
  for p in (0.0, 0.4, 1.0):
    _assert_close(f(x, KEY, jnp.float32(p)),
                  _np(augment.ada_augment(x, KEY, p)))
  wt = _images(39, SQUARE[0])
  g = jax.jit(
      lambda v: jnp.sum(jnp.sin(2.0 * augment.ada_augment(v, KEY, 0.7)) * wt))
  check_grads(g, (x,), order=1, modes=['rev'], atol=1e-2, rtol=1e-2,
              eps=1e-3)


def test_ada_bad_names_raise():
  x = _images(40, SQUARE[0])
  with pytest.raises(ValueError, match='xflip, rotate90, translate'):
    augment.ada_augment(x, KEY, 0.5, transforms=('xflip', 'hue'))
  with pytest.raises(ValueError, match='square'):
    augment.ada_rotate90(_images(41, (2, 4, 6, 3)), KEY, 0.5)


# ---------------------------------------------------------------------------
# ADA: the p heuristic.
# ---------------------------------------------------------------------------
def test_ada_rt_is_mean_sign():
  """sign(2, -1, 0, 3) = (1, -1, 0, 1): mean 1/4; [B, 1] logits too."""
  logits = jnp.asarray([2.0, -1.0, 0.0, 3.0])
  assert float(augment.ada_rt(logits)) == 0.25
  assert float(augment.ada_rt(logits[:, None])) == 0.25
  assert float(augment.ada_rt(-jnp.ones(7))) == -1.0


def test_ada_update_scripted_sequence():
  """batch 25, interval 4, kimg 0.4: a step of 100 / 400 = 1/4 (exact in
  binary); up when r_t > 0.6, down when below, unchanged when equal,
  clipped to [0, 1]."""
  r_ts = [0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.9, 0.6, 0.59, 0.0, 0.0, 0.0,
          0.0, 0.0, 0.61]
  want = [0.25, 0.5, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0,
          0.0, 0.0, 0.25]
  update = functools.partial(augment.ada_update, batch_size=25, interval=4,
                             kimg=0.4)
  jitted = jax.jit(update)
  p = 0.0
  for r_t, w in zip(r_ts, want):
    p_jit = jitted(jnp.float32(p), jnp.float32(r_t))
    p = update(p, r_t)
    assert float(p) == w
    assert float(p_jit) == w


def test_ada_update_defaults_and_speed():
  """Defaults (target 0.6, interval 4, kimg 500): a step of
  64 * 4 / 500,000 = 0.000512; with batch 64, interval 4 and kimg 1.024,
  p goes from 0 to 1 in 4 updates = 1024 images."""
  np.testing.assert_allclose(
      float(augment.ada_update(0.5, 0.7, batch_size=64)), 0.500512,
      rtol=0, atol=1e-7)
  np.testing.assert_allclose(
      float(augment.ada_update(0.5, 0.5, batch_size=64)), 0.499488,
      rtol=0, atol=1e-7)
  assert float(augment.ada_update(0.5, 0.7, batch_size=64, target=0.8)) < 0.5
  p = 0.0
  for _ in range(4):
    assert float(p) < 1.0
    p = augment.ada_update(p, 1.0, batch_size=64, kimg=1.024)
  assert float(p) == 1.0
