"""DCGAN generator and discriminator (Radford, Metz & Chintala, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial
Networks", ICLR 2016).

Architecture guidelines of the paper (Sec. 3): strided convolutions instead
of pooling, fractionally-strided (transposed) convolutions in G, batch norm
in G (and optionally D) except at G's output and D's input, ReLU in G with a
tanh output, LeakyReLU(0.2) in D, no fully connected hidden layers, weights
initialised from N(0, 0.02).

Layouts (``w`` = ``g_width`` / ``d_width``, ``C`` = image channels):

* 28x28 (MNIST-style, the common MNIST DCGAN; cf. the WGAN-GP MNIST model of
  Gulrajani et al. 2017): G ``z -> dense 7x7x(2w) -> deconv 14x14xw ->
  deconv 28x28xC``; D ``conv 14x14xw -> conv 7x7x(2w) -> dense 1``.
* 32x32 (and any power of two >= 16, e.g. 64x64 as in the paper's LSUN
  model): G ``z -> dense 4x4x(4w) -> deconv 8x8x(2w) -> 16x16xw -> 32x32xC``;
  D ``conv 16x16xw -> 8x8x(2w) -> 4x4x(4w) -> dense 1``.

Up/downsampling layers are ``k x k`` stride-2 ``'SAME'`` (transposed)
convolutions, ``k = kernel_size`` (4 by default; 5 in the paper's code). They
use :class:`gan_stability.models.layers.ConvTranspose` /
:class:`~gan_stability.models.layers.Conv`, which have exactly the
parameters and function of ``flax.linen.ConvTranspose`` / ``flax.linen.Conv``
and compute the gradients of stride-1 and 4x4 stride-2 layers faster on the
CPU (``conv_impl``).
"""

from __future__ import annotations

import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import blocks, conditional, inits, layers, norms

INIT = inits.normal_init(0.02)  # Radford et al. 2016, Sec. 4
SUPPORTED = '(28, 28, C) or (S, S, C) with S a power of two >= 16'


def layout(size: int) -> tuple[int, int]:
  """``(base resolution, number of stride-2 layers)`` for ``size x size``."""
  if size == 28:
    return 7, 2
  if size >= 16 and size & (size - 1) == 0:
    n = int(round(math.log2(size))) - 2
    return 4, n
  raise ValueError(f'config.model.name: dcgan supports images of shape '
                   f'{SUPPORTED}, got size {size}')


class DCGANGenerator(nn.Module):
  """``G(z, *, labels=None, train) -> [B, H, W, C]`` in [-1, 1].

  ``out_shape`` is ``(H, W, C)``; ``width`` is the channel count of the last
  hidden layer (doubling towards the input); ``norm`` is ``'batch'`` or
  ``'none'``. Layers followed by batch norm have no bias. ``num_classes > 0``
  makes G class-conditional: ``labels`` (int ``[B]``) are embedded and
  concatenated to ``z`` (:mod:`gan_stability.models.conditional`).
  ``tanh_output=False`` returns the pre-tanh activations ``h`` instead of
  ``tanh(h)`` (same parameters): the VAE decoder reads them as Bernoulli
  logits ``2h``, since ``sigmoid(2h) = (tanh(h) + 1) / 2``
  (:mod:`gan_stability.elbo`). ``dtype`` is the compute dtype of the dense
  and (transposed) conv layers and of the activations between them (None:
  float32; :mod:`gan_stability.models.layers`); the last layer's output is
  cast to float32 before the tanh, so the images are float32.
  """
  out_shape: tuple[int, int, int] = (28, 28, 1)
  width: int = 64
  norm: str = 'batch'
  kernel_size: int = 4
  conv_impl: str = 'auto'
  num_classes: int = 0
  tanh_output: bool = True
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, *, labels: jax.Array | None = None,
               train: bool) -> jax.Array:
    z = conditional.generator_input(z, labels, num_classes=self.num_classes)
    size, _, channels = self.out_shape
    base, n_up = layout(size)
    widths = [self.width * 2 ** (n_up - 1 - i) for i in range(n_up)]
    use_bias = self.norm != 'batch'
    k = (self.kernel_size, self.kernel_size)

    dtype = self.dtype
    h = nn.Dense(base * base * widths[0], use_bias=use_bias, kernel_init=INIT,
                 dtype=dtype, name='dense')(z)
    h = h.reshape(z.shape[0], base, base, widths[0])
    h = nn.relu(norms.norm_layer(self.norm, train=train, name='bn_0',
                                 dtype=dtype)(h))
    for i in range(1, n_up):
      h = layers.ConvTranspose(
          widths[i], k, (2, 2), 'SAME', use_bias=use_bias,
          impl=self.conv_impl, kernel_init=INIT, dtype=dtype,
          name=f'deconv_{i}')(h)
      h = nn.relu(norms.norm_layer(self.norm, train=train, name=f'bn_{i}',
                                   dtype=dtype)(h))
    h = layers.ConvTranspose(channels, k, (2, 2), 'SAME',
                             impl=self.conv_impl, kernel_init=INIT,
                             dtype=dtype, name='deconv_out')(h)
    h = layers.to_float32(h, dtype)
    return jnp.tanh(h) if self.tanh_output else h


