"""ResNet generator and discriminator for CIFAR-10: Gulrajani, Ahmed, Arjovsky,
Dumoulin & Courville, "Improved Training of Wasserstein GANs", NeurIPS 2017,
Appendix F (the CIFAR-10 ResNet); the same networks are Table 4 of Miyato et
al., "Spectral Normalization for Generative Adversarial Networks", ICLR 2018.

Generator (``g`` = ``g_width``, 256 in the papers; ``M = H / 8``)::

    z in R^128 -> dense M x M x g
    ResBlock up g, ResBlock up g, ResBlock up g
    BN, ReLU, 3x3 conv -> C, tanh

    ResBlock up:  BN, ReLU, nearest 2x upsample, 3x3 conv, BN, ReLU, 3x3 conv
                  shortcut: nearest 2x upsample, 1x1 conv

Discriminator (``d`` = ``d_width``, 128 in the papers)::

    optimised block d:  3x3 conv, ReLU, 3x3 conv, 2x2 avg-pool
                        shortcut: 2x2 avg-pool, 1x1 conv
    ResBlock down d:    ReLU, 3x3 conv, ReLU, 3x3 conv, 2x2 avg-pool
                        shortcut: 1x1 conv, 2x2 avg-pool
    ResBlock d, ResBlock d (identity shortcut)
    ReLU, global sum pooling, dense -> 1

Class-conditional models (``num_classes > 0``, Miyato & Koyama 2018): G
concatenates a label embedding to ``z`` (not the conditional batch norm of
that paper); D adds the projection ``<E[y], phi(x)>`` of the sum-pooled
features ``phi(x)`` (:mod:`gan_stability.models.conditional`).

Initialisation follows Miyato et al.'s Chainer code: Glorot-uniform with gain
sqrt(2) for the residual convolutions, Glorot-uniform for the shortcuts, the
dense layers and G's output convolution. Every conv/dense layer of D is
spectrally normalised when ``spectral_norm`` is set. D's optional ``norm``
(not used for CIFAR-10 in either paper; the layer-norm critics of Gulrajani
et al. put it there) is applied before each ReLU inside the blocks.
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import blocks, conditional, inits, layers, norms

RES_INIT = inits.glorot_uniform(math.sqrt(2.0))
SC_INIT = inits.glorot_uniform(1.0)
SUPPORTED = '(S, S, C) with S a multiple of 8 (32 for CIFAR-10)'


def _conv(features, k, name, impl, init=RES_INIT, dtype=None):
  return layers.Conv(features, (k, k), padding='SAME', impl=impl,
                     kernel_init=init, dtype=dtype, name=name)


class GBlockUp(nn.Module):
  """Generator residual block with 2x nearest-neighbour upsampling
  (``dtype``: the compute dtype, None for float32)."""
  features: int
  norm: str = 'batch'
  conv_impl: str = 'auto'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    dt = self.dtype
    norm = lambda name: norms.norm_layer(self.norm, train=train, name=name,
                                         dtype=dt)
    h = nn.relu(norm('bn_1')(x))
    h = _conv(self.features, 3, 'conv_1', self.conv_impl, dtype=dt)(
        blocks.upsample_nearest(h))
    h = nn.relu(norm('bn_2')(h))
    h = _conv(self.features, 3, 'conv_2', self.conv_impl, dtype=dt)(h)
    sc = _conv(self.features, 1, 'shortcut', self.conv_impl, SC_INIT, dt)(
        blocks.upsample_nearest(x))
    return h + sc


class ResNetGenerator(nn.Module):
  """``G(z, *, labels=None, train) -> [B, H, W, C]`` in [-1, 1]; ``dtype``
  is the compute dtype (None: float32), the images are float32 (cast before
  the tanh)."""
  out_shape: tuple[int, int, int] = (32, 32, 3)
  width: int = 256
  norm: str = 'batch'
  conv_impl: str = 'auto'
  num_classes: int = 0
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, *, labels: jax.Array | None = None,
               train: bool) -> jax.Array:
    z = conditional.generator_input(z, labels, num_classes=self.num_classes)
    size, _, channels = self.out_shape
    base = size // 8
    dt = self.dtype
    h = nn.Dense(base * base * self.width, kernel_init=SC_INIT, dtype=dt,
                 name='dense')(z)
    h = h.reshape(z.shape[0], base, base, self.width)
    for i in range(3):
      h = GBlockUp(self.width, self.norm, self.conv_impl, dt,
                   name=f'block_{i}')(h, train=train)
    h = nn.relu(norms.norm_layer(self.norm, train=train, name='bn_out',
                                 dtype=dt)(h))
    h = _conv(channels, 3, 'conv_out', self.conv_impl, SC_INIT, dt)(h)
    return jnp.tanh(layers.to_float32(h, dt))


class DBlock(nn.Module):
  """Discriminator residual block; ``optimized`` is the first block of
  Miyato et al. (no ReLU on the input, shortcut pooled before its 1x1 conv).
  The shortcut is learnable (1x1 conv) when the block downsamples or changes
  the width, the identity otherwise. ``dtype``: the compute dtype (None:
  float32)."""
  features: int
  downsample: bool = False
  optimized: bool = False
  norm: str = 'none'
  spectral_norm: bool = False
  sn_steps: int = 1
  conv_impl: str = 'auto'
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, update_stats: bool,
               train: bool) -> jax.Array:
    wrap = lambda layer: blocks.sn_layer(layer, self.spectral_norm,
                                         self.sn_steps, update_stats)
    dt = self.dtype
    norm = lambda name: norms.norm_layer(self.norm, train=train, name=name,
                                         dtype=dt)
    h = x if self.optimized else nn.relu(norm('norm_1')(x))
    h = wrap(_conv(self.features, 3, 'conv_1', self.conv_impl, dtype=dt))(h)
    h = nn.relu(norm('norm_2')(h))
    h = wrap(_conv(self.features, 3, 'conv_2', self.conv_impl, dtype=dt))(h)
    if self.downsample:
      h = blocks.avg_pool2(h)

    learnable = self.downsample or x.shape[-1] != self.features
    sc = x
    if self.optimized:
      sc = blocks.avg_pool2(sc) if self.downsample else sc
      sc = wrap(_conv(self.features, 1, 'shortcut', self.conv_impl, SC_INIT,
                      dt))(sc)
    elif learnable:
      sc = wrap(_conv(self.features, 1, 'shortcut', self.conv_impl, SC_INIT,
                      dt))(sc)
      sc = blocks.avg_pool2(sc) if self.downsample else sc
    return h + sc


class ResNetDiscriminator(nn.Module):
  """``D(x, *, labels=None, update_stats=False, train=False) -> logits
  [B / packing]``, float32 whatever the compute ``dtype`` (None: float32)."""
  width: int = 128
  norm: str = 'none'
  spectral_norm: bool = False
  sn_steps: int = 1
  packing: int = 1
  conv_impl: str = 'auto'
  num_classes: int = 0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, labels: jax.Array | None = None,
               update_stats: bool = False, train: bool = False) -> jax.Array:
    h = blocks.pack(x, self.packing)
    common = dict(norm=self.norm, spectral_norm=self.spectral_norm,
                  sn_steps=self.sn_steps, conv_impl=self.conv_impl,
                  dtype=self.dtype)
    specs = ((True, True), (True, False), (False, False), (False, False))
    for i, (down, optimized) in enumerate(specs):
      h = DBlock(self.width, downsample=down, optimized=optimized,
                 name=f'block_{i}', **common)(
                     h, update_stats=update_stats, train=train)
    h = jnp.sum(nn.relu(h), axis=(1, 2))  # global sum pooling: phi(x)
    wrap = lambda layer: blocks.sn_layer(layer, self.spectral_norm,
                                         self.sn_steps, update_stats)
    out = wrap(nn.Dense(1, kernel_init=SC_INIT, dtype=self.dtype,
                        name='out'))(h)
    return conditional.project_logits(
        layers.to_float32(jnp.squeeze(out, axis=-1), self.dtype), h, labels,
        num_classes=self.num_classes, wrap=wrap, module=self)


def build(model_cfg, data_shape) -> tuple[ResNetGenerator, ResNetDiscriminator]:
  """``(generator, discriminator)`` for ``config.model`` and ``(H, W, C)``.

  Reads ``name, g_width (paper 256), d_width (paper 128), g_norm, d_norm,
  spectral_norm, sn_steps, packing`` and, if present, ``conv_impl``,
  ``num_classes`` and ``compute_dtype``.
  """
  size, channels = blocks.square_resolution(
      model_cfg.name, data_shape, lambda s: s >= 8 and s % 8 == 0, SUPPORTED)
  norms.check_norm('g_norm', model_cfg.g_norm, ('batch', 'none'))
  norms.check_norm('d_norm', model_cfg.d_norm)
  impl = model_cfg.get('conv_impl', 'auto')
  dtype = layers.compute_dtype(model_cfg)
  layers.check_conv_impl(impl, dtype)
  nc = blocks.num_classes(model_cfg)
  g = ResNetGenerator(out_shape=(size, size, channels),
                      width=model_cfg.g_width, norm=model_cfg.g_norm,
                      conv_impl=impl, num_classes=nc, dtype=dtype)
  d = ResNetDiscriminator(width=model_cfg.d_width, norm=model_cfg.d_norm,
                          spectral_norm=model_cfg.spectral_norm,
                          sn_steps=model_cfg.sn_steps,
                          packing=model_cfg.packing, conv_impl=impl,
                          num_classes=nc, dtype=dtype)
  return g, d
