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
  * ``tfds:<name>`` - any TFDS image dataset via ``tfds.data_source``;
  * ``custom`` - one's own images in ``config.data.dir``: a folder of image
    files (``data.source='folder'``, :mod:`.folder`: class subfolders as
    labels, ``data.image_size``, the decoded array cached on disk and
    memory-mapped) or one ``.npz`` file (``data.source='npz'``,
    :mod:`.npz_source`). Splits: a folder with a ``train/`` subfolder holds
    split ``s`` in ``<dir>/<s>``, else all of it is ``'train'``
    (:func:`.folder.split_folder`); an ``.npz`` holds ``'train'`` under
    ``x`` / ``label`` and split ``s`` under ``x_<s>`` / ``label_<s>``.

``config.data.num_examples = N > 0`` trains an image model on the first
``N`` examples of ``data.split`` (and their labels), whatever the source
(:func:`training_subset`, called by :func:`make_iterator` only; the
evaluation's real statistics, :func:`load_split`, read the whole split).
The MNIST and Fashion-MNIST IDX training files are not in class order, so
the first ``N`` are a fixed, roughly class-balanced random-like subset.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import numpy as np

import hashlib
import os

from gan_stability.data import (folder, idx, images, mixtures, npz_source,
                                stacked_mnist, tfds_source)
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
    # One's own images (data.source folder or npz); classes, channels and
    # size are known when they are read.
    'custom': Dataset('image'),
}
CUSTOM = 'custom'
TFDS_PREFIX = 'tfds:'
# Classes of TFDS datasets the conditional configs use.
TFDS_CLASSES = {'cifar10': 10, 'mnist': 10, 'fashion_mnist': 10}
# config.data.source of the image datasets: the registered ones read 'idx'
# or 'tfds', 'tfds:<name>' reads 'tfds', 'custom' reads CUSTOM_SOURCES.
CUSTOM_SOURCES = ('folder', 'npz')
SOURCES = ('idx', 'tfds') + CUSTOM_SOURCES
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


@dataclasses.dataclass(frozen=True)
class Custom:
  """A ``'custom'`` split as read: what its label errors and its
  evaluation-cache name need besides the arrays.

  Attributes:
    images: uint8 ``[N, H, W, C]`` (a read-only memory map for a folder
      whose cache could be written).
    labels: int64 ``[N]`` or None.
    origin: what the images were read from (a folder, or file and key).
    label_origin: where labels come from, or why there are none.
    classes: the class subfolders of a folder (None for an ``.npz``).
    key: a digest of the split's contents (the folder cache key; for an
      ``.npz``, of its path, size and mtime).
  """
  images: np.ndarray
  labels: np.ndarray | None
  origin: str
  label_origin: str
  classes: tuple[str, ...] | None
  key: str


def _stamp(source: str, directory: str, split: str) -> str:
  """What the per-process cache of :func:`_load_custom` is keyed on besides
  the config: the split's file names, sizes and mtimes, so that a folder or
  file changed since is read again ('' for a missing path, whose error
  :func:`_load_custom` raises)."""
  if source == 'folder':
    path = folder.split_folder(directory, split)
    files = folder.image_files(path, what='config.data.dir')
    return folder.cache_key(path, [os.path.relpath(f, path) for f in files],
                            image_size=0, skip_unreadable=False)
  if source == 'npz' and os.path.isfile(directory):
    st = os.stat(directory)
    return repr((st.st_size, st.st_mtime_ns))
  return ''


@functools.lru_cache(maxsize=4)
def _load_custom(source: str, directory: str, split: str, image_size: int,
                 skip_unreadable: bool, cache_dir: str, stamp: str) -> Custom:
  """Split ``split`` of ``data.dir`` read by ``source`` (cached per process
  while its files' ``stamp`` is unchanged)."""
  del stamp  # only a key of the cache
  if source == 'folder':
    path = folder.split_folder(directory, split)
    d = folder.load_folder(path, image_size=image_size,
                           skip_unreadable=skip_unreadable,
                           cache_dir=cache_dir)
    why = (f'{d.top_file} lies directly in {path} (labels are the '
           'first-level subfolders of data.dir, one per class)')
    return Custom(d.images, d.labels, f'folder {path}',
                  f'the class subfolders of {path}' if d.labels is not None
                  else why, d.classes, d.key)
  if source == 'npz':
    x, labels = npz_source.load_npz(directory, split)
    x_key, label_key = npz_source.keys(split)
    st = os.stat(directory)
    key = hashlib.sha256(repr((os.path.abspath(directory), st.st_size,
                               st.st_mtime_ns, split)).encode()).hexdigest()
    where = f'{directory} key {label_key!r}'
    return Custom(x, labels, f'{directory} key {x_key!r}',
                  where if labels is not None else
                  f'{directory} has no key {label_key!r}', None, key)
  raise ConfigError(f'config.data.source: {source!r} cannot read dataset '
                    f'{CUSTOM!r}; allowed: {list(CUSTOM_SOURCES)}')


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


