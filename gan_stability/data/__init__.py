"""Data sources. Every source is an iterator of process-local numpy batches
with ``element_shape``, ``get_state()`` and ``set_state(state)`` so that its
position is saved with the checkpoint."""

from __future__ import annotations

import jax

from gan_stability.data import mixtures

DATASETS = ('ring', 'grid')


def make_iterator(config, *, seed: int):
  """The training iterator for ``config.dataset`` (global batch ``config.batch_size``)."""
  if config.dataset in ('ring', 'grid'):
    return mixtures.MixtureIterator(
        mixtures.from_config(config), global_batch=config.batch_size,
        seed=seed, process_index=jax.process_index(),
        process_count=jax.process_count())
  raise ValueError(f'config.dataset: unknown dataset {config.dataset!r}; '
                   f'allowed: {list(DATASETS)}')
