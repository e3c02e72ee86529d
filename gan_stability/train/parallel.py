"""Device mesh, shardings and global-batch assembly for data parallelism.

Parameters and optimiser state are replicated (``P()``); batches are split
along their batch axis over the mesh axis ``'data'``. The same code runs on
one host or many: after ``jax.distributed.initialize()`` ``jax.devices()``
lists every process's devices, each process feeds its slice of the global
batch, and :func:`global_batch` assembles the global array.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

DATA_AXIS = 'data'


def make_mesh(num_devices: int = 0) -> jax.sharding.Mesh:
  """A 1-D ``'data'`` mesh over the first ``num_devices`` devices (0: all)."""
  devices = jax.devices()
  if num_devices:
    if num_devices > len(devices):
      raise ValueError(f'config.num_devices: {num_devices} requested, '
                       f'{len(devices)} available')
    if jax.process_count() > 1 and num_devices != len(devices):
      raise ValueError('config.num_devices: must be 0 (all devices) in a '
                       'multi-process run')
    devices = devices[:num_devices]
  return jax.make_mesh((len(devices),), (DATA_AXIS,),
                       axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices)


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh, batch_axis: int) -> NamedSharding:
  """Sharding that splits axis ``batch_axis`` over the ``'data'`` mesh axis."""
  return NamedSharding(mesh, P(*([None] * batch_axis), DATA_AXIS))


def global_batch(local: np.ndarray, sharding: NamedSharding,
                 batch_axis: int) -> jax.Array:
  """The global array from this process's slice of the batch."""
  shape = list(local.shape)
  shape[batch_axis] *= jax.process_count()
  return jax.make_array_from_process_local_data(sharding, local, tuple(shape))
