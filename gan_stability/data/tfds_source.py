"""Image datasets through ``tfds.data_source`` (random access, no TensorFlow).

``tfds.data_source(name, split=..., data_dir=...)`` (TFDS >= 4.9) returns an
indexable source over a prepared dataset in the ArrayRecord format; examples
are decoded with numpy / PIL / OpenCV, so reading needs no TensorFlow.
(*Preparing* a dataset, i.e. the download on first use, does run the TFDS
builder, which for most datasets needs TensorFlow; prepare it once on a machine
that has it, with ``file_format='array_record'``, and point ``data_dir``
there.)

:func:`load_tfds_images` reads the whole split into host memory (one uint8
array): fine for MNIST / Fashion-MNIST (47 MB), CIFAR-10 (150 MB); CelebA at
its full 218 x 178 resolution is ~23.6 GB, so slice its split (e.g.
``'train[:50000]'``). ``tensorflow_datasets`` is imported inside the function,
so importing this module is cheap.
"""

from __future__ import annotations

import os

import numpy as np


def load_tfds_images(
    name: str, split: str, *, data_dir: str | os.PathLike | None = None,
    download: bool = True, image_key: str = 'image',
    label_key: str = 'label') -> tuple[np.ndarray, np.ndarray | None]:
  """All images (and labels) of a TFDS split, read into memory.

  Args:
    name: TFDS name, e.g. ``'mnist'``, ``'fashion_mnist'``, ``'cifar10'``,
      ``'celeb_a'``.
    split: TFDS split string (``'train'``, ``'test'``, ``'train[:10%]'``...).
    data_dir: TFDS data directory (``config.data.dir``; None: TFDS default).
    download: passed to ``tfds.data_source``; with True, a dataset that is not
      prepared is downloaded and prepared first (needs network access, and
      TensorFlow for most builders). Offline, pass False to fail at once
      instead of after the download retries.
    image_key: the image feature.
    label_key: the label feature; datasets without it (CelebA) give None.

  Returns:
    ``(images, labels)``: uint8 ``[N, H, W, C]`` (a 2-D image feature gets a
    channel axis) and int64 ``[N]`` or None.

  Raises:
    ValueError: the images are missing, not uint8 or of varying shapes.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = tfds.data_source(name, split=split, data_dir=data_dir,
                            download=download)
  n = len(source)
  if n == 0:
    raise ValueError(f'tfds {name!r} split {split!r} is empty')
  images = None
  labels = None
  # One example at a time: ``source[i]``; ``__getitems__`` is not used since
  # ``tfds.testing.mock_data`` does not support it (TFDS 4.9.10).
  for i in range(n):
    example = source[i]
    if image_key not in example:
      raise ValueError(f'tfds {name!r} has no {image_key!r} feature; '
                       f'features: {sorted(example)}')
    image = np.asarray(example[image_key])
    if image.ndim == 2:
      image = image[..., None]
    if images is None:
      if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f'tfds {name!r}: expected uint8 [H, W, C] images, '
                         f'got {image.dtype} {image.shape}')
      images = np.empty((n,) + image.shape, np.uint8)
      if label_key in example:
        labels = np.empty((n,), np.int64)
    if image.shape != images.shape[1:]:
      raise ValueError(f'tfds {name!r}: example {i} has shape {image.shape}, '
                       f'example 0 {images.shape[1:]}; images of varying '
                       'shapes are not supported')
    images[i] = image
    if labels is not None:
      labels[i] = example[label_key]
  return images, labels
