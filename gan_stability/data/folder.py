"""A folder of image files (PNG / JPEG / BMP / GIF / WebP), read into one
uint8 array.

Files are found recursively and read in sorted path order, so the array
does not depend on the file system's listing order. Modes are converted so
that every image has the same channels: grey images (``L``, ``1``, ``I``,
``I;16``, ``LA``) stay 1-channel when every file is grey, and everything else
(``RGB``, ``RGBA``, palette, ``CMYK``, ...) becomes RGB, alpha dropped; a
folder mixing grey and colour files is read as RGB, grey copied to the three
channels (16-bit grey is scaled to 8 bits as ``round(v / 257)``).

Two readers share this:

* :func:`read_folder` (the FID scorer, ``experiments.score``): all images in
  memory, of one size.
* :func:`load_folder` (training on ``data.source='folder'``): optional
  class subfolders as labels, an optional resize to ``S x S`` (the shorter
  side resized to ``S`` with Pillow's antialiased bicubic filter, then the
  centre ``S x S`` crop), unreadable files skipped on request, and the
  decoded array cached on disk as a ``.npy`` file read back memory-mapped,
  so that a data set larger than memory streams from disk
  (:class:`gan_stability.data.images.ArrayImageIterator` gathers only a
  batch's rows) and the files are decoded once.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import uuid

from absl import logging
import numpy as np

from gan_stability.errors import ConfigError

EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif', '.webp')
GREY_MODES = ('1', 'L', 'LA', 'I', 'I;16', 'I;16B', 'I;16L')
SPLIT_LAYOUT = 'train'  # <dir>/train is a folder: one subfolder per split
CACHE_FORMAT = 1  # part of the cache key; raise it when the layout changes
_SHOW = 3  # files named in a message


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


def decode(path: str) -> np.ndarray:
  """One image file -> uint8 ``[H, W]`` (a grey mode) or ``[H, W, 3]``.

  Raises:
    ConfigError: a float image (mode ``F``).
    Exception: whatever Pillow raises for a file it cannot decode.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with Image.open(path) as image:
    image.load()
    return _to_uint8(image, path)


def resize_and_crop(image: np.ndarray, size: int) -> np.ndarray:
  """uint8 ``[H, W]`` or ``[H, W, 3]`` -> ``[size, size(, 3)]``.

  The shorter side is resized to ``size`` and the longer one to
  ``max(size, round(long * size / short))`` with Pillow's bicubic filter
  (antialiased: its support widens by the reduction factor when
  shrinking); an image whose shorter side is already ``size`` is not
  resampled. Then the centre crop: rows ``[t, t + size)`` and columns
  ``[l, l + size)``, ``t = (H' - size) // 2``, ``l = (W' - size) // 2``.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  short = min(h, w)
  if short != size:
    nh = size if h == short else max(size, round(h * size / short))
    nw = size if w == short else max(size, round(w * size / short))
    image = np.asarray(Image.fromarray(image).resize(
        (nw, nh), Image.Resampling.BICUBIC), np.uint8)
    h, w = nh, nw
  t, l = (h - size) // 2, (w - size) // 2
  return image[t:t + size, l:l + size]


def read_folder(path: str, *, what: str = 'folder', limit: int | None = None
                ) -> tuple[np.ndarray, list[str]]:
  """Reads the images under ``path`` into memory.

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
      a = decode(f)
    except ConfigError:
      raise
    except Exception as e:  # pylint: disable=broad-except
      raise ConfigError(f'{what}: cannot read image {f} ({e})') from e
    if out is None:
      out = np.empty((len(files),) + a.shape[:2] + (3,), np.uint8)
    if a.shape[:2] != out.shape[1:3]:
      raise ConfigError(_sizes_differ(what, files[0], out.shape[1:3], f,
                                      a.shape[:2]))
    colour |= a.ndim == 3
    out[i] = a if a.ndim == 3 else a[..., None]
  return (out if colour else np.ascontiguousarray(out[..., :1])), files


