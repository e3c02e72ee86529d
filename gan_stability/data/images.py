"""Deterministic, resumable iterator over a uint8 image array (in memory, or
a read-only ``np.memmap`` of which only each batch's rows are read, as for a
folder of images, :mod:`gan_stability.data.folder`).

Order: epoch ``e`` visits the examples in the order
``numpy.random.default_rng([seed, e]).permutation(N)``; global batch ``i`` is
rows ``[j * B, (j + 1) * B)`` of the permutation of epoch ``e``, where
``e, j = divmod(i, N // B)`` and ``B`` is the global batch. A batch never
straddles an epoch boundary: the last ``N % B`` examples of each epoch's
permutation are dropped (they differ from epoch to epoch, so every example is
still seen), and ``epoch_size = N // B`` batches make an epoch (the
``drop_remainder=True`` convention of ``tf.data`` / TFDS pipelines).

Batches are therefore a pure function of ``(seed, index)``: the iterator
position is a single integer, a resumed run sees exactly the batches an
uninterrupted one would, and, as in :mod:`.mixtures`, every process computes
the same global order and keeps rows
``[process_index * n, (process_index + 1) * n)``, ``n = B / process_count``
(each process gathers only its own rows).

Pixels are scaled as ``x / 127.5 - 1``, so 0 -> -1 and 255 -> 1 exactly (the
tanh range of DCGAN generators, Radford et al. 2016). ``pad_to`` pads e.g.
28 x 28 MNIST to the 32 x 32 of DCGAN / CIFAR-style networks with the background
value 0 (-> -1), ``(pad_to - H) // 2`` rows/columns before and the rest after
(2 and 2 for 28 -> 32).
"""

from __future__ import annotations

import numpy as np

from gan_stability.errors import ConfigError


def scale_images(images_uint8: np.ndarray) -> np.ndarray:
  """uint8 pixels -> float32 in [-1, 1] (``x / 127.5 - 1``)."""
  return images_uint8.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def pad_images(images: np.ndarray, pad_to: int) -> np.ndarray:
  """Zero-pads ``[N, H, W, C]`` images to ``[N, pad_to, pad_to, C]``."""
  _, h, w, _ = images.shape
  if pad_to < h or pad_to < w:
    raise ValueError(f'config.data.pad_to={pad_to} is smaller than the '
                     f'images ({h} x {w})')
  if pad_to == h == w:
    return images
  ph, pw = pad_to - h, pad_to - w
  return np.pad(images, ((0, 0), (ph // 2, ph - ph // 2),
                         (pw // 2, pw - pw // 2), (0, 0)))


class ArrayImageIterator:
  """Resumable iterator of (process-local) global batches of an image array.

  Yields ``{'x': float32 [global_batch // process_count, H', W', C]}``
  batches in [-1, 1] (``H' = W' = pad_to`` when padding). See the module
  docstring for the order; ``get_state()`` is ``{'index': i}``, the number of
  global batches drawn so far. With ``labels`` (``[N]`` integers), each batch
  also has ``'label'``: the int32 labels of the same rows. ``what`` names
  the examples in the error of a batch larger than them.

  The image array is referenced, not copied, and never modified.
  """

  def __init__(self, images_uint8: np.ndarray, *, global_batch: int,
               seed: int, process_index: int = 0, process_count: int = 1,
               pad_to: int | None = None, labels: np.ndarray | None = None,
               what: str = 'the data set'):
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8 or images.ndim != 4:
      raise ValueError(f'images must be uint8 [N, H, W, C], got '
                       f'{images.dtype} {images.shape}')
    if labels is not None:
      labels = np.asarray(labels)
      if labels.shape != images.shape[:1] or not np.issubdtype(
          labels.dtype, np.integer):
        raise ValueError(f'labels must be integers [{images.shape[0]}], got '
                         f'{labels.dtype} {labels.shape}')
      labels = labels.astype(np.int32)
    self.labels = labels
    if global_batch <= 0 or global_batch % process_count:
      raise ValueError(f'config.batch_size={global_batch} is not a positive '
                       f'multiple of the process count {process_count}')
    if not 0 <= process_index < process_count:
      raise ValueError(f'process_index={process_index} not in '
                       f'[0, {process_count})')
    num_examples = images.shape[0]
    if global_batch > num_examples:
      raise ConfigError(f'config.batch_size: {global_batch} exceeds the '
                        f'{num_examples} examples of {what}')
    _, h, w, c = images.shape
    if pad_to:
      if pad_to < h or pad_to < w:
        raise ValueError(f'config.data.pad_to={pad_to} is smaller than the '
                         f'images ({h} x {w})')
      h = w = pad_to
    self.images = images
    self.pad_to = pad_to or None
    self.global_batch = global_batch
    self.seed = seed
    self.local_batch = global_batch // process_count
    self.offset = process_index * self.local_batch
    self.index = 0
    self._element_shape = (h, w, c)
    self._perm_epoch = None
    self._perm = None

  @property
  def num_examples(self) -> int:
    return self.images.shape[0]

  @property
  def epoch_size(self) -> int:
    """Global batches per epoch, ``N // global_batch``."""
    return self.num_examples // self.global_batch

  @property
  def element_shape(self) -> tuple[int, ...]:
    return self._element_shape

  def permutation(self, epoch: int) -> np.ndarray:
    """The example order of ``epoch`` (cached for the current epoch)."""
    if self._perm_epoch != epoch:
      self._perm = np.random.default_rng(
          [self.seed, epoch]).permutation(self.num_examples)
      self._perm_epoch = epoch
    return self._perm

  def global_indices(self, index: int) -> np.ndarray:
    """Example indices of global batch ``index`` (all processes' rows)."""
    epoch, j = divmod(index, self.epoch_size)
    start = j * self.global_batch
    return self.permutation(epoch)[start:start + self.global_batch]

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    rows = self.global_indices(self.index)[
        self.offset:self.offset + self.local_batch]
    self.index += 1
    batch = self.images[rows]
    if self.pad_to:
      batch = pad_images(batch, self.pad_to)
    if self.labels is not None:
      return {'x': scale_images(batch), 'label': self.labels[rows]}
    return {'x': scale_images(batch)}

  def get_state(self) -> dict:
    return {'index': int(self.index)}

  def set_state(self, state: dict) -> None:
    index = int(state['index'])
    if index < 0:
      raise ValueError(f'iterator state index must be >= 0, got {index}')
    self.index = index
