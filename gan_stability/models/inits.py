"""Weight initialisers of the models.

Each draws a flat vector and reshapes it: the same distributions as flax's
``normal`` / ``variance_scaling``, but XLA compiles the flat
partitionable-threefry draw much faster than one with a 4-D conv shape.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def _fans(shape) -> tuple[float, float]:
  receptive = math.prod(shape[:-2]) if len(shape) > 2 else 1
  return receptive * shape[-2], receptive * shape[-1]


def normal_init(stddev: float):
  """``N(0, stddev^2)`` entries (any shape)."""
  def init(key, shape, dtype=jnp.float32):
    flat = jax.random.normal(key, (math.prod(shape),), dtype)
    return (stddev * flat).reshape(shape)
  return init


def glorot_uniform(gain: float = 1.0):
  """``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot &
  Bengio 2010; Chainer's ``GlorotUniform(scale=gain)``), fans of a
  ``[..., in, out]`` kernel as in :func:`flax.linen.initializers.variance_scaling`."""
  def init(key, shape, dtype=jnp.float32):
    fan_in, fan_out = _fans(shape)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    flat = jax.random.uniform(key, (math.prod(shape),), dtype, -limit, limit)
    return flat.reshape(shape)
  return init
