"""The "standard CNN" of Miyato, Kataoka, Koyama & Yoshida, "Spectral
Normalization for Generative Adversarial Networks", ICLR 2018, Table 3.

(a) Generator, ``M_g = H / 8`` (4 for CIFAR-10)::

    z in R^128 ~ N(0, I)
    dense -> M_g x M_g x 512                      (BN, ReLU)
    4x4 stride-2 deconv -> 256                    (BN, ReLU)
    4x4 stride-2 deconv -> 128                    (BN, ReLU)
    4x4 stride-2 deconv -> 64                     (BN, ReLU)
    3x3 stride-1 conv   -> 3                      tanh

(b) Discriminator, LeakyReLU slope 0.1 after every convolution::

    3x3 s1 conv 64, 4x4 s2 conv 64, 3x3 s1 conv 128, 4x4 s2 conv 128,
    3x3 s1 conv 256, 4x4 s2 conv 256, 3x3 s1 conv 512, dense -> 1

Widths scale with ``g_width`` (the 512 above: G uses ``g, g/2, g/4, g/8``)
and ``d_width`` (the 64 above: D uses ``d, d, 2d, 2d, 4d, 4d, 8d``). Table 3
lists no normalisation after G's dense layer; the authors' Chainer code
(``DCGANGenerator`` of chainer-gan-lib) applies BN and ReLU there, which is
followed here. Weights are initialised from N(0, 0.02) as in that code.
Spectral normalisation of D is switched on by ``spectral_norm``; the optional
``norm`` of D (not in the paper) follows every convolution but the first.
Convolutions use :class:`gan_stability.models.layers.Conv` /
:class:`~gan_stability.models.layers.ConvTranspose` (exactly ``nn.Conv`` /
``nn.ConvTranspose``; custom VJPs that are faster on the CPU).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import blocks, conditional, inits, layers, norms

INIT = inits.normal_init(0.02)
SUPPORTED = '(S, S, C) with S a multiple of 8 (32 for CIFAR-10, 48 for STL-10)'


class SNGANGenerator(nn.Module):
  """``G(z, *, labels=None, train) -> [B, H, W, C]`` in [-1, 1] (Miyato et
  al. Table 3a); class-conditional (label embedding concatenated to ``z``)
  when ``num_classes > 0``. ``dtype`` is the compute dtype (None: float32;
  :mod:`gan_stability.models.layers`); the images are float32 (cast before
  the tanh)."""
  out_shape: tuple[int, int, int] = (32, 32, 3)
  width: int = 512
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
    use_bias = self.norm != 'batch'
    dtype = self.dtype
    h = nn.Dense(base * base * self.width, use_bias=use_bias, kernel_init=INIT,
                 dtype=dtype, name='dense')(z)
    h = h.reshape(z.shape[0], base, base, self.width)
    h = nn.relu(norms.norm_layer(self.norm, train=train, name='bn_0',
                                 dtype=dtype)(h))
    for i in range(1, 4):
      h = layers.ConvTranspose(
          max(1, self.width // 2 ** i), (4, 4), (2, 2), 'SAME',
          use_bias=use_bias, impl=self.conv_impl, kernel_init=INIT,
          dtype=dtype, name=f'deconv_{i}')(h)
      h = nn.relu(norms.norm_layer(self.norm, train=train, name=f'bn_{i}',
                                   dtype=dtype)(h))
    h = layers.Conv(channels, (3, 3), padding='SAME', impl=self.conv_impl,
                    kernel_init=INIT, dtype=dtype, name='conv_out')(h)
    return jnp.tanh(layers.to_float32(h, dtype))


# (kernel, stride, width multiplier) of the discriminator's convolutions.
D_LAYERS = ((3, 1, 1), (4, 2, 1), (3, 1, 2), (4, 2, 2), (3, 1, 4), (4, 2, 4),
            (3, 1, 8))


class SNGANDiscriminator(nn.Module):
  """``D(x, *, labels=None, update_stats=False, train=False) -> logits
  [B / packing]`` (Miyato et al. Table 3b); a projection discriminator
  (Miyato & Koyama 2018) when ``num_classes > 0``. ``dtype`` is the compute
  dtype (None: float32); the logits are float32."""
  width: int = 64
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
    wrap = lambda layer: blocks.sn_layer(layer, self.spectral_norm,
                                         self.sn_steps, update_stats)
    specs = [(self.width * mult, k, s) for k, s, mult in D_LAYERS]
    return blocks.conv_discriminator(
        h, specs, norm=self.norm, slope=0.1, wrap=wrap, train=train,
        conv_impl=self.conv_impl, kernel_init=INIT, labels=labels,
        num_classes=self.num_classes, module=self, dtype=self.dtype)


def build(model_cfg, data_shape) -> tuple[SNGANGenerator, SNGANDiscriminator]:
  """``(generator, discriminator)`` for ``config.model`` and ``(H, W, C)``.

  Reads ``name, g_width (paper 512), d_width (paper 64), g_norm, d_norm,
  spectral_norm, sn_steps, packing`` and, if present, ``conv_impl``,
  ``num_classes`` and ``compute_dtype``.
  """
  size, channels = blocks.square_resolution(
      model_cfg.name, data_shape, lambda s: s >= 8 and s % 8 == 0, SUPPORTED)
  norms.check_norm('g_norm', model_cfg.g_norm, ('batch', 'none'))
  norms.check_norm('d_norm', model_cfg.d_norm)
  if model_cfg.g_width < 8:
    raise ValueError(f'config.model.g_width: {model_cfg.g_width} must be >= 8 '
                     f'({model_cfg.name!r} halves it three times)')
  impl = model_cfg.get('conv_impl', 'auto')
  dtype = layers.compute_dtype(model_cfg)
  layers.check_conv_impl(impl, dtype)
  nc = blocks.num_classes(model_cfg)
  g = SNGANGenerator(out_shape=(size, size, channels), width=model_cfg.g_width,
                     norm=model_cfg.g_norm, conv_impl=impl, num_classes=nc,
                     dtype=dtype)
  d = SNGANDiscriminator(width=model_cfg.d_width, norm=model_cfg.d_norm,
                         spectral_norm=model_cfg.spectral_norm,
                         sn_steps=model_cfg.sn_steps,
                         packing=model_cfg.packing, conv_impl=impl,
                         num_classes=nc, dtype=dtype)
  return g, d
