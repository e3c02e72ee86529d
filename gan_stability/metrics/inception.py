"""The FID Inception-v3 network (TF graph ``inception-2015-12-05``) in JAX.

This is the network that the Fréchet Inception Distance (Heusel et al. 2017,
"GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium") and KID (Bińkowski et al. 2018) are defined on: Inception-v3
(Szegedy et al. 2016, "Rethinking the Inception Architecture for Computer
Vision") as frozen in Google's 2015-12-05 TensorFlow graph, used by the TTUR
FID code and its PyTorch re-implementations. Its 2048 features are the 8x8
average pool after ``mixed_10``.

Architecture (every convolution is ``conv -> batch norm -> relu`` without conv
bias; the batch norm has no scale and ``eps = 1e-3``, i.e.
``relu((conv(x, W) - mean) / sqrt(var + 1e-3) + beta)``)::

  299x299x3 -> conv 3x3/2 -> conv_1 3x3 -> conv_2 3x3 pad 1 -> max 3x3/2
  -> conv_3 1x1 -> conv_4 3x3 -> max 3x3/2                        35x35x192
  -> mixed, mixed_1, mixed_2 (A)                                  35x35x288
  -> mixed_3 (B, grid reduction)                                  17x17x768
  -> mixed_4 .. mixed_7 (C, factorised 1x7 / 7x1)                 17x17x768
  -> mixed_8 (D, grid reduction)                                  8x8x1280
  -> mixed_9, mixed_10 (E)                                        8x8x2048
  -> average over the 8x8 grid                                    2048

The branch average pools are 3x3 stride 1 pad 1 with
``count_include_pad=False`` (the TF 'SAME' average); the pool branch of
``mixed_10`` is a *max* pool, the FID graph's peculiarity.

Input: NHWC float32 in ``[-1, 0.9921875]``, i.e. ``x / 128 - 1`` for 8-bit
pixel values ``x`` (the TF graph's own pre-processing). :func:`features`
does that mapping (and resizing to 299x299) for ``[0, 255]`` images.

Weights: ``fid_inception_v3_2015.npz`` (376 float32 arrays,
``net.layers.<layer>.{weight (OIHW), beta, mean, var}``; see the README of the
weights folder). They stop at the pool features: the graph's final
1008-way ``softmax`` layer is **not** included, so this module has no
``logits`` and cannot compute the Inception Score by itself;
:func:`gan_stability.metrics.fid_kid.inception_score` takes logits from the
caller.

Implementation notes (exact reformulations, same function up to float
rounding): the batch norm is folded into the kernel and a bias, once per
parameter set (:func:`apply` keeps the folded weights); the 1x1
convolutions of a block that read the same input are computed as one wider
1x1 convolution; in blocks whose pool branch is an average pool, the
branch's 1x1 convolution is applied *before* the pool (both are linear and a
normalised average of a per-pixel affine map commutes with it), so the pool
runs on 32-192 channels instead of 192-1280 and the convolution joins the
block's merged 1x1 convolution; pools are maxima / sums of strided slices
(XLA's CPU ``reduce_window`` is several times slower); and on the CPU
(``impl='winograd'``) the 3x3 and 5x5 convolutions of the 35x35 blocks
(Winograd along the width), the 1x7 / 7x1 ones of the 17x17 blocks and the
3x3, 1x3 and 3x1 ones of the 8x8 blocks run as Winograd convolutions
(:mod:`gan_stability.kernels.winograd_nd`). ``tests/test_inception.py``
checks the port against the reference network's golden features (the
largest error relative to the largest feature, asserted at most 2e-5, for
both networks) and the Winograd network against the direct one (1e-4).
"""

from __future__ import annotations

import functools
import hashlib
import os
import zipfile
from typing import Any, Iterable

import jax
import jax.numpy as jnp
import numpy as np

from gan_stability.errors import ConfigError
from gan_stability.kernels import compile_options, winograd_nd

INPUT_SIZE = 299
FEATURE_DIM = 2048
BN_EPS = 1e-3
_DN = ('NHWC', 'HWIO', 'NHWC')
_PREFIX = 'net.layers.'
_BN_ARRAYS = ('beta', 'mean', 'var')

Params = dict[str, dict[str, jax.Array]]


# ----------------------------------------------------------- layer table ---
# name -> (out_channels, in_channels, kh, kw, stride, (pad_h, pad_w)).


_Spec = tuple[int, int, int, int, int, tuple[int, int]]


