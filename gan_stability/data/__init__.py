"""Data sources behind one interface.

Every training iterator yields process-local numpy batches (the process's
rows of the global batch; images ``[n, H, W, C]`` float32 in [-1, 1]) and has
``element_shape``, ``get_state()`` and ``set_state(state)``, so its position is
saved with the checkpoint and a resumed run sees the same batches. For a
class-conditional model (``config.model.num_classes > 0``) the image
iterator yields ``{'x': images, 'label': int32 [n]}`` instead (same position,
same images): the IDX label files, the TFDS ``label`` feature, or for Stacked
MNIST the mode ``100 d_R + 10 d_G + d_B``.

``config.dataset``:
  * ``ring`` / ``grid`` - 2-D Gaussian mixtures (:mod:`.mixtures`);
  * ``mnist`` / ``fashion_mnist`` - IDX files in ``config.data.dir``
    (``data.source='idx'``) or TFDS (``data.source='tfds'``);
  * ``stacked_mnist`` - 1,000-mode Stacked MNIST built from the MNIST source;
  * ``tfds:<name>`` - any TFDS image dataset via ``tfds.data_source``.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from gan_stability.data import mixtures

STACKED_MNIST_SEED = 0  # the dataset is the same for every training seed


@functools.lru_cache(maxsize=4)
def _load_dataset(dataset: str, source: str, directory: str, split: str,
                  stacked_num_examples: int, download: bool
                  ) -> tuple[np.ndarray, np.ndarray | None]:
  """uint8 ``[N, H, W, C]`` images and int64 ``[N]`` labels (None for a TFDS
  dataset without a ``label`` feature) of an image dataset (cached per
  process)."""
  from gan_stability.data import idx, stacked_mnist, tfds_source  # pylint: disable=g-import-not-at-top
  if dataset.startswith('tfds:'):
    return tfds_source.load_tfds_images(dataset[len('tfds:'):], split,
                                        data_dir=directory or None,
                                        download=download)
  base = 'mnist' if dataset == 'stacked_mnist' else dataset
  if source == 'idx':
    images, labels = idx.load_idx_dataset(directory, split)
  else:
    images, labels = tfds_source.load_tfds_images(
        base, split, data_dir=directory or None, download=download)
  if dataset == 'stacked_mnist':
    images, labels = stacked_mnist.make_stacked_mnist(
        images, labels, num_examples=stacked_num_examples,
        seed=STACKED_MNIST_SEED)
  return images, labels


def _load(config):
  d = config.data
  return _load_dataset(config.dataset, d.source, d.dir, d.split,
                       d.stacked_num_examples, d.download)


def load_images(config) -> np.ndarray:
  """The config's image array (a missing ``data.dir`` is reported by
  :func:`gan_stability.config.validate` and by the IDX reader)."""
  return _load(config)[0]


def load_labels(config) -> np.ndarray:
  """int32 ``[N]`` labels of the config's images, checked against
  ``config.model.num_classes``.

  Raises:
    ConfigError: the dataset has no labels, or labels outside
      ``[0, num_classes)``.
  """
  from gan_stability import config as config_lib  # pylint: disable=g-import-not-at-top
  labels = _load(config)[1]
  n = config.model.get('num_classes', 0)
  if labels is None:
    raise config_lib.ConfigError(
        f'config.model.num_classes: {n} asks for a class-conditional model '
        f'but dataset {config.dataset!r} has no labels')
  if labels.size and (labels.min() < 0 or labels.max() >= n):
    raise config_lib.ConfigError(
        f'config.model.num_classes: {n}, but dataset {config.dataset!r} has '
        f'labels in [{labels.min()}, {labels.max()}]')
  return labels.astype(np.int32)


def make_iterator(config, *, seed: int):
  """The training iterator for ``config.dataset`` (global batch ``config.batch_size``)."""
  if config.dataset in ('ring', 'grid'):
    return mixtures.MixtureIterator(
        mixtures.from_config(config), global_batch=config.batch_size,
        seed=seed, process_index=jax.process_index(),
        process_count=jax.process_count())
  from gan_stability.data import images  # pylint: disable=g-import-not-at-top
  labels = load_labels(config) if config.model.get('num_classes', 0) else None
  return images.ArrayImageIterator(
      load_images(config), labels=labels, global_batch=config.batch_size,
      seed=seed, process_index=jax.process_index(),
      process_count=jax.process_count(), pad_to=config.data.pad_to or None)