def _sizes_differ(what, first, first_hw, other, other_hw) -> str:
  return (f'{what}: images of different sizes: {first} is '
          f'{first_hw[1]}x{first_hw[0]}, {other} is '
          f'{other_hw[1]}x{other_hw[0]} (resize them to one size first)')


# ----------------------------------------------------- training folders ---


def split_folder(path: str, split: str, *, what: str = 'config.data.dir'
                 ) -> str:
  """The folder that holds split ``split`` of the data set in ``path``.

  The rule: when ``<path>/train`` is a folder, ``path`` is in *split
  layout* and split ``s`` is ``<path>/<s>`` (``train/``, ``test/``, ...);
  otherwise the whole of ``path`` is split ``'train'`` and there is no
  other split.

  Raises:
    ConfigError: ``path`` is not a folder; the split's folder is missing.
  """
  if not os.path.isdir(path):
    raise ConfigError(f'{what}: {path!r} is not a folder (data.source='
                      "'folder' reads the image files under it)")
  if os.path.isdir(os.path.join(path, SPLIT_LAYOUT)):
    sub = os.path.join(path, split)
    if os.sep in split or (os.altsep and os.altsep in split) or (
        not os.path.isdir(sub)):
      raise ConfigError(
          f'{what}: split {split!r} needs the folder {sub} ({path} holds '
          f'one subfolder per split, since it has {SPLIT_LAYOUT}/)')
    return sub
  if split != SPLIT_LAYOUT:
    raise ConfigError(
        f'{what}: split {split!r} needs the folder '
        f'{os.path.join(path, split)}; {path} has no {SPLIT_LAYOUT}/ '
        f'subfolder, so all of it is split {SPLIT_LAYOUT!r} (put the splits '
        f'in {os.path.join(path, SPLIT_LAYOUT)}, '
        f'{os.path.join(path, split)}, ...)')
  return path


@dataclasses.dataclass(frozen=True)
class FolderData:
  """What :func:`load_folder` read.

  Attributes:
    images: uint8 ``[N, H, W, C]``: a read-only memory map of the cache
      file, or an in-memory array when the cache could not be written.
    labels: int64 ``[N]`` class indices (the position of the file's
      first-level subfolder in ``classes``), or None when some file lies
      directly in the folder.
    classes: the names of the first-level subfolders holding images,
      sorted (as numbers when every name is one, so that the folders
      ``0/ ... K-1/`` that ``experiments.sample`` writes are classes
      0..K-1); empty when ``labels`` is None.
    files: the paths of the images read, relative to the folder (sorted).
    modes: ``{PIL mode: number of files}`` of the files read.
    skipped: the relative paths of unreadable files skipped.
    top_file: a file directly in the folder (why ``labels`` is None).
    cache: the cache file read or written ('' when none).
    key: :func:`cache_key` of the folder (a digest of its contents).
  """
  images: np.ndarray
  labels: np.ndarray | None
  classes: tuple[str, ...]
  files: tuple[str, ...]
  modes: dict[str, int]
  skipped: tuple[str, ...] = ()
  top_file: str = ''
  cache: str = ''
  key: str = ''


def default_cache_dir() -> str:
  """``$XDG_CACHE_HOME/gan_stability/folders``, or
  ``~/.cache/gan_stability/folders`` (``data.cache_dir=''``)."""
  root = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(root, 'gan_stability', 'folders')


def cache_key(path: str, relative: list[str], *, image_size: int,
              skip_unreadable: bool) -> str:
  """sha256 (hex) of everything the decoded array depends on: the folder's
  absolute path, every file's relative path, size and ``st_mtime_ns``,
  ``image_size``, ``skip_unreadable`` and :data:`CACHE_FORMAT`. A file
  added, removed, renamed or rewritten gives a new key."""
  h = hashlib.sha256()
  h.update(json.dumps([CACHE_FORMAT, os.path.abspath(path), image_size,
                       bool(skip_unreadable)]).encode())
  for rel in relative:
    st = os.stat(os.path.join(path, rel))
    h.update(json.dumps([rel, st.st_size, st.st_mtime_ns]).encode())
  return h.hexdigest()