def _layer_table() -> dict[str, _Spec]:
  t = {}

  def conv(name, cout, cin, kh=1, kw=1, stride=1, pad=None):
    if pad is None:  # 'same' for stride 1
      pad = ((kh - 1) // 2, (kw - 1) // 2) if stride == 1 else (0, 0)
    t[name] = (cout, cin, kh, kw, stride, pad)

  conv('conv', 32, 3, 3, 3, stride=2)
  conv('conv_1', 32, 32, 3, 3, pad=(0, 0))
  conv('conv_2', 64, 32, 3, 3)
  conv('conv_3', 80, 64)
  conv('conv_4', 192, 80, 3, 3, pad=(0, 0))
  for name, cin, pool_features in (('mixed', 192, 32), ('mixed_1', 256, 64),
                                   ('mixed_2', 288, 64)):
    conv(f'{name}.conv', 64, cin)
    conv(f'{name}.tower.conv', 48, cin)
    conv(f'{name}.tower.conv_1', 64, 48, 5, 5)
    conv(f'{name}.tower_1.conv', 64, cin)
    conv(f'{name}.tower_1.conv_1', 96, 64, 3, 3)
    conv(f'{name}.tower_1.conv_2', 96, 96, 3, 3)
    conv(f'{name}.tower_2.conv', pool_features, cin)
  conv('mixed_3.conv', 384, 288, 3, 3, stride=2)
  conv('mixed_3.tower.conv', 64, 288)
  conv('mixed_3.tower.conv_1', 96, 64, 3, 3)
  conv('mixed_3.tower.conv_2', 96, 96, 3, 3, stride=2)
  for name, c7 in (('mixed_4', 128), ('mixed_5', 160), ('mixed_6', 160),
                   ('mixed_7', 192)):
    conv(f'{name}.conv', 192, 768)
    conv(f'{name}.tower.conv', c7, 768)
    conv(f'{name}.tower.conv_1', c7, c7, 1, 7)
    conv(f'{name}.tower.conv_2', 192, c7, 7, 1)
    conv(f'{name}.tower_1.conv', c7, 768)
    conv(f'{name}.tower_1.conv_1', c7, c7, 7, 1)
    conv(f'{name}.tower_1.conv_2', c7, c7, 1, 7)
    conv(f'{name}.tower_1.conv_3', c7, c7, 7, 1)
    conv(f'{name}.tower_1.conv_4', 192, c7, 1, 7)
    conv(f'{name}.tower_2.conv', 192, 768)
  conv('mixed_8.tower.conv', 192, 768)
  conv('mixed_8.tower.conv_1', 320, 192, 3, 3, stride=2)
  conv('mixed_8.tower_1.conv', 192, 768)
  conv('mixed_8.tower_1.conv_1', 192, 192, 1, 7)
  conv('mixed_8.tower_1.conv_2', 192, 192, 7, 1)
  conv('mixed_8.tower_1.conv_3', 192, 192, 3, 3, stride=2)
  for name, cin in (('mixed_9', 1280), ('mixed_10', 2048)):
    conv(f'{name}.conv', 320, cin)
    conv(f'{name}.tower_conv', 384, cin)
    conv(f'{name}.tower_mixed_conv', 384, 384, 1, 3)
    conv(f'{name}.tower_mixed_conv_1', 384, 384, 3, 1)
    conv(f'{name}.tower_1_conv', 448, cin)
    conv(f'{name}.tower_1_conv_1', 384, 448, 3, 3)
    conv(f'{name}.tower_1_mixed_conv', 384, 384, 1, 3)
    conv(f'{name}.tower_1_mixed_conv_1', 384, 384, 3, 1)
    conv(f'{name}.tower_2_conv', 192, cin)
  return t


LAYERS = _layer_table()


# -------------------------------------------------------------- loading ---


def load_params(path: str | os.PathLike) -> Params:
  """Reads ``fid_inception_v3_2015.npz`` into a pytree of jnp arrays.

  Returns ``{layer: {'kernel': HWIO, 'beta': [O], 'mean': [O], 'var': [O]}}``
  (float32) with layer names as in the file without the ``net.layers.``
  prefix, e.g. ``'mixed_4.tower_1.conv_3'``. Arrays in the file that the
  network does not use are ignored.

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: ``path`` is not an ``.npz`` archive, or an array is missing,
      has the wrong shape or is not finite (the message names the path and
      the array).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'FID Inception weights not found: {path!r} (expected the file '
        'fid_inception_v3_2015.npz; see the weights folder README)')
  try:
    archive = np.load(path, allow_pickle=False)
  except (OSError, ValueError, zipfile.BadZipFile) as e:
    raise ValueError(f'{path}: not a readable .npz archive of the FID '
                     f'Inception weights ({e})') from e
  if not isinstance(archive, np.lib.npyio.NpzFile):
    raise ValueError(f'{path}: expected an .npz archive of named arrays, got a '
                     f'single {type(archive).__name__}')
  params = {}
  with archive:
    names = set(archive.files)
    missing = [f'{_PREFIX}{layer}.{a}' for layer in LAYERS
               for a in ('weight',) + _BN_ARRAYS
               if f'{_PREFIX}{layer}.{a}' not in names]
    if missing:
      more = f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''
      raise ValueError(f'{path}: array {missing[0]!r} is missing{more}; '
                       'not the FID Inception-v3 weight file')
    for layer, (cout, cin, kh, kw, _, _) in LAYERS.items():
      expected = {'weight': (cout, cin, kh, kw)}
      expected.update({a: (cout,) for a in _BN_ARRAYS})
      entry = {}
      for a, shape in expected.items():
        key = f'{_PREFIX}{layer}.{a}'
        value = archive[key]
        if value.shape != shape:
          raise ValueError(f'{path}: array {key!r} has shape {value.shape}, '
                           f'expected {shape}')
        value = np.asarray(value, np.float32)
        if not np.all(np.isfinite(value)):
          raise ValueError(f'{path}: array {key!r} has non-finite values')
        if a == 'weight':
          entry['kernel'] = jnp.asarray(value.transpose(2, 3, 1, 0))  # HWIO
        else:
          entry[a] = jnp.asarray(value)
      params[layer] = entry
  return params


def params_digest(params: Params) -> str:
  """sha256 of the weights' values (layers and arrays in sorted order): the
  identity of the network that statistics files record, whatever file the
  weights were read from."""
  h = hashlib.sha256()
  for layer in sorted(params):
    for name in sorted(params[layer]):
      h.update(f'{layer}.{name}'.encode())
      h.update(np.ascontiguousarray(np.asarray(params[layer][name],
                                               np.float32)).tobytes())
  return h.hexdigest()


# -------------------------------------------------------------- network ---


def _folded(params: Params, name: str):
  """Kernel and bias with the batch norm folded in."""
  p = params[name]
  scale = jax.lax.rsqrt(p['var'] + BN_EPS)
  return p['kernel'] * scale, p['beta'] - p['mean'] * scale


def _conv(x, kernel, stride=1, pad=(0, 0)):
  return jax.lax.conv_general_dilated(
      x, kernel, (stride, stride), ((pad[0], pad[0]), (pad[1], pad[1])),
      dimension_numbers=_DN)


_BLOCK_INPUT = {'conv': 299, 'conv_1': 149, 'conv_2': 147, 'conv_3': 73,
                'conv_4': 73, 'mixed': 35, 'mixed_1': 35, 'mixed_2': 35,
                'mixed_3': 35, 'mixed_4': 17, 'mixed_5': 17, 'mixed_6': 17,
                'mixed_7': 17, 'mixed_8': 17, 'mixed_9': 8, 'mixed_10': 8}

# The 'winograd' network's Winograd layers (gan_stability.kernels
# .winograd_nd), by (kh, kw, height of the block's input):
# WINOGRAD_TILES: tiles (m_h, m_w), F(m_h, kh) x F(m_w, kw) on both axes;
# WINOGRAD_ROWS: m, F(m, kw) along the width and XLA's convolution along the
# height (1-D transforms: less memory traffic, which pays at 35x35).
# Other layers, and every layer of the 'direct' network, run as XLA's
# convolution: on the stem's larger activations the transforms' memory
# traffic costs more than the multiplications saved. Chosen by
# `python -m experiments.bench.fid_features --time_layers`
# (docs/bench/fid_layers.txt).
WINOGRAD_TILES: dict[tuple[int, int, int], tuple[int, int]] = {
    (1, 7, 17): (1, 4), (7, 1, 17): (4, 1),  # mixed_4..mixed_8 (17x17)
    (3, 3, 8): (4, 4),  # mixed_9, mixed_10 tower_1_conv_1 (8x8)
    (1, 3, 8): (1, 4), (3, 1, 8): (4, 1),  # mixed_9, mixed_10 (8x8)
}
WINOGRAD_ROWS: dict[tuple[int, int, int], int] = {
    (3, 3, 35): 4, (5, 5, 35): 4,  # mixed..mixed_3 (35x35)
}
IMPLS = ('winograd', 'direct')


def _tile(name: str, impl: str):
  """How layer ``name`` runs in network ``impl``: ``('tiles', (m_h, m_w))``,
  ``('rows', m)`` or None (XLA's convolution)."""
  _, _, kh, kw, stride, _ = LAYERS[name]
  if impl != 'winograd' or stride != 1:
    return None
  key = (kh, kw, _BLOCK_INPUT[name.split('.')[0]])
  if key in WINOGRAD_TILES:
    return 'tiles', WINOGRAD_TILES[key]
  if key in WINOGRAD_ROWS:
    return 'rows', WINOGRAD_ROWS[key]
  return None


def _merged_names(block: str) -> tuple[str, ...]:
  """The 1x1 layers of ``block`` that read the block's input, computed as
  one wider convolution (their outputs split in this order)."""
  if block in ('mixed', 'mixed_1', 'mixed_2', 'mixed_4', 'mixed_5', 'mixed_6',
               'mixed_7'):
    names = ('conv', 'tower.conv', 'tower_1.conv', 'tower_2.conv')
  elif block == 'mixed_8':
    names = ('tower.conv', 'tower_1.conv')
  elif block == 'mixed_9':
    names = ('conv', 'tower_conv', 'tower_1_conv', 'tower_2_conv')
  elif block == 'mixed_10':  # its pool branch is a max pool, then the conv
    names = ('conv', 'tower_conv', 'tower_1_conv')
  else:
    names = ()
  return tuple(f'{block}.{n}' for n in names)


Net = dict[str, tuple[jax.Array, jax.Array]]


def _fold(params: Params, impl: str) -> Net:
  """The network's weights as the forward pass uses them: batch norm folded
  into each kernel and a bias; each block's merged 1x1 kernels concatenated
  (key: the block's name); Winograd layers' kernels transformed."""
  merged = {n: b for b in _BLOCK_INPUT for n in _merged_names(b)}
  net = {}
  for block in _BLOCK_INPUT:
    names = _merged_names(block)
    if names:
      folded = [_folded(params, n) for n in names]
      net[block] = (jnp.concatenate([k for k, _ in folded], axis=-1),
                    jnp.concatenate([b for _, b in folded], axis=-1))
  for name in LAYERS:
    if name in merged:
      continue
    kernel, bias = _folded(params, name)
    form = _tile(name, impl)
    if form is not None:
      kind, tile = form
      kernel = (winograd_nd.kernel_transform(kernel, tile) if kind == 'tiles'
                else winograd_nd.row_kernel_transform(kernel, tile))
    net[name] = (kernel, bias)
  return net


def _layer(net: Net, impl: str, name: str, x: jax.Array) -> jax.Array:
  """``relu(bn(conv(x)))`` for one layer of the table: XLA's convolution,
  or a Winograd convolution for the layers of :data:`WINOGRAD_TILES` and
  :data:`WINOGRAD_ROWS` in the ``'winograd'`` network."""
  _, _, kh, kw, stride, pad = LAYERS[name]
  kernel, bias = net[name]
  form = _tile(name, impl)
  if form is not None and form[0] == 'tiles':
    y = winograd_nd.conv_transformed(x, kernel, (kh, kw), pad, form[1])
  elif form is not None:
    y = winograd_nd.row_conv_transformed(x, kernel, (kh, kw), pad, form[1])
  else:
    y = _conv(x, kernel, stride, pad)
  return jax.nn.relu(y + bias)


def _merged_1x1(net: Net, block: str, x: jax.Array,
                relu: Iterable[bool]) -> list[jax.Array]:
  """The 1x1 layers of :func:`_merged_names` as one convolution; outputs
  split, each through a relu or not."""
  kernel, bias = net[block]
  y = _conv(x, kernel) + bias
  sizes = [LAYERS[n][0] for n in _merged_names(block)]
  outs = jnp.split(y, np.cumsum(sizes)[:-1], axis=-1)
  return [jax.nn.relu(o) if r else o for o, r in zip(outs, relu)]


def _window_slices(x, size: int, stride: int):
  """The ``size x size`` taps of a window of ``stride``: strided slices of
  ``x`` (no padding), one per tap."""
  oh = (x.shape[1] - size) // stride + 1
  ow = (x.shape[2] - size) // stride + 1
  return [x[:, i:i + stride * (oh - 1) + 1:stride,
            j:j + stride * (ow - 1) + 1:stride]
          for i in range(size) for j in range(size)]


def _max_pool(x, size=3, stride=2, pad=0):
  """Max pool as the maximum of strided slices (the same values as
  ``lax.reduce_window``, which XLA's CPU backend runs several times
  slower)."""
  if pad:
    x = jnp.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)),
                constant_values=-jnp.inf)
  return functools.reduce(jnp.maximum, _window_slices(x, size, stride))