def custom(config) -> Custom:
  """The ``'custom'`` split ``config.data.split`` of ``config.data.dir``."""
  d = config.data
  return _load_custom(d.source, d.dir, d.split, d.get('image_size', 0),
                      d.get('skip_unreadable', False), d.get('cache_dir', ''),
                      _stamp(d.source, d.dir, d.split))


def _load(config):
  d = config.data
  if config.dataset == CUSTOM:
    c = custom(config)
    return c.images, c.labels
  return _load_dataset(config.dataset, d.source, d.dir, d.split,
                       d.stacked_num_examples, d.download)


def stats_name(config, split: str) -> str:
  """The data-set part of the name the real side's evaluation statistics
  are cached under: ``config.dataset``, and for ``'custom'``
  ``custom_<digest>`` of the split's contents (so that runs on different
  folders sharing an ``eval.cache_dir`` never share statistics)."""
  if config.dataset != CUSTOM:
    return config.dataset
  c = config.copy_and_resolve_references()
  c.data.split = split
  return f'{CUSTOM}_{custom(c).key[:16]}'


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
  n = config.model.get('num_classes', 0)
  if config.dataset == CUSTOM:
    return _custom_labels(custom(config), n)
  labels = _load(config)[1]
  if labels is None:
    raise ConfigError(
        f'config.model.num_classes: {n} asks for a class-conditional model '
        f'but dataset {config.dataset!r} has no labels')
  if labels.size and (labels.min() < 0 or labels.max() >= n):
    raise ConfigError(
        f'config.model.num_classes: {n}, but dataset {config.dataset!r} has '
        f'labels in [{labels.min()}, {labels.max()}]')
  return labels.astype(np.int32)


def _custom_labels(c: Custom, n: int) -> np.ndarray:
  """The labels of a ``'custom'`` split, checked against
  ``model.num_classes=n``."""
  if c.labels is None:
    raise ConfigError(f'config.model.num_classes: {n} asks for a class-'
                      f'conditional model, but {c.label_origin}')
  if c.classes is not None and len(c.classes) != n:
    shown = list(c.classes[:8]) + (['...'] if len(c.classes) > 8 else [])
    raise ConfigError(f'config.model.num_classes: {n}, but {c.label_origin} '
                      f'are {len(c.classes)} classes {shown}')
  if c.labels.size and (c.labels.min() < 0 or c.labels.max() >= n):
    raise ConfigError(f'config.model.num_classes: {n}, but {c.label_origin} '
                      f'holds labels in [{c.labels.min()}, '
                      f'{c.labels.max()}]; expected [0, {n})')
  return c.labels.astype(np.int32)


def make_iterator(config, *, seed: int):
  """The training iterator for ``config.dataset`` (global batch
  ``config.batch_size``), yielding dict batches (module docstring)."""
  if kind(config.dataset) == 'mixture':
    return mixtures.MixtureIterator(
        mixtures.from_config(config), global_batch=config.batch_size,
        seed=seed, process_index=jax.process_index(),
        process_count=jax.process_count())
  x = load_images(config)
  labels = load_labels(config) if config.model.get('num_classes', 0) else None
  x, labels, what = training_subset(config, x, labels)
  return images.ArrayImageIterator(
      x, labels=labels, global_batch=config.batch_size, seed=seed,
      process_index=jax.process_index(), process_count=jax.process_count(),
      pad_to=config.data.pad_to or None, what=what)


def training_subset(config, x: np.ndarray, labels: np.ndarray | None):
  """``(x[:N], labels[:N], what)``: the first ``N = config.data.num_examples``
  examples of the training split (all for 0), the one place the training
  set is subset (evaluation's real side, :func:`load_split`, never is), and
  how the iterator's batch-size error names them.

  Raises:
    ConfigError: ``N`` exceeds the split's examples.
  """
  n = config.data.get('num_examples', 0)
  if not n:
    return x, labels, 'the data set'
  if n > x.shape[0]:
    raise ConfigError(
        f'config.data.num_examples: {n} exceeds the {x.shape[0]} examples of '
        f'split {config.data.split!r} of {config.dataset!r} (0 = all)')
  return (x[:n], None if labels is None else labels[:n],
          f'config.data.num_examples={n} (the first {n} of split '
          f'{config.data.split!r})')
