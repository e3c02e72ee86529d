"""Data sources behind one interface.

Every training iterator yields process-local batches (the process's rows of
the global batch) as dicts of numpy arrays: ``{'x': [n, ...]}`` (2-D points,
or images ``[n, H, W, C]`` float32 in [-1, 1]), plus ``'label'`` (int32
``[n]``) for a class-conditional model (``config.model.num_classes > 0``:
the IDX label files, the TFDS ``label`` feature, or for Stacked MNIST the
mode ``100 d_R + 10 d_G + d_B``; same position, same images). Iterators
have ``element_shape`` (of one ``'x'`` row), ``get_state()`` and
``set_state(state)``, so their position is saved with the checkpoint and a
resumed run sees the same batches.

:data:`DATASETS` is the registry of dataset names (the config schema reads
its allowed values, kinds and class counts from it).

``config.dataset``:
  * ``ring`` / ``grid`` - 2-D Gaussian mixtures (:mod:`.mixtures`);
  * ``mnist`` / ``fashion_mnist`` - IDX files in ``config.data.dir``
    (``data.source='idx'``) or TFDS (``data.source='tfds'``);
  * ``stacked_mnist`` - 1,000-mode Stacked MNIST built from the MNIST source;
  * ``tfds:<name>`` - any TFDS image dataset via ``tfds.data_source``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

from gan_stability.data import idx, images, mixtures, stacked_mnist, tfds_source
from gan_stability.errors import ConfigError

STACKED_MNIST_SEED = 0  # the dataset is the same for every training seed


@dataclasses.dataclass(frozen=True)
class Dataset:
  """What the rest of the library needs to know of a dataset name.

  Attributes:
    kind: ``'mixture'`` (2-D points, the MLP models) or ``'image'``.
    num_classes: the classes of its labels (0: none, or not known before
      loading; a ``'tfds:<name>'`` dataset's labels are checked against
      ``model.num_classes`` when they are loaded).
    channels: image channels when known (1: greyscale digits, which the
      project's MNIST classifier reads).
  """
  kind: str
  num_classes: int = 0
  channels: int | None = None


DATASETS: dict[str, Dataset] = {
    'ring': Dataset('mixture'),
    'grid': Dataset('mixture'),
    'mnist': Dataset('image', 10, 1),
    'fashion_mnist': Dataset('image', 10, 1),
    # 1,000 modes: the digit triples 100 d_R + 10 d_G + d_B.
    'stacked_mnist': Dataset('image', 1000, 3),
}
TFDS_PREFIX = 'tfds:'
# Classes of TFDS datasets the conditional configs use.
TFDS_CLASSES = {'cifar10': 10, 'mnist': 10, 'fashion_mnist': 10}
SOURCES = ('idx', 'tfds')  # config.data.source of the image datasets
ALLOWED = f"one of {list(DATASETS)} or '{TFDS_PREFIX}<name>'"


def dataset_info(name: str) -> Dataset | None:
  """The :class:`Dataset` of ``config.dataset`` (any ``'tfds:<name>'`` is an
  image dataset), or None for an unknown name."""
  if name in DATASETS:
    return DATASETS[name]
  if isinstance(name, str) and name.startswith(TFDS_PREFIX) and len(
      name) > len(TFDS_PREFIX):
    return Dataset('image', TFDS_CLASSES.get(name[len(TFDS_PREFIX):], 0))
  return None


def kind(name: str) -> str:
  """``'mixture'`` or ``'image'`` (raises ConfigError for unknown names)."""
  info = dataset_info(name)
  if info is None:
    raise ConfigError(f'config.dataset: {name!r} is not allowed; allowed: '
                      f'{ALLOWED}')
  return info.kind


@functools.lru_cache(maxsize=4)
def _load_dataset(dataset: str, source: str, directory: str, split: str,
                  stacked_num_examples: int, download: bool
                  ) -> tuple[np.ndarray, np.ndarray | None]:
  """uint8 ``[N, H, W, C]`` images and int64 ``[N]`` labels (None for a TFDS
  dataset without a ``label`` feature) of an image dataset (cached per
  process)."""
  if dataset.startswith(TFDS_PREFIX):
    return tfds_source.load_tfds_images(dataset[len(TFDS_PREFIX):], split,
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


def load_split(config, split: str, num: int | None = None, *,
               pad: bool = True) -> np.ndarray:
  """The first ``num`` images (all with None) of ``split`` of the config's
  data set, padded to ``data.pad_to`` like the training images when
  ``pad``: the real side of the evaluation metrics."""
  c = config.copy_and_resolve_references()
  c.data.split = split
  out = load_images(c)[:num]
  if pad and c.data.pad_to:
    out = images.pad_images(out, c.data.pad_to)
  return out


def load_labels(config) -> np.ndarray:
  """int32 ``[N]`` labels of the config's images, checked against
  ``config.model.num_classes``.

  Raises:
    ConfigError: the dataset has no labels, or labels outside
      ``[0, num_classes)``.
  """
  labels = _load(config)[1]
  n = config.model.get('num_classes', 0)
  if labels is None:
    raise ConfigError(
        f'config.model.num_classes: {n} asks for a class-conditional model '
        f'but dataset {config.dataset!r} has no labels')
  if labels.size and (labels.min() < 0 or labels.max() >= n):
    raise ConfigError(
        f'config.model.num_classes: {n}, but dataset {config.dataset!r} has '
        f'labels in [{labels.min()}, {labels.max()}]')
  return labels.astype(np.int32)


def make_iterator(config, *, seed: int):
  """The training iterator for ``config.dataset`` (global batch
  ``config.batch_size``), yielding dict batches (module docstring)."""
  if kind(config.dataset) == 'mixture':
    return mixtures.MixtureIterator(
        mixtures.from_config(config), global_batch=config.batch_size,
        seed=seed, process_index=jax.process_index(),
        process_count=jax.process_count())
  labels = load_labels(config) if config.model.get('num_classes', 0) else None
  return images.ArrayImageIterator(
      load_images(config), labels=labels, global_batch=config.batch_size,
      seed=seed, process_index=jax.process_index(),
      process_count=jax.process_count(), pad_to=config.data.pad_to or None)