def _avg_pool_3x3_same(x):
  """3x3 stride 1 pad 1 average, padding excluded from the count."""
  h, w = x.shape[1], x.shape[2]
  xp = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  total = functools.reduce(jnp.add, _window_slices(xp, 3, 1))
  def valid(n):  # in-range taps of each output position along one axis
    i = np.arange(n)
    return np.minimum(i + 1, n - 1) - np.maximum(i - 1, 0) + 1

  count = (valid(h)[:, None] * valid(w)[None, :]).astype(np.float32)
  return total / jnp.asarray(count)[None, :, :, None]


def _block_a(net, impl, name, x):
  b0, t, t1, pool_pre = _merged_1x1(net, name, x,
                                    relu=(True, True, True, False))
  t = _layer(net, impl, f'{name}.tower.conv_1', t)
  t1 = _layer(net, impl, f'{name}.tower_1.conv_2',
              _layer(net, impl, f'{name}.tower_1.conv_1', t1))
  pool = jax.nn.relu(_avg_pool_3x3_same(pool_pre))
  return jnp.concatenate([b0, t, t1, pool], axis=-1)


def _block_b(net, impl, name, x):
  b0 = _layer(net, impl, f'{name}.conv', x)
  t = _layer(net, impl, f'{name}.tower.conv', x)
  t = _layer(net, impl, f'{name}.tower.conv_2',
             _layer(net, impl, f'{name}.tower.conv_1', t))
  return jnp.concatenate([b0, t, _max_pool(x)], axis=-1)


