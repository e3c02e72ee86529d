"""The VAE baseline's networks: the GAN architectures, reused.

The decoder *is* the DCGAN generator (:class:`gan_stability.models.dcgan.
DCGANGenerator`, same layers, widths, batch norm and class embedding), read
before its tanh (``tanh_output=False``; :mod:`gan_stability.elbo`). The
encoder is the DCGAN discriminator's convolutional body (stride-2 4x4 convs
of widths ``w, 2w, ...``, LeakyReLU(0.2), weights N(0, 0.02)) with two linear
heads instead of the logit: the mean and the log-variance of
``q(z | x) = N(mean, diag exp(log_var))`` (Kingma & Welling 2014).

Class-conditional VAE (``num_classes > 0``; Sohn et al. 2015): the decoder
takes the label exactly as the conditional generator does (a learned
embedding concatenated to ``z``); the encoder concatenates a learned label
embedding ``E[y] in R^{z_dim}`` to its flattened conv features before the
heads.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import blocks, conditional, dcgan, layers, norms


class ConvEncoder(nn.Module):
  """``E(x, *, labels=None) -> (mean, log_var)``, each ``[B, z_dim]``."""
  z_dim: int = 100
  width: int = 64
  conv_impl: str = 'auto'
  num_classes: int = 0

  @nn.compact
  def __call__(self, x: jax.Array, *, labels: jax.Array | None = None
               ) -> tuple[jax.Array, jax.Array]:
    conditional.check_labels(labels, num_classes=self.num_classes,
                             who='the encoder')
    _, n_down = dcgan.layout(x.shape[1])
    h = x
    for i in range(n_down):
      h = layers.Conv(self.width * 2 ** i, (4, 4), (2, 2), 'SAME',
                      impl=self.conv_impl, kernel_init=dcgan.INIT,
                      name=f'conv_{i}')(h)
      h = nn.leaky_relu(h, negative_slope=0.2)
    h = h.reshape(h.shape[0], -1)
    if self.num_classes:
      e = nn.Embed(self.num_classes, self.z_dim,
                   embedding_init=conditional.G_EMBED_INIT,
                   name='class_embed')(labels)
      h = jnp.concatenate([h, e], axis=-1)
    mean = nn.Dense(self.z_dim, kernel_init=dcgan.INIT, name='mean')(h)
    log_var = nn.Dense(self.z_dim, kernel_init=dcgan.INIT, name='log_var')(h)
    return mean, log_var


def build(model_cfg, data_shape) -> tuple[dcgan.DCGANGenerator, ConvEncoder]:
  """``(decoder, encoder)`` for a VAE ``config.model`` and ``(H, W, C)``.

  Reads ``name`` (``'dcgan'``), ``z_dim``, ``g_width`` (decoder), ``e_width``
  (encoder), ``g_norm``, ``conv_impl``, ``num_classes``.
  """
  if model_cfg.name != 'dcgan':
    raise ValueError(f'config.model.name: the VAE uses the DCGAN networks; '
                     f"allowed: ['dcgan'], got {model_cfg.name!r}")
  size, channels = blocks.square_resolution(
      model_cfg.name, data_shape,
      lambda s: s == 28 or (s >= 16 and s & (s - 1) == 0), dcgan.SUPPORTED)
  norms.check_norm('g_norm', model_cfg.g_norm, ('batch', 'none'))
  impl = model_cfg.get('conv_impl', 'auto')
  nc = int(model_cfg.get('num_classes', 0))
  decoder = dcgan.DCGANGenerator(
      out_shape=(size, size, channels), width=model_cfg.g_width,
      norm=model_cfg.g_norm, conv_impl=impl, num_classes=nc,
      tanh_output=False)
  encoder = ConvEncoder(z_dim=model_cfg.z_dim, width=model_cfg.e_width,
                        conv_impl=impl, num_classes=nc)
  return decoder, encoder
