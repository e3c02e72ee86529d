"""Helpers shared by the image models (dcgan.py, cnn.py, resnet.py).

* :func:`norm_layer` - the optional normalisation after a layer:
  ``'batch'`` is :class:`flax.linen.BatchNorm` (statistics in ``batch_stats``,
  running averages when ``train`` is False; Ioffe & Szegedy 2015), ``'layer'``
  is layer normalisation over (H, W, C) of each example with a per-channel
  scale and offset (Ba et al. 2016, as in the WGAN-GP critics of Gulrajani et
  al. 2017, which must not mix examples), ``'none'`` is the identity.
* :func:`pack` - PacGAN packing for images (Lin et al., "PacGAN: The power of
  two samples in generative adversarial networks", NeurIPS 2018): ``packing``
  consecutive samples are concatenated along channels.
* :func:`sn_layer` - a layer spectrally normalised on demand
  (:class:`gan_stability.models.layers.SNWrap`).
* :func:`square_resolution` - shape checks with errors naming the config field.
"""

from __future__ import annotations

import math
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import layers

# Radford et al. 2016 (the DCGAN TensorFlow code) and Miyato et al. 2018 (the
# Chainer code) both use batch-norm running averages with decay 0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
NORMS = ('none', 'batch', 'layer')


def norm_layer(kind: str, *, train: bool, name: str) -> Callable[[jax.Array], jax.Array]:
  """The normalisation ``kind`` as a callable on ``[B, ..., C]`` features.

  Must be called inside a compact ``__call__`` (it creates a submodule).
  """
  if kind == 'none':
    return lambda h: h
  if kind == 'batch':
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                        epsilon=BN_EPSILON, name=name)
  if kind == 'layer':
    def apply(h):
      axes = tuple(range(1, h.ndim))  # every axis but the batch
      return nn.LayerNorm(reduction_axes=axes, feature_axes=-1,
                          epsilon=BN_EPSILON, name=name)(h)
    return apply
  raise ValueError(f'normalisation {kind!r}; allowed: {list(NORMS)}')


def check_norm(field: str, kind: str, allowed=NORMS) -> None:
  if kind not in allowed:
    raise ValueError(f'config.model.{field}: {kind!r}; allowed: {list(allowed)}')


def pack(x: jax.Array, packing: int) -> jax.Array:
  """``[B, H, W, C] -> [B / packing, H, W, C * packing]``.

  Samples ``packing * i ... packing * i + packing - 1`` form pack ``i``, their
  channels concatenated in that order (PacGAN, Lin et al. 2018, Sec. 3).
  """
  if packing == 1:
    return x
  b, h, w, c = x.shape
  if b % packing:
    raise ValueError(f'config.model.packing: batch {b} is not a multiple of '
                     f'packing={packing}')
  x = x.reshape(b // packing, packing, h, w, c).transpose(0, 2, 3, 1, 4)
  return x.reshape(b // packing, h, w, packing * c)


def sn_layer(layer: nn.Module, spectral_norm: bool, sn_steps: int,
             update_stats: bool) -> Callable[[jax.Array], jax.Array]:
  """``layer`` (created with an explicit name) wrapped by :class:`SNWrap`."""
  wrapped = layers.SNWrap(layer, spectral_norm, sn_steps)
  return lambda h: wrapped(h, update_stats=update_stats)


def square_resolution(model: str, data_shape, ok: Callable[[int], bool],
                      expect: str) -> tuple[int, int]:
  """Returns ``(size, channels)`` of square ``(size, size, channels)`` data,
  or raises ValueError naming ``config.model.name``."""
  shape = tuple(data_shape)
  if len(shape) != 3 or shape[0] != shape[1] or not ok(shape[0]) or shape[2] < 1:
    raise ValueError(f'config.model.name: {model!r} supports images of shape '
                     f'{expect}, got data shape {shape}')
  return shape[0], shape[2]


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling of ``[B, H, W, C]`` by ``factor``."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def avg_pool2(x: jax.Array) -> jax.Array:
  return nn.avg_pool(x, (2, 2), strides=(2, 2), padding='VALID')


# Initialisers drawing a flat vector and reshaping it: the same distributions
# as flax's ``normal`` / ``variance_scaling``, but XLA compiles the flat
# partitionable-threefry draw much faster than one with a 4-D conv shape.
def _fans(shape) -> tuple[float, float]:
  receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
  return receptive * shape[-2], receptive * shape[-1]


def normal_init(stddev: float):
  """``N(0, stddev^2)`` entries (any shape)."""
  def init(key, shape, dtype=jnp.float32):
    flat = jax.random.normal(key, (math.prod(shape),), dtype)
    return (stddev * flat).reshape(shape)
  return init


def glorot_uniform(gain: float = 1.0):
  """``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot &
  Bengio 2010; Chainer's ``GlorotUniform(scale=gain)``), fans of a
  ``[..., in, out]`` kernel as in :func:`flax.linen.initializers.variance_scaling`."""
  def init(key, shape, dtype=jnp.float32):
    fan_in, fan_out = _fans(shape)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    flat = jax.random.uniform(key, (math.prod(shape),), dtype, -limit, limit)
    return flat.reshape(shape)
  return init


def conv_discriminator(h: jax.Array, specs, *, norm: str, slope: float,
                       wrap, train: bool, conv_impl: str, kernel_init,
                       labels=None, num_classes: int = 0, module=None):
  """The plain conv discriminator body shared by DCGAN and the SN-GAN CNN.

  Call it inside a compact ``__call__``: for each ``(features, kernel,
  stride)`` in ``specs`` a conv ``conv_{i}`` (wrapped by ``wrap``, e.g. spectral
  norm), normalisation ``norm_{i}`` after every conv but the first (layers
  followed by batch norm have no bias), LeakyReLU(``slope``); then a dense
  ``out`` layer to one logit per example. With ``num_classes > 0`` the logit
  gets the projection term ``<E[labels], phi>`` of the flattened features
  ``phi`` (:func:`gan_stability.models.conditional.project_logits`; ``module``
  is the calling discriminator).
  """
  from gan_stability.models import conditional, fast_conv  # pylint: disable=g-import-not-at-top
  for i, (features, k, s) in enumerate(specs):
    normed = i > 0 and norm != 'none'
    h = wrap(fast_conv.Conv(
        features, (k, k), (s, s), 'SAME',
        use_bias=not (normed and norm == 'batch'),
        impl=conv_impl, kernel_init=kernel_init, name=f'conv_{i}'))(h)
    if normed:
      h = norm_layer(norm, train=train, name=f'norm_{i}')(h)
    h = nn.leaky_relu(h, negative_slope=slope)
  h = h.reshape(h.shape[0], -1)
  out = wrap(nn.Dense(1, kernel_init=kernel_init, name='out'))(h)
  return conditional.project_logits(
      jnp.squeeze(out, axis=-1), h, labels, num_classes=num_classes,
      wrap=wrap, module=module)


def num_classes(model_cfg) -> int:
  """``config.model.num_classes`` (0, unconditional, when absent); a
  conditional model cannot pack its discriminator's inputs."""
  n = int(model_cfg.get('num_classes', 0))
  if n < 0:
    raise ValueError(f'config.model.num_classes: {n} must be >= 0')
  if n and model_cfg.get('packing', 1) > 1:
    raise ValueError('config.model.packing: class-conditional models '
                     f'(num_classes={n}) do not support packing > 1')
  return n
