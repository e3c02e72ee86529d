"""Shared layers: spectral normalisation on demand, activations, and the
convolution modules of the image models.

:class:`Conv` and :class:`ConvTranspose` are drop-ins for
``flax.linen.Conv`` / ``flax.linen.ConvTranspose`` (the same ``kernel`` and
``bias`` parameters and function) whose ``impl`` attribute
(``config.model.conv_impl``) chooses how the convolution and its gradients
are computed (:func:`gan_stability.kernels.conv`,
:func:`gan_stability.kernels.conv_transpose`: exact custom VJPs that are
faster on the CPU, or XLA's own ops).

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

from gan_stability import kernels

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


class _ConvBase(nn.Module):
  """Parameters exactly as ``nn.Conv``/``nn.ConvTranspose`` declare them;
  subclasses choose how the kernel is applied in ``_apply``."""
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  strides: tuple[int, int] = (1, 1)
  padding: str = 'SAME'
  use_bias: bool = True
  impl: str = 'auto'
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()

  def _apply(self, x, kernel):
    raise NotImplementedError

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features))
    y = self._apply(x, kernel)
    if self.use_bias:
      y = y + self.param('bias', self.bias_init, (self.features,))
    return y


class ConvTranspose(_ConvBase):
  """Drop-in for ``nn.ConvTranspose`` (same ``kernel``/``bias`` parameters),
  computed by :func:`gan_stability.kernels.conv_transpose` with ``impl``."""
  kernel_size: tuple[int, int] = (4, 4)
  strides: tuple[int, int] = (2, 2)

  def _apply(self, x, kernel):
    return kernels.conv_transpose(x, kernel, strides=self.strides,
                                  padding=self.padding, impl=self.impl)


class Conv(_ConvBase):
  """Drop-in for ``nn.Conv`` (same ``kernel``/``bias`` parameters), computed
  by :func:`gan_stability.kernels.conv` with ``impl``."""

  def _apply(self, x, kernel):
    return kernels.conv(x, kernel, strides=self.strides, padding=self.padding,
                        impl=self.impl)