def _labels(relative: list[str]) -> tuple[np.ndarray | None, tuple, str]:
  """``(labels, classes, top_file)`` from the first-level subfolders."""
  parts = [r.split(os.sep, 1) for r in relative]
  top = [r for r, p in zip(relative, parts) if len(p) == 1]
  if top:
    return None, (), top[0]
  names = {p[0] for p in parts}
  if all(n.isdigit() for n in names):  # 0/ 1/ ... 10/: in numeric order
    classes = tuple(sorted(names, key=lambda n: (int(n), n)))
  else:
    classes = tuple(sorted(names))
  index = {c: i for i, c in enumerate(classes)}
  return np.array([index[p[0]] for p in parts], np.int64), classes, ''


class _CacheUnwritable(Exception):
  """The cache file could not be written (wraps the OSError)."""


class _CacheWriter:
  """Writes a ``.npy`` of uint8 ``[n, H, W, C]`` row by row with plain file
  writes to a temporary name (a full disk is an OSError here; writing
  through a memory map would be a SIGBUS), and renames it into place."""

  def __init__(self, path: str, shape: tuple[int, ...]):
    self.path = path
    self.tmp = f'{path}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
    self.shape = shape
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      self.f = open(self.tmp, 'wb')
      np.lib.format.write_array_header_1_0(
          self.f, {'descr': np.dtype(np.uint8).str, 'fortran_order': False,
                   'shape': shape})
      self.start = self.f.tell()
    except OSError as e:
      self.abort()
      raise _CacheUnwritable(e) from e

  def write(self, i: int, row: np.ndarray) -> None:
    try:
      self.f.write(np.ascontiguousarray(row).tobytes())
    except OSError as e:
      self.abort()
      raise _CacheUnwritable(e) from e
    del i  # rows arrive in order

  def commit(self, meta: dict) -> None:
    """Pads to the declared rows, writes the sidecar, renames both in."""
    try:
      self.f.truncate(self.start + int(np.prod(self.shape)))
      self.f.flush()
      os.fsync(self.f.fileno())
      self.f.close()
      side = self.path[:-len('.npy')] + '.json'
      tmp = f'{side}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}'
      with open(tmp, 'w') as f:
        json.dump(meta, f)
      os.replace(tmp, side)
      os.replace(self.tmp, self.path)  # last: the .npy marks the entry done
    except OSError as e:
      self.abort()
      raise _CacheUnwritable(e) from e

  def abort(self) -> None:
    f = getattr(self, 'f', None)
    if f is not None and not f.closed:
      f.close()
    try:
      os.remove(self.tmp)
    except OSError:
      pass


class _MemoryWriter:
  """The same interface, into an in-memory array."""

  def __init__(self, shape: tuple[int, ...]):
    self.out = np.empty(shape, np.uint8)

  def write(self, i: int, row: np.ndarray) -> None:
    self.out[i] = row


def _read_cache(npy: str) -> tuple[np.ndarray, dict] | None:
  """The cached array and its sidecar, or None (absent or unreadable)."""
  side = npy[:-len('.npy')] + '.json'
  if not (os.path.exists(npy) and os.path.exists(side)):
    return None
  try:
    with open(side) as f:
      meta = json.load(f)
    images = np.load(npy, mmap_mode='r')
    n, c = int(meta['num']), int(meta['channels'])
    if images.dtype != np.uint8 or images.ndim != 4 or not (
        0 < n <= len(images)):
      return None
    return images[:n, ..., :c], meta
  except (OSError, ValueError, KeyError, TypeError) as e:
    logging.warning('folder cache %s is unreadable (%s); decoding again',
                    npy, e)
    return None


def _from_meta(images, meta: dict, cache: str, key: str) -> FolderData:
  labels = meta['labels']
  return FolderData(
      images=images,
      labels=None if labels is None else np.asarray(labels, np.int64),
      classes=tuple(meta['classes']), files=tuple(meta['files']),
      modes=dict(meta['modes']), skipped=tuple(meta['skipped']),
      top_file=meta['top_file'], cache=cache, key=key)


