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

Mixed precision (``config.model.compute_dtype``, :data:`COMPUTE_DTYPES`,
``docs/mixed_precision.md``): every module of the models takes a ``dtype``
attribute, ``None`` for float32 (no cast is inserted anywhere: the float32
models are exactly those written before the field) or ``jnp.bfloat16``.
Parameters stay float32 (``param_dtype``); a layer casts its input and its
weights to ``dtype`` at use and adds its bias in ``dtype`` (flax's
convention), so activations between layers are ``dtype``. Spectral
normalisation runs its power iteration and ``sigma`` on the float32 weight
and the normalised weight is cast by the layer it wraps; normalisation
layers compute their statistics in float32. Generators return float32
images and discriminators float32 logits (:func:`to_float32`).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_stability import kernels

SPECTRAL_STATS = 'spectral_stats'

# config.model.compute_dtype -> the ``dtype`` attribute of the modules
# (None: float32, with no casts at all).
COMPUTE_DTYPES = {'float32': None, 'bfloat16': jnp.bfloat16}
# The conv_impl values that may run in a low-precision compute dtype: the
# custom-VJP forms of gan_stability.kernels are XLA:CPU float32 kernels
# (tuned and checked in float32; in bfloat16 Winograd's tile transforms
# round to bfloat16 too, ~3x the error of XLA's bfloat16 conv), so 'auto'
# means XLA's own convolutions ('native') then.
LOW_PRECISION_CONV_IMPLS = ('auto', 'native')

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


def compute_dtype(model_cfg) -> Any:
  """The modules' ``dtype`` for ``config.model.compute_dtype`` (``None`` for
  float32 and for configs without the field).

  Raises ValueError naming the field for a value outside
  :data:`COMPUTE_DTYPES`.
  """
  name = model_cfg.get('compute_dtype', 'float32')
  if name not in COMPUTE_DTYPES:
    raise ValueError(f'config.model.compute_dtype: {name!r}; allowed: '
                     f'{list(COMPUTE_DTYPES)}')
  return COMPUTE_DTYPES[name]


def check_conv_impl(conv_impl: str, dtype: Any) -> None:
  """Raises ValueError naming ``config.model.conv_impl`` and
  ``config.model.compute_dtype`` when ``conv_impl`` forces the custom
  float32 CPU convolutions (``'fast'``, ``'fast_matmul'``) in a low-precision
  ``dtype``; ``'auto'`` steps aside to XLA's convolutions there
  (:func:`conv_impl_for`)."""
  if dtype is not None and conv_impl not in LOW_PRECISION_CONV_IMPLS:
    name = jnp.dtype(dtype).name
    raise ValueError(
        f'config.model.conv_impl: {conv_impl!r} forces the custom XLA:CPU '
        'float32 convolutions of gan_stability.kernels, which are not used '
        f'with config.model.compute_dtype={name!r}; allowed with {name}: '
        f'{list(LOW_PRECISION_CONV_IMPLS)} (both: XLA\'s convolutions in '
        f'{name})')


def conv_impl_for(conv_impl: str, dtype: Any) -> str:
  """The convolution implementation a layer of compute ``dtype`` uses:
  ``conv_impl`` itself in float32 (``dtype`` None), XLA's (``'native'``)
  otherwise (:func:`check_conv_impl`)."""
  if dtype is None:
    return conv_impl
  check_conv_impl(conv_impl, dtype)
  return 'native'


def cast(x: jax.Array, dtype: Any) -> jax.Array:
  """``x`` in ``dtype``; ``x`` itself when ``dtype`` is None (float32)."""
  return x if dtype is None else x.astype(dtype)


def to_float32(x: jax.Array, dtype: Any) -> jax.Array:
  """A model's output (G's image before its tanh, D's logits) in float32
  when the model computes in ``dtype``; ``x`` itself when ``dtype`` is None
  (float32 models insert no op)."""
  return x if dtype is None else x.astype(jnp.float32)


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
  subclasses choose how the kernel is applied in ``_apply``.

  ``dtype`` (None: float32) is the compute dtype: the input, the kernel and
  the bias are cast to it at use (the parameters stay float32), and a
  low-precision layer runs XLA's convolution (:func:`conv_impl_for`)."""
  features: int
  kernel_size: tuple[int, int] = (3, 3)
  strides: tuple[int, int] = (1, 1)
  padding: str = 'SAME'
  use_bias: bool = True
  impl: str = 'auto'
  kernel_init: Any = nn.initializers.lecun_normal()
  bias_init: Any = nn.initializers.zeros_init()
  dtype: Any = None

  def _apply(self, x, kernel):
    raise NotImplementedError

  @property
  def _impl(self) -> str:
    return conv_impl_for(self.impl, self.dtype)

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    kernel = self.param('kernel', self.kernel_init,
                        tuple(self.kernel_size) + (x.shape[-1], self.features))
    y = self._apply(cast(x, self.dtype), cast(kernel, self.dtype))
    if self.use_bias:
      y = y + cast(self.param('bias', self.bias_init, (self.features,)),
                   self.dtype)
    return y


class ConvTranspose(_ConvBase):
  """Drop-in for ``nn.ConvTranspose`` (same ``kernel``/``bias`` parameters),
  computed by :func:`gan_stability.kernels.conv_transpose` with ``impl``."""
  kernel_size: tuple[int, int] = (4, 4)
  strides: tuple[int, int] = (2, 2)

  def _apply(self, x, kernel):
    return kernels.conv_transpose(x, kernel, strides=self.strides,
                                  padding=self.padding, impl=self._impl)


class Conv(_ConvBase):
  """Drop-in for ``nn.Conv`` (same ``kernel``/``bias`` parameters), computed
  by :func:`gan_stability.kernels.conv` with ``impl``."""

  def _apply(self, x, kernel):
    return kernels.conv(x, kernel, strides=self.strides, padding=self.padding,
                        impl=self._impl)