def _block_c(net, impl, name, x):
  b0, t, t1, pool_pre = _merged_1x1(net, name, x,
                                    relu=(True, True, True, False))
  for i in (1, 2):
    t = _layer(net, impl, f'{name}.tower.conv_{i}', t)
  for i in (1, 2, 3, 4):
    t1 = _layer(net, impl, f'{name}.tower_1.conv_{i}', t1)
  pool = jax.nn.relu(_avg_pool_3x3_same(pool_pre))
  return jnp.concatenate([b0, t, t1, pool], axis=-1)


def _block_d(net, impl, name, x):
  t, t1 = _merged_1x1(net, name, x, relu=(True, True))
  t = _layer(net, impl, f'{name}.tower.conv_1', t)
  for i in (1, 2, 3):
    t1 = _layer(net, impl, f'{name}.tower_1.conv_{i}', t1)
  return jnp.concatenate([t, t1, _max_pool(x)], axis=-1)


def _block_e(net, impl, name, x, *, max_pool_branch):
  if max_pool_branch:  # mixed_10: max pool, then conv (they do not commute)
    b0, a, b = _merged_1x1(net, name, x, relu=(True, True, True))
    pool = _layer(net, impl, f'{name}.tower_2_conv',
                  _max_pool(x, size=3, stride=1, pad=1))
  else:  # mixed_9: average pool commutes with the affine 1x1 conv
    b0, a, b, pool_pre = _merged_1x1(net, name, x,
                                      relu=(True, True, True, False))
    pool = jax.nn.relu(_avg_pool_3x3_same(pool_pre))
  b = _layer(net, impl, f'{name}.tower_1_conv_1', b)
  return jnp.concatenate([
      b0,
      _layer(net, impl, f'{name}.tower_mixed_conv', a),
      _layer(net, impl, f'{name}.tower_mixed_conv_1', a),
      _layer(net, impl, f'{name}.tower_1_mixed_conv', b),
      _layer(net, impl, f'{name}.tower_1_mixed_conv_1', b),
      pool,
  ], axis=-1)


