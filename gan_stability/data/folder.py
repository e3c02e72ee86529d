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


def image_files(path: str, *, what: str = 'folder') -> list[str]:
  """The image files under ``path``, recursively (symbolic links to folders
  followed, each real folder once), sorted. A folder that cannot be listed
  is a ConfigError naming it, not a silent gap."""
  found, seen = [], set()

  def fail(error):
    raise ConfigError(f'{what}: cannot list {error.filename} ({error.strerror})')

  for root, dirs, files in os.walk(path, onerror=fail, followlinks=True):
    real = os.path.realpath(root)
    if real in seen:  # a link back up the tree
      dirs[:] = []
      continue
    seen.add(real)
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
  files = image_files(path, what=what)
  if not files:
    raise ConfigError(f'{what}: no image files ({", ".join(EXTENSIONS)}) '
                      f'under {path}')
  if limit is not None:
    files = files[:limit]
  out = None  # [N, H, W, 3]; the channels are cut to 1 if all are grey
  colour = False
  for i, f in enumerate(files):
    try:
      with Image.open(f) as image:
        image.load()
        a = _to_uint8(image, f)
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f'{what}: cannot read image {f} ({e})') from e
    if out is None:
      out = np.empty((len(files),) + a.shape[:2] + (3,), np.uint8)
    if a.shape[:2] != out.shape[1:3]:
      raise ConfigError(
          f'{what}: images of different sizes: {files[0]} is '
          f'{out.shape[2]}x{out.shape[1]}, {f} is {a.shape[1]}x{a.shape[0]} '
          '(resize them to one size first)')
    colour |= a.ndim == 3
    out[i] = a if a.ndim == 3 else a[..., None]
  return (out if colour else np.ascontiguousarray(out[..., :1])), files
