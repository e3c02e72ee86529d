"""Shared layers: dense/conv factories that optionally apply spectral norm.

Spectral normalisation (Miyato et al., "Spectral Normalization for
Generative Adversarial Networks", ICLR 2018) divides each weight matrix by an
estimate of its largest singular value obtained by power iteration. The
power-iteration vector ``u`` and the last ``sigma`` live in the
``spectral_stats`` collection (never in ``params``); they advance only when the
module is applied with ``update_stats=True`` and
``mutable=['spectral_stats']``, which the train step does in the
discriminator update alone.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

SPECTRAL_STATS = 'spectral_stats'

ACTIVATIONS = {
    'relu': nn.relu,
    'leaky_relu': lambda x: nn.leaky_relu(x, negative_slope=0.2),
    'tanh': jnp.tanh,
    'elu': nn.elu,
}


def get_activation(name: str):
  if name not in ACTIVATIONS:
    raise ValueError(
        f'config.model activation: unknown {name!r}; allowed: {sorted(ACTIVATIONS)}')
  return ACTIVATIONS[name]


class SNWrap(nn.Module):
  """Applies ``layer``, spectrally normalised when ``spectral_norm`` is set.

  ``update_stats`` is forwarded to :class:`flax.linen.SpectralNorm`; without
  spectral norm it is ignored.
  """
  layer: nn.Module
  spectral_norm: bool = False
  sn_steps: int = 1

  @nn.compact
  def __call__(self, x: jax.Array, *, update_stats: bool) -> Any:
    if not self.spectral_norm:
      return self.layer(x)
    return nn.SpectralNorm(
        self.layer, n_steps=self.sn_steps,
        collection_name=SPECTRAL_STATS)(x, update_stats=update_stats)


def spectral_sigmas(spectral_stats) -> dict[str, jax.Array]:
  """Flat ``{layer path: sigma}`` from a ``spectral_stats`` collection."""
  out = {}
  flat = jax.tree_util.tree_flatten_with_path(spectral_stats)[0]
  for path, value in flat:
    name = '/'.join(str(getattr(p, 'key', p)) for p in path)
    if name.endswith('/sigma'):
      out[name[:-len('/sigma')]] = value
  return out