def _forward(net: Net, x: jax.Array, impl: str) -> jax.Array:
  x = x.astype(jnp.float32)
  for name in ('conv', 'conv_1', 'conv_2'):
    x = _layer(net, impl, name, x)
  x = _max_pool(x)
  x = _layer(net, impl, 'conv_4', _layer(net, impl, 'conv_3', x))
  x = _max_pool(x)
  for name in ('mixed', 'mixed_1', 'mixed_2'):
    x = _block_a(net, impl, name, x)
  x = _block_b(net, impl, 'mixed_3', x)
  for name in ('mixed_4', 'mixed_5', 'mixed_6', 'mixed_7'):
    x = _block_c(net, impl, name, x)
  x = _block_d(net, impl, 'mixed_8', x)
  x = _block_e(net, impl, 'mixed_9', x, max_pool_branch=False)
  x = _block_e(net, impl, 'mixed_10', x, max_pool_branch=True)
  return jnp.mean(x, axis=(1, 2))


@functools.cache
def _compiled_forward():
  """:func:`_forward` jitted with the YNNPACK setting of the train steps
  (:func:`gan_stability.kernels.compile_options.default_compiler_options`:
  convolutions on Eigen's threads, faster on the CPU backend; measurements
  in docs/kernels.md). Built on first use, so importing this module does not
  start a backend."""
  return jax.jit(_forward, static_argnames='impl',
                 compiler_options=compile_options.default_compiler_options())


_compiled_fold = jax.jit(_fold, static_argnames='impl')


