"""Multilayer perceptrons for low-dimensional data (the 2-D mixtures).

Defaults follow common 2-D GAN benchmarks at a CPU-friendly size; the PacGAN
/ VEEGAN architecture (G: 4x400 ReLU with batch norm, D: 3x200 maxout) can be
approximated through ``hidden``/``layers``.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import layers


class MLPGenerator(nn.Module):
  """``z -> x``: ``layers`` hidden Dense layers of width ``hidden``, then linear."""
  out_dim: int = 2
  hidden: int = 128
  num_layers: int = 3
  activation: str = 'relu'

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    del train  # no batch-dependent layers
    act = layers.get_activation(self.activation)
    h = z
    for i in range(self.num_layers):
      h = act(nn.Dense(self.hidden, name=f'dense_{i}')(h))
    return nn.Dense(self.out_dim, name='out')(h)


class MLPDiscriminator(nn.Module):
  """``x -> logit``: ``layers`` hidden Dense layers, then a scalar output.

  ``packing`` > 1 makes it a PacGAN discriminator (Lin et al. 2018): it sees
  ``packing`` samples concatenated and emits one logit per pack, so the
  batch must be a multiple of ``packing``.
  """
  hidden: int = 128
  num_layers: int = 3
  activation: str = 'leaky_relu'
  spectral_norm: bool = False
  sn_steps: int = 1
  packing: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, *, update_stats: bool = False,
               train: bool = False) -> jax.Array:
    del train
    act = layers.get_activation(self.activation)
    h = x.reshape(x.shape[0] // self.packing, -1)
    wrap = lambda layer: layers.SNWrap(layer, self.spectral_norm, self.sn_steps)
    for i in range(self.num_layers):
      h = act(wrap(nn.Dense(self.hidden, name=f'dense_{i}'))(
          h, update_stats=update_stats))
    out = wrap(nn.Dense(1, name='out'))(h, update_stats=update_stats)
    return jnp.squeeze(out, axis=-1)
