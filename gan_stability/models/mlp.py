"""Multilayer perceptrons for low-dimensional data (the 2-D mixtures).

Defaults follow common 2-D GAN benchmarks at a CPU-friendly size. The
architecture of the VEEGAN / PacGAN 2-D experiments (Srivastava et al. 2017;
Lin et al. 2018, Appendix: G with four hidden layers of 400 ReLU units and
batch normalisation, D with three hidden layers of 200 maxout units of 5
pieces) is ``MLPGenerator(hidden=400, num_layers=4, norm='batch')`` and
``MLPDiscriminator(hidden=200, num_layers=3, maxout=5)``
(``experiments/reproduce/mixtures.py``).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability.models import layers, norms


class MLPGenerator(nn.Module):
  """``z -> x``: ``layers`` hidden Dense layers of width ``hidden``, then linear.

  ``norm='batch'`` puts batch normalisation (Ioffe & Szegedy 2015; statistics
  in ``batch_stats``, running averages when ``train`` is False) between each
  hidden Dense layer and its activation. ``dtype`` is the compute dtype of
  the Dense layers (None: float32; :mod:`gan_stability.models.layers`); the
  output is float32.
  """
  out_dim: int = 2
  hidden: int = 128
  num_layers: int = 3
  activation: str = 'relu'
  norm: str = 'none'
  dtype: Any = None

  @nn.compact
  def __call__(self, z: jax.Array, *, train: bool = False) -> jax.Array:
    norms.check_norm('g_norm', self.norm, ('none', 'batch'))
    act = layers.get_activation(self.activation)
    h = z
    for i in range(self.num_layers):
      h = nn.Dense(self.hidden, use_bias=self.norm == 'none',
                   dtype=self.dtype, name=f'dense_{i}')(h)
      h = act(norms.norm_layer(self.norm, train=train, name=f'bn_{i}',
                               dtype=self.dtype)(h))
    return layers.to_float32(
        nn.Dense(self.out_dim, dtype=self.dtype, name='out')(h), self.dtype)


def maxout(h: jax.Array, pieces: int) -> jax.Array:
  """Maxout units (Goodfellow et al. 2013): ``[..., k * pieces] -> [..., k]``,
  the maximum over each unit's ``pieces`` consecutive linear features."""
  if h.shape[-1] % pieces:
    raise ValueError(f'maxout: {h.shape[-1]} features are not a multiple of '
                     f'{pieces} pieces')
  return h.reshape(h.shape[:-1] + (h.shape[-1] // pieces, pieces)).max(-1)


class MLPDiscriminator(nn.Module):
  """``x -> logit``: ``layers`` hidden Dense layers, then a scalar output.

  ``packing`` > 1 makes it a PacGAN discriminator (Lin et al. 2018): it sees
  ``packing`` samples concatenated and emits one logit per pack, so the
  batch must be a multiple of ``packing``. ``maxout`` > 1 makes every hidden
  layer ``hidden`` maxout units of ``maxout`` pieces (a Dense layer of
  ``hidden * maxout`` features, then :func:`maxout`) instead of Dense +
  ``activation``. ``dtype`` is the compute dtype of the Dense layers (None:
  float32); the logits are float32.
  """
  hidden: int = 128
  num_layers: int = 3
  activation: str = 'leaky_relu'
  spectral_norm: bool = False
  sn_steps: int = 1
  packing: int = 1
  maxout: int = 1
  dtype: Any = None

  @nn.compact
  def __call__(self, x: jax.Array, *, update_stats: bool = False,
               train: bool = False) -> jax.Array:
    del train
    act = layers.get_activation(self.activation)
    h = x.reshape(x.shape[0] // self.packing, -1)
    wrap = lambda layer: layers.SNWrap(layer, self.spectral_norm, self.sn_steps)
    for i in range(self.num_layers):
      h = wrap(nn.Dense(self.hidden * self.maxout, dtype=self.dtype,
                        name=f'dense_{i}'))(h, update_stats=update_stats)
      h = maxout(h, self.maxout) if self.maxout > 1 else act(h)
    out = wrap(nn.Dense(1, dtype=self.dtype, name='out'))(
        h, update_stats=update_stats)
    return layers.to_float32(jnp.squeeze(out, axis=-1), self.dtype)


def build(model_cfg, data_shape) -> tuple[MLPGenerator, MLPDiscriminator]:
  """``(generator, discriminator)`` for ``config.model`` and vector data of
  shape ``(D,)``.

  Reads ``g_hidden, g_layers, g_activation, d_hidden, d_layers,
  d_activation, spectral_norm, sn_steps, packing`` and, if present,
  ``g_norm``, ``d_maxout`` and ``compute_dtype``.
  """
  if len(data_shape) != 1:
    raise ValueError(
        f'config.model.name: "mlp" needs vector data, got shape {data_shape}')
  dtype = layers.compute_dtype(model_cfg)
  g = MLPGenerator(out_dim=data_shape[0], hidden=model_cfg.g_hidden,
                   num_layers=model_cfg.g_layers,
                   activation=model_cfg.g_activation,
                   norm=model_cfg.get('g_norm', 'none'), dtype=dtype)
  d = MLPDiscriminator(hidden=model_cfg.d_hidden,
                       num_layers=model_cfg.d_layers,
                       activation=model_cfg.d_activation,
                       spectral_norm=model_cfg.spectral_norm,
                       sn_steps=model_cfg.sn_steps,
                       packing=model_cfg.packing,
                       maxout=model_cfg.get('d_maxout', 1), dtype=dtype)
  return g, d