def resolve_impl(impl: str) -> str:
  """``'auto'`` -> ``'winograd'`` on the CPU backend, ``'direct'`` elsewhere
  (GPU/TPU convolution libraries choose their own algorithms); other values
  are checked against :data:`IMPLS`."""
  if impl == 'auto':
    return 'winograd' if jax.default_backend() == 'cpu' else 'direct'
  if impl not in IMPLS:
    raise ConfigError(f'inception impl: unknown {impl!r}; allowed: '
                      f"{['auto', *IMPLS]}")
  return impl


_FOLD_CACHE: dict = {}  # (impl, ids of the parameter leaves) -> (leaves, net)
_FOLD_CACHE_SIZE = 2


def _folded_net(params: Params, impl: str) -> Net:
  """:func:`_fold` of ``params``, kept for the last two parameter sets: a
  stream of batches folds the weights once. The key is the identity of every
  parameter array (held by the cache, so an identity cannot be reused while
  it is there): replacing any array of ``params`` folds again."""
  leaves = jax.tree.leaves(params)
  key = (impl, tuple(map(id, leaves)))
  hit = _FOLD_CACHE.pop(key, None)
  if hit is None:
    hit = (leaves, _compiled_fold(params, impl=impl))
  _FOLD_CACHE[key] = hit  # most recent last
  while len(_FOLD_CACHE) > _FOLD_CACHE_SIZE:
    del _FOLD_CACHE[next(iter(_FOLD_CACHE))]
  return hit[1]


def apply(params: Params, x: jax.Array, *, impl: str = 'auto') -> jax.Array:
  """The 2048 pool features of prepared inputs.

  Args:
    params: from :func:`load_params`.
    x: float ``[B, 299, 299, 3]`` (NHWC) in ``[-1, 1)``, i.e. ``u / 128 - 1``
      for 8-bit pixel values ``u``.
    impl: ``'direct'`` (every convolution as XLA's), ``'winograd'`` (the
      layers of :data:`WINOGRAD_TILES` and :data:`WINOGRAD_ROWS` by
      Winograd, the same function up to
      float rounding: ``tests/test_inception.py`` bounds the difference of
      the features) or ``'auto'`` (:func:`resolve_impl`: Winograd on the
      CPU).

  Returns:
    float32 ``[B, 2048]``. Jitted (top level: not for use inside another
    ``jax.jit``): one compilation per batch shape. The weights are prepared
    (batch norm folded, Winograd kernels transformed) once per parameter set
    and kept for the next calls.
  """
  impl = resolve_impl(impl)
  if x.ndim != 4 or x.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
    raise ValueError(f'apply expects prepared [B, {INPUT_SIZE}, {INPUT_SIZE}, '
                     f'3] inputs in [-1, 1); got shape {x.shape}')
  return _compiled_forward()(_folded_net(params, impl), x, impl=impl)


# -------------------------------------------------------------- resize ---
# How images reach 299x299. The FID literature used three pipelines, whose
# FIDs differ by several points at 32x32 (Parmar et al. 2022, "On Aliased
# Resizing and Surprising Subtleties in GAN Evaluation"):
#
# 'tf1'       the 2015 TF graph's own ``ResizeBilinear`` (TF 1.x, legacy
#             mapping: align_corners=False and no half-pixel centres, i.e.
#             ``src = dst * in / out``, neighbours ``floor(src)`` and
#             ``min(ceil(src), in - 1)``). Used by the TTUR code (Heusel et
#             al. 2017), whose precomputed statistics most papers of
#             2017-2019 compare against, and by StyleGAN's metrics, which
#             feed uint8 images to that graph.
# 'clean'     clean-fid's "clean" mode: PIL bicubic (a = -0.5) with
#             antialiasing, on each channel as a float32 image, clipped to
#             [0, 255], not re-quantised.
# 'bilinear'  ``jax.image.resize(..., 'bilinear')`` (half-pixel centres, no
#             antialiasing): what this library did before 0.2.0, kept so
#             that old runs evaluate as they did.
#
# 'tf1' and 'clean' are separable linear maps, applied as two matrix
# products (width, then height: the order of both reference
# implementations) at full float32 precision, on the device.

RESIZE_MODES = ('tf1', 'clean', 'bilinear')
DEFAULT_RESIZE = 'tf1'


def _tf1_matrix(n_in: int, n_out: int) -> np.ndarray:
  """``[n_out, n_in]`` weights of TF 1.x's legacy bilinear resize along one
  axis, computed in float32 as TF computes them (``scale = in / out`` and
  ``src = dst * scale`` in float)."""
  scale = np.float32(n_in) / np.float32(n_out)
  src = np.arange(n_out, dtype=np.float32) * scale
  lower = np.floor(src)
  lerp = (src - lower).astype(np.float64)
  lo = np.clip(lower.astype(np.int64), 0, n_in - 1)
  hi = np.minimum(np.ceil(src).astype(np.int64), n_in - 1)
  m = np.zeros((n_out, n_in))
  rows = np.arange(n_out)
  np.add.at(m, (rows, lo), 1.0 - lerp)
  np.add.at(m, (rows, hi), lerp)
  return m


