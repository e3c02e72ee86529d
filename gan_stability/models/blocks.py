"""Building blocks shared by the image models (dcgan.py, cnn.py, resnet.py,
vae.py).

* :func:`pack` - PacGAN packing for images (Lin et al., "PacGAN: The power of
  two samples in generative adversarial networks", NeurIPS 2018): ``packing``
  consecutive samples are concatenated along channels.
* :func:`sn_layer` - a layer spectrally normalised on demand
  (:class:`gan_stability.models.layers.SNWrap`).
* :func:`square_resolution`, :func:`num_classes` - shape and config checks
  with errors naming the config field.
* :func:`upsample_nearest`, :func:`avg_pool2` - 2x resampling.
* :func:`conv_discriminator` - the plain conv discriminator body of DCGAN
  and the SN-GAN CNN.
"""

from __future__ import annotations

from typing import Callable


import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.errors import ConfigError
from gan_stability.models import conditional, layers, norms


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
  """``layer`` (created with an explicit name) wrapped by
  :class:`~gan_stability.models.layers.SNWrap`."""
  wrapped = layers.SNWrap(layer, spectral_norm, sn_steps)
  return lambda h: wrapped(h, update_stats=update_stats)


def square_resolution(model: str, data_shape, ok: Callable[[int], bool],
                      expect: str) -> tuple[int, int]:
  """Returns ``(size, channels)`` of square ``(size, size, channels)`` data,
  or raises ConfigError naming ``config.model.name``."""
  shape = tuple(data_shape)
  if len(shape) != 3 or shape[0] != shape[1] or not ok(shape[0]) or shape[2] < 1:
    # A ConfigError (a ValueError): the data's shape is known only once it is
    # read, and a CLI reports it in one line.
    raise ConfigError(f'config.model.name: {model!r} supports images of '
                      f'shape {expect}, got data shape {shape} (the data '
                      'sets it: data.image_size, data.pad_to)')
  return shape[0], shape[2]


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
  """Nearest-neighbour upsampling of ``[B, H, W, C]`` by ``factor``."""
  return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def avg_pool2(x: jax.Array) -> jax.Array:
  """2x2 average pooling with stride 2 of ``[B, H, W, C]``."""
  return nn.avg_pool(x, (2, 2), strides=(2, 2), padding='VALID')


def conv_discriminator(h: jax.Array, specs, *, norm: str, slope: float,
                       wrap, train: bool, conv_impl: str, kernel_init,
                       labels=None, num_classes: int = 0, module=None,
                       dtype=None):
  """The plain conv discriminator body shared by DCGAN and the SN-GAN CNN.

  Call it inside a compact ``__call__``: for each ``(features, kernel,
  stride)`` in ``specs`` a conv ``conv_{i}`` (wrapped by ``wrap``, e.g. spectral
  norm), normalisation ``norm_{i}`` after every conv but the first (layers
  followed by batch norm have no bias), LeakyReLU(``slope``); then a dense
  ``out`` layer to one logit per example. With ``num_classes > 0`` the logit
  gets the projection term ``<E[labels], phi>`` of the flattened features
  ``phi`` (:func:`gan_stability.models.conditional.project_logits`; ``module``
  is the calling discriminator). ``dtype`` is the compute dtype of the conv,
  norm and dense layers (None: float32); the logits are float32
  (:func:`~gan_stability.models.layers.to_float32`).
  """
  for i, (features, k, s) in enumerate(specs):
    normed = i > 0 and norm != 'none'
    h = wrap(layers.Conv(
        features, (k, k), (s, s), 'SAME',
        use_bias=not (normed and norm == 'batch'),
        impl=conv_impl, kernel_init=kernel_init, dtype=dtype,
        name=f'conv_{i}'))(h)
    if normed:
      h = norms.norm_layer(norm, train=train, name=f'norm_{i}',
                           dtype=dtype)(h)
    h = nn.leaky_relu(h, negative_slope=slope)
  h = h.reshape(h.shape[0], -1)
  out = wrap(nn.Dense(1, kernel_init=kernel_init, dtype=dtype, name='out'))(h)
  return conditional.project_logits(
      layers.to_float32(jnp.squeeze(out, axis=-1), dtype), h, labels,
      num_classes=num_classes, wrap=wrap, module=module)


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