class DCGANDiscriminator(nn.Module):
  """``D(x, *, update_stats=False, train=False) -> logits [B / packing]``.

  Stride-2 convolutions with widths ``w, 2w, 4w, ...`` down to the base
  resolution (7x7 for 28x28 inputs, 4x4 otherwise), LeakyReLU(0.2), then a
  dense layer to one logit. ``norm`` (``'none' | 'batch' | 'layer'``) follows
  every convolution but the first. Every conv/dense layer is spectrally
  normalised when ``spectral_norm`` is set (Miyato et al. 2018). ``packing``
  > 1 concatenates that many consecutive samples along channels (PacGAN).
  ``num_classes > 0`` makes it a projection discriminator of ``labels``
  (Miyato & Koyama 2018; :mod:`gan_stability.models.conditional`).
  ``dtype`` is the compute dtype (None: float32); the logits are float32.
  """
  width: int = 64
  norm: str = 'none'
  spectral_norm: bool = False
  sn_steps: int = 1
  packing: int = 1
  kernel_size: int = 4
  conv_impl: str = 'auto'
  num_classes: int = 0
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, labels: jax.Array | None = None,
               update_stats: bool = False, train: bool = False) -> jax.Array:
    h = blocks.pack(x, self.packing)
    _, n_down = layout(h.shape[1])
    wrap = lambda layer: blocks.sn_layer(layer, self.spectral_norm,
                                         self.sn_steps, update_stats)
    specs = [(self.width * 2 ** i, self.kernel_size, 2) for i in range(n_down)]
    return blocks.conv_discriminator(
        h, specs, norm=self.norm, slope=0.2, wrap=wrap, train=train,
        conv_impl=self.conv_impl, kernel_init=INIT, labels=labels,
        num_classes=self.num_classes, module=self, dtype=self.dtype)


def build(model_cfg, data_shape) -> tuple[DCGANGenerator, DCGANDiscriminator]:
  """``(generator, discriminator)`` for ``config.model`` and ``(H, W, C)``.

  Reads ``name, g_width, d_width, g_norm, d_norm, spectral_norm, sn_steps,
  packing`` and, if present, ``conv_impl``, ``num_classes`` and
  ``compute_dtype`` (``z_dim`` is implied by the latent passed to G).
  """
  size, channels = blocks.square_resolution(
      model_cfg.name, data_shape,
      lambda s: s == 28 or (s >= 16 and s & (s - 1) == 0), SUPPORTED)
  norms.check_norm('g_norm', model_cfg.g_norm, ('batch', 'none'))
  norms.check_norm('d_norm', model_cfg.d_norm)
  impl = model_cfg.get('conv_impl', 'auto')
  dtype = layers.compute_dtype(model_cfg)
  layers.check_conv_impl(impl, dtype)
  nc = blocks.num_classes(model_cfg)
  g = DCGANGenerator(out_shape=(size, size, channels), width=model_cfg.g_width,
                     norm=model_cfg.g_norm, conv_impl=impl, num_classes=nc,
                     dtype=dtype)
  d = DCGANDiscriminator(width=model_cfg.d_width, norm=model_cfg.d_norm,
                         spectral_norm=model_cfg.spectral_norm,
                         sn_steps=model_cfg.sn_steps,
                         packing=model_cfg.packing, conv_impl=impl,
                         num_classes=nc, dtype=dtype)
  return g, d