def load_folder(path: str, *, image_size: int = 0,
                skip_unreadable: bool = False, cache_dir: str = '',
                what: str = 'config.data.dir') -> FolderData:
  """The images under ``path`` (recursively, sorted paths) as one array,
  decoded once and cached.

  Labels: the first-level subfolders of ``path`` that hold images (sorted
  names; numerically when all are numbers) are classes 0..K-1 and every
  file below ``<path>/<class>/`` has that label; a file directly in
  ``path`` leaves the images unlabelled (``labels=None``).

  Sizes: ``image_size=0`` keeps the files' size, which must be the same for
  all; ``image_size=S > 0`` gives ``S x S`` (:func:`resize_and_crop`).
  Channels: 1 when every file read is grey, else 3 (module docstring). One
  log line says what was converted (files per original mode).

  Cache: ``<cache_dir>/<key>.npy`` (``key``: :func:`cache_key`; ``cache_dir``
  '' = :func:`default_cache_dir`) with a JSON sidecar ``<key>.json``
  (labels, class names, files, mode counts, skipped files). It is written to
  a temporary name and renamed into place, so processes that decode the
  same folder at once (one per host) each rename a whole file and a reader
  never sees a partial one. The array is read back with
  ``np.load(mmap_mode='r')``. When the cache cannot be written (read-only,
  full disk) the images are decoded into memory and a warning is logged.

  Args:
    path: the folder.
    image_size: 0 or the side ``S``.
    skip_unreadable: skip files Pillow cannot decode (one warning naming how
      many and the first few) instead of failing.
    cache_dir: where the decoded arrays are kept.
    what: how errors name the folder.

  Raises:
    ConfigError: no image files; a file that cannot be decoded (without
      ``skip_unreadable``; named); images of different sizes with
      ``image_size=0`` (two named); no readable files.
  """
  from PIL import Image  # pylint: disable=g-import-not-at-top
  files = image_files(path, what=what)
  if not files:
    raise ConfigError(f'{what}: no image files ({", ".join(EXTENSIONS)}) '
                      f'under {path}')
  relative = [os.path.relpath(f, path) for f in files]
  key = cache_key(path, relative, image_size=image_size,
                  skip_unreadable=skip_unreadable)
  npy = os.path.join(cache_dir or default_cache_dir(), key[:32] + '.npy')
  cached = _read_cache(npy)
  if cached is not None:
    return _report(path, _from_meta(cached[0], cached[1], npy, key), what)

  def unreadable(f, e):
    if not skip_unreadable:
      raise ConfigError(f'{what}: cannot read image {f} ({e}); set '
                        'data.skip_unreadable=True to skip such files') from e

  # Headers only (Pillow reads the size and mode without decoding): the
  # channels and the size, before anything is decoded.
  heads, skipped = [], []
  for f, rel in zip(files, relative):
    try:
      with Image.open(f) as image:
        heads.append((f, rel, image.mode, image.size[::-1]))
    except Exception as e:  # pylint: disable=broad-except
      unreadable(f, e)
      skipped.append(rel)
  if not heads:
    raise ConfigError(f'{what}: none of the {len(files)} image files under '
                      f'{path} can be read')
  channels = 1 if all(h[2] in GREY_MODES for h in heads) else 3
  if image_size:
    hw = (image_size, image_size)
  else:
    hw = heads[0][3]
    for f, _, _, size in heads:
      if size != hw:
        raise ConfigError(_sizes_differ(what, heads[0][0], hw, f, size))
  shape = (len(heads),) + tuple(hw) + (channels,)

  def decode_all(writer):
    kept, n = [], 0
    for f, rel, mode, _ in heads:
      try:
        a = decode(f)
      except ConfigError:
        raise
      except Exception as e:  # pylint: disable=broad-except
        unreadable(f, e)
        skipped.append(rel)
        continue
      if image_size:
        a = resize_and_crop(a, image_size)
      if a.ndim == 2:
        a = a[..., None] if channels == 1 else np.repeat(a[..., None], 3, -1)
      if a.shape != shape[1:]:  # the header and the data disagree
        raise ConfigError(_sizes_differ(what, heads[0][0], hw, f,
                                        a.shape[:2]))
      writer.write(n, a)
      kept.append((rel, mode))
      n += 1
    if not kept:
      raise ConfigError(f'{what}: none of the {len(files)} image files '
                        f'under {path} can be read')
    return kept

  skipped_heads = list(skipped)
  images, kept, meta, cache = None, [], {}, ''
  try:
    writer = _CacheWriter(npy, shape)
  except _CacheUnwritable as e:
    writer, error = None, e
  if writer is not None:
    try:
      kept = decode_all(writer)
      meta = _meta(kept, skipped, channels)
      writer.commit(meta)
      images = np.load(npy, mmap_mode='r')[:meta['num'], ...,
                                            :meta['channels']]
      cache = npy
    except _CacheUnwritable as e:
      error = e
    except BaseException:
      writer.abort()
      raise
  if images is None:
    logging.warning('%s: cannot write the decoded-image cache %s (%s); '
                    'decoding %s into memory instead', what, npy,
                    error.__cause__, path)
    skipped[:] = skipped_heads
    memory = _MemoryWriter(shape)
    kept = decode_all(memory)
    meta = _meta(kept, skipped, channels)
    images = memory.out[:meta['num'], ..., :meta['channels']]
  return _report(path, _from_meta(images, meta, cache, key), what)