def _bicubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
  """Keys' cubic convolution kernel with PIL's ``a = -0.5``."""
  x = np.abs(x)
  return np.where(
      x < 1.0, ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
      np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0))


def _pil_bicubic_matrix(n_in: int, n_out: int) -> np.ndarray:
  """``[n_out, n_in]`` weights of PIL's ``BICUBIC`` resampling along one
  axis (Pillow's ``Resample.c``): the kernel is stretched by the
  downsampling factor (antialiasing), taps are the input pixels whose
  centres lie within its support of the output pixel's centre
  ``(dst + 0.5) * in / out``, and each row is normalised to sum to 1."""
  scale = n_in / n_out
  filterscale = max(scale, 1.0)
  support = 2.0 * filterscale
  m = np.zeros((n_out, n_in))
  for dst in range(n_out):
    center = (dst + 0.5) * scale
    lo = max(int(center - support + 0.5), 0)
    hi = min(int(center + support + 0.5), n_in)
    taps = np.arange(lo, hi)
    w = _bicubic((taps - center + 0.5) / filterscale)
    total = w.sum()
    m[dst, lo:hi] = w / total if total != 0.0 else w
  return m


@functools.cache
def resize_matrix(n_in: int, n_out: int, mode: str) -> np.ndarray:
  """float32 ``[n_out, n_in]``: one axis of the ``'tf1'`` or ``'clean'``
  resize (an output pixel is the weighted sum of input pixels)."""
  if mode == 'tf1':
    m = _tf1_matrix(n_in, n_out)
  elif mode == 'clean':
    m = _pil_bicubic_matrix(n_in, n_out)
  else:
    raise ValueError(f'resize_matrix: mode {mode!r} is not separable-linear; '
                     "use 'tf1' or 'clean'")
  return m.astype(np.float32)


def check_resize_mode(mode: str, what: str = 'resize') -> str:
  """``mode``, or a ConfigError naming ``what`` and the allowed modes."""
  if mode not in RESIZE_MODES:
    raise ConfigError(f'{what}: unknown resize mode {mode!r}; allowed: '
                      f'{list(RESIZE_MODES)}')
  return mode


def resize(images: jax.Array, mode: str = DEFAULT_RESIZE, *,
           size: int = INPUT_SIZE) -> jax.Array:
  """Resizes ``[0, 255]`` images the way an FID pipeline does.

  Args:
    images: float (or uint8) NHWC ``[N, H, W, C]`` with pixel values in
      ``[0, 255]``.
    mode: ``'tf1'`` (TF 1.x legacy bilinear, the TTUR / StyleGAN pipeline;
      the default), ``'clean'`` (clean-fid: PIL bicubic with antialiasing on
      float32 channels, clipped to [0, 255]) or ``'bilinear'``
      (``jax.image.resize``, this library before 0.2.0). See the comment
      above :data:`RESIZE_MODES`.
    size: the output height and width.

  Returns:
    float32 ``[N, size, size, C]`` in ``[0, 255]``. Traceable (use inside
    ``jax.jit`` with ``mode`` static); an image already ``size x size`` is
    returned unchanged in every mode.
  """
  check_resize_mode(mode)
  x = jnp.asarray(images).astype(jnp.float32)
  n, h, w, c = x.shape
  if (h, w) == (size, size):
    return x
  if mode == 'bilinear':
    return jax.image.resize(x, (n, size, size, c), method='bilinear')
  hi = jax.lax.Precision.HIGHEST  # no reduced-precision matmul on GPU/TPU
  if w != size:
    x = jnp.einsum('pw,nhwc->nhpc', resize_matrix(w, size, mode), x,
                   precision=hi)
  if h != size:
    x = jnp.einsum('ph,nhwc->npwc', resize_matrix(h, size, mode), x,
                   precision=hi)
  if mode == 'clean':
    x = jnp.clip(x, 0.0, 255.0)
  return x


def to_pixels(samples, *, quantize_samples: bool = True) -> np.ndarray:
  """Generator outputs in ``[-1, 1]`` -> ``[0, 255]`` pixels: uint8 by
  :func:`quantize`, or float32 ``(clip(x, -1, 1) + 1) * 127.5`` without
  rounding. uint8 input is returned as is."""
  samples = np.asarray(samples)
  if samples.dtype == np.uint8:
    return samples
  if quantize_samples:
    return quantize(samples)
  return (np.clip(samples, -1.0, 1.0).astype(np.float32) + 1.0) * np.float32(
      127.5)


