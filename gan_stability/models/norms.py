"""Normalisation layers of the models.

:func:`norm_layer` is the optional normalisation after a layer: ``'batch'``
is :class:`flax.linen.BatchNorm` (statistics in ``batch_stats``, running
averages when ``train`` is False; Ioffe & Szegedy 2015), ``'layer'`` is
layer normalisation over (H, W, C) of each example with a per-channel scale
and offset (Ba et al. 2016, as in the WGAN-GP critics of Gulrajani et al.
2017, which must not mix examples), ``'none'`` is the identity.
:func:`check_norm` validates a config field against the allowed kinds.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax

# Radford et al. 2016 (the DCGAN TensorFlow code) and Miyato et al. 2018 (the
# Chainer code) both use batch-norm running averages with decay 0.9.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5
NORMS = ('none', 'batch', 'layer')


def norm_layer(kind: str, *, train: bool, name: str, dtype: Any = None
               ) -> Callable[[jax.Array], jax.Array]:
  """The normalisation ``kind`` as a callable on ``[B, ..., C]`` features.

  Must be called inside a compact ``__call__`` (it creates a submodule).
  ``dtype`` is the model's compute dtype (None: float32) and the dtype of the
  output; flax computes the mean and variance in float32 whatever the input
  (``force_float32_reductions``), normalises in float32 (the statistics,
  scale and offset are float32) and keeps the ``batch_stats`` running
  averages in float32.
  """
  if kind == 'none':
    return lambda h: h
  if kind == 'batch':
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM,
                        epsilon=BN_EPSILON, dtype=dtype, name=name)
  if kind == 'layer':
    def apply(h):
      axes = tuple(range(1, h.ndim))  # every axis but the batch
      return nn.LayerNorm(reduction_axes=axes, feature_axes=-1,
                          epsilon=BN_EPSILON, dtype=dtype, name=name)(h)
    return apply
  raise ValueError(f'normalisation {kind!r}; allowed: {list(NORMS)}')


def check_norm(field: str, kind: str, allowed=NORMS) -> None:
  """Raises ValueError naming ``config.model.<field>`` unless ``kind`` is in
  ``allowed``."""
  if kind not in allowed:
    raise ValueError(f'config.model.{field}: {kind!r}; allowed: {list(allowed)}')
