"""A folder of image files (PNG / JPEG / BMP / GIF / WebP), read into one
uint8 array.

Files are found recursively and read in sorted path order, so the array
does not depend on the file system's listing order. Modes are converted so
that every image has the same channels: grey images (``L``, ``1``, ``I``,
``I;16``, ``LA``) stay 1-channel when every file is grey, and everything else
(``RGB``, ``RGBA``, palette, ``CMYK``, ...) becomes RGB, alpha dropped; a
folder mixing grey and colour files is read as RGB, grey copied to the three
channels. All images must have the same size.
"""

from __future__ import annotations

import os

import numpy as np

from gan_stability.errors import ConfigError

EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp')
_GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L', 'F')


def image_files(path: str) -> list[str]:
  """The image files under ``path``, recursively, sorted."""
  found = []
  for root, dirs, files in os.walk(path):
    dirs.sort()
    found += [os.path.join(root, f) for f in files
              if f.lower().endswith(EXTENSIONS)]
  return sorted(found)


def _to_uint8(image, path: str) -> np.ndarray:
  """One PIL image -> uint8 ``[H, W]`` (grey) or ``[H, W, 3]``."""
  if image.mode in ('I', 'I;16', 'I;16B', 'I;16L'):  # 16-bit grey
    a = np.asarray(image, np.float64)
    return np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)
  if image.mode == 'F':
    raise ConfigError(f'{path}: float image (mode F); save it as 8-bit')
  if image.mode in ('1', 'L', 'LA'):
    return np.asarray(image.convert('L'), np.uint8)
  return np.asarray(image.convert('RGB'), np.uint8)


def read_folder(path: str, *, what: str = 'folder', limit: int | None = None
                ) -> tuple[np.ndarray, list[str]]:
  """Reads the images under ``path``.

  Args:
    path: a directory.
    what: how errors name the input (e.g. a flag).
    limit: read only the first ``limit`` files (in sorted order).

  Returns:
    ``(images, files)``: uint8 ``[N, H, W, C]`` (C = 1 or 3) and the paths.

  Raises:
    ConfigError: no image files, a file that cannot be decoded (named),
      images of different sizes (two named).
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  files = image_files(path)
  if not files:
    raise ConfigError(f'{what}: no image files ({", ".join(EXTENSIONS)}) '
                      f'under {path}')
  if limit is not None:
    files = files[:limit]
  arrays = []
  for f in files:
    try:
      with Image.open(f) as image:
        image.load()
        arrays.append(_to_uint8(image, f))
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f'{what}: cannot read image {f} ({e})') from e
    if arrays[-1].shape[:2] != arrays[0].shape[:2]:
      raise ConfigError(
          f'{what}: images of different sizes: {files[0]} is '
          f'{arrays[0].shape[1]}x{arrays[0].shape[0]}, {f} is '
          f'{arrays[-1].shape[1]}x{arrays[-1].shape[0]} (resize them to one '
          'size first)')
  colour = any(a.ndim == 3 for a in arrays)
  if colour:
    arrays = [a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1)
              for a in arrays]
  else:
    arrays = [a[..., None] for a in arrays]
  return np.stack(arrays), files