def quantize(samples) -> np.ndarray:
  """Generator outputs in ``[-1, 1]`` -> uint8 pixels, as a saved image
  would hold them: ``floor(x * 127.5 + 128)`` clipped to ``[0, 255]``
  (round half up of ``(x + 1) * 127.5``; StyleGAN's conversion). uint8 input
  is returned as is."""
  samples = np.asarray(samples)
  if samples.dtype == np.uint8:
    return samples
  x = np.floor(samples.astype(np.float32) * 127.5 + 128.0)
  return np.clip(x, 0, 255).astype(np.uint8)


# ------------------------------------------------------------ features ---


@functools.partial(jax.jit, static_argnames='mode')
def prepare(images: jax.Array, mode: str = DEFAULT_RESIZE) -> jax.Array:
  """``[0, 255]`` NHWC images (1 or 3 channels, any size) -> ``apply`` input.

  :func:`resize` to 299x299 in ``mode`` (nothing at 299x299), grey copied to
  3 channels, then ``x / 128 - 1`` (the TF graph's own mapping).
  """
  _check_images(images)
  x = resize(images, mode)
  n, _, _, c = x.shape
  if c == 1:
    x = jnp.broadcast_to(x, (n, INPUT_SIZE, INPUT_SIZE, 3))
  return x / 128.0 - 1.0


def _check_images(images) -> None:
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError('images must be NHWC [N, H, W, C] with C = 1 or 3 and '
                     f'pixel values in [0, 255]; got shape {images.shape}')


def _batch_sharding(batch_size: int):
  """The sharding of a feature batch over this process's devices (``None``
  with one device) and the batch size rounded up to a multiple of them."""
  devices = jax.local_devices()
  if len(devices) == 1:
    return None, batch_size
  mesh = jax.sharding.Mesh(np.array(devices), ('batch',))
  sharding = jax.sharding.NamedSharding(
      mesh, jax.sharding.PartitionSpec('batch'))
  return sharding, -(-batch_size // len(devices)) * len(devices)


def features(params: Params, images: Any, *, resize: str = DEFAULT_RESIZE,
             batch_size: int = 25, impl: str = 'auto',
             progress=None) -> np.ndarray:
  """FID features of ``[0, 255]`` images.

  Args:
    params: from :func:`load_params`.
    images: NHWC ``[N, H, W, C]``, ``C`` = 1 (grey, copied to 3 channels) or
      3, uint8 or float with pixel values in ``[0, 255]`` (**not**
      ``[-1, 1]``; see :func:`quantize` for generator outputs). Any array
      supporting slicing (numpy, ``np.memmap``, jax): only one batch at a
      time is converted and sent to the device.
    resize: the resize mode (:data:`RESIZE_MODES`; default ``'tf1'``, the
      TTUR / StyleGAN pipeline).
    batch_size: images per network call, rounded up to a multiple of this
      process's devices, over which each batch is sharded. Every call has
      this batch shape (the last batch is zero-padded and the padding
      dropped), so a stream of any length compiles once per
      ``(batch_size, H, W, C, dtype, resize)``. The default suits a CPU; use
      larger batches on an accelerator.
    impl: the network's convolutions (:func:`apply`; default ``'auto'``:
      Winograd where it is faster on the CPU, XLA's elsewhere).
    progress: called as ``progress(done, total)`` after each batch.

  Returns:
    float32 numpy ``[N, 2048]``.
  """
  check_resize_mode(resize, 'features')
  resolve_impl(impl)
  if batch_size < 1:
    raise ValueError(f'batch_size must be >= 1, got {batch_size}')
  shape = tuple(np.shape(images))
  if len(shape) != 4 or shape[-1] not in (1, 3):
    raise ValueError('images must be NHWC [N, H, W, C] with C = 1 or 3 and '
                     f'pixel values in [0, 255]; got shape {shape}')
  sharding, batch_size = _batch_sharding(batch_size)
  n = shape[0]
  out = np.empty((n, FEATURE_DIM), np.float32)
  pending = None  # (start, count, device result): overlap host and device

  def collect():
    s, c, r = pending
    out[s:s + c] = np.asarray(r)[:c]
    if progress is not None:
      progress(s + c, n)

  for start in range(0, n, batch_size):
    batch = np.asarray(images[start:start + batch_size])
    count = batch.shape[0]
    if count < batch_size:
      pad = np.zeros((batch_size - count,) + batch.shape[1:], batch.dtype)
      batch = np.concatenate([batch, pad])
    if sharding is not None:
      batch = jax.device_put(batch, sharding)
    result = apply(params, prepare(batch, resize), impl=impl)
    if pending is not None:
      collect()
    pending = (start, count, result)
  if pending is not None:
    collect()
  return out