def _report(path: str, data: FolderData, what: str) -> FolderData:
  """Logs the skipped files (a warning) and the conversions (one line)."""
  if data.skipped:
    logging.warning('%s: skipped %d unreadable image files under %s: %s%s',
                    what, len(data.skipped), path,
                    ', '.join(data.skipped[:_SHOW]),
                    ', ...' if len(data.skipped) > _SHOW else '')
  channels = data.images.shape[-1]
  # A conversion changes pixels (alpha dropped, grey copied to RGB, a
  # palette or CMYK file converted): said where a CLI user sees it.
  converted = any(m != ('RGB' if channels == 3 else 'L') for m in data.modes)
  (logging.warning if converted else logging.info)(
      '%s%s', describe(path, data),
      f' (cache {data.cache})' if data.cache else '')
  return data


def _meta(kept: list[tuple[str, str]], skipped: list[str], channels: int
          ) -> dict:
  """The sidecar: labels, classes, files, modes, skipped, channels."""
  relative = [r for r, _ in kept]
  labels, classes, top = _labels(relative)
  modes = collections.Counter(m for _, m in kept)
  # Channels of the files actually read: a skipped colour file can leave
  # an all-grey folder, which stays 1-channel.
  if channels == 3 and kept and all(m in GREY_MODES for _, m in kept):
    channels = 1
  return {'num': len(kept), 'channels': channels,
          'labels': None if labels is None else labels.tolist(),
          'classes': list(classes), 'files': relative,
          'modes': dict(sorted(modes.items())), 'skipped': sorted(skipped),
          'top_file': top}


def describe(path: str, data: FolderData) -> str:
  """One line: how many images, their channels, what was converted (files
  per original mode)."""
  modes = data.modes
  counts = ', '.join(f'{m} {n}' for m, n in modes.items())
  if data.images.shape[-1] == 1:
    how = 'all grey, kept 1-channel'
  else:
    notes = []
    if any(m in ('RGBA', 'LA', 'PA', 'La', 'RGBa') for m in modes):
      notes.append('alpha dropped')
    if any(m in GREY_MODES for m in modes):
      notes.append('grey copied to 3 channels')
    if any(m not in GREY_MODES + ('RGB', 'RGBA') for m in modes):
      notes.append('palette and other modes converted to RGB')
    how = 'read as RGB' + (f' ({", ".join(notes)})' if notes else '')
  classes = f', {len(data.classes)} classes' if data.classes else ''
  _, h, w, c = data.images.shape
  return (f'folder {path}: {len(data.files)} images of {h}x{w}x{c}'
          f'{classes}; files per mode: {counts}; {how}')
