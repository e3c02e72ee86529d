"""Reader for the IDX format of MNIST and Fashion-MNIST.

Format (LeCun et al., http://yann.lecun.com/exdb/mnist/, section "FILE FORMATS
FOR THE MNIST DATABASE"): a 4-byte magic number ``0x00 0x00 TYPE NDIM``, then
``NDIM`` big-endian uint32 dimension sizes, then the data in C order,
big-endian. TYPE: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64. Files may be gzip-compressed (detected from the gzip magic bytes,
not from the file name).

``load_idx_dataset`` reads the four standard files of a directory, e.g.
``train-images-idx3-ubyte.gz`` / ``train-labels-idx1-ubyte.gz`` (60,000
examples) and ``t10k-images-idx3-ubyte.gz`` / ``t10k-labels-idx1-ubyte.gz``
(10,000); Fashion-MNIST (Xiao et al. 2017) uses the same names and layout.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from gan_stability.errors import DamagedFile

# IDX type code -> big-endian numpy dtype.
_IDX_DTYPES = {
    0x08: np.dtype('>u1'),
    0x09: np.dtype('>i1'),
    0x0B: np.dtype('>i2'),
    0x0C: np.dtype('>i4'),
    0x0D: np.dtype('>f4'),
    0x0E: np.dtype('>f8'),
}

_GZIP_MAGIC = b'\x1f\x8b'

# split -> (images file, labels file), without the optional '.gz'.
_SPLIT_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}


def parse_idx(data: bytes, name: str = '<bytes>') -> np.ndarray:
  """Parses the (uncompressed) bytes of an IDX file.

  Args:
    data: the file content.
    name: used in error messages.

  Returns:
    A native-endian, writable array with the dtype and shape of the header.

  Raises:
    DamagedFile: (a ValueError) on a bad magic number, an unknown type code
      or a data size that does not match the header.
  """
  if len(data) < 4 or data[0] != 0 or data[1] != 0:
    raise DamagedFile(f'{name}: not an IDX file (magic number '
                     f'{data[:4].hex() or "<empty>"}; expected 0000TTNN)')
  type_code, ndim = data[2], data[3]
  if type_code not in _IDX_DTYPES:
    raise DamagedFile(f'{name}: unknown IDX type code 0x{type_code:02x}; '
                     f'known: {sorted(hex(k) for k in _IDX_DTYPES)}')
  header = 4 + 4 * ndim
  if len(data) < header:
    raise DamagedFile(f'{name}: truncated IDX header ({len(data)} bytes, '
                     f'{ndim} dims need {header})')
  shape = struct.unpack(f'>{ndim}I', data[4:header])
  dtype = _IDX_DTYPES[type_code]
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  if len(data) - header != expected:
    raise DamagedFile(f'{name}: IDX header says shape {shape} of {dtype.name} '
                     f'({expected} bytes) but the file holds '
                     f'{len(data) - header} data bytes')
  array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
  return array.astype(dtype.newbyteorder('='))  # a native, writable copy


def read_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (plain or gzip-compressed) into a numpy array."""
  with open(path, 'rb') as f:
    data = f.read()
  if data[:2] == _GZIP_MAGIC:
    try:
      data = gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
      raise DamagedFile(f'{os.fspath(path)}: damaged gzip data ({e}); '
                        'download or copy the file again') from None
  return parse_idx(data, name=os.fspath(path))


def _find(directory: str, stem: str) -> str:
  """``directory/stem.gz`` or ``directory/stem``, whichever exists."""
  for candidate in (stem + '.gz', stem):
    path = os.path.join(directory, candidate)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f'config.data.dir={directory!r}: missing IDX file {stem}.gz (or {stem}) '
      f'in directory {directory!r}; set config.data.dir to the folder holding '
      'the MNIST-format files train-images-idx3-ubyte.gz, '
      'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
      't10k-labels-idx1-ubyte.gz')


def load_idx_dataset(directory: str | os.PathLike,
                     split: str = 'train') -> tuple[np.ndarray, np.ndarray]:
  """Images and labels of an MNIST-format directory.

  Args:
    directory: folder with the IDX files (``config.data.dir``).
    split: ``'train'`` (the ``train-*`` files) or ``'test'`` (``t10k-*``).

  Returns:
    ``(images, labels)``: uint8 ``[N, rows, cols, 1]`` (28 x 28 for MNIST and
    Fashion-MNIST) and int64 ``[N]``.

  Raises:
    FileNotFoundError: a file is missing (names the directory, the file and
      ``config.data.dir``).
    ValueError: unknown split; DamagedFile (a ValueError): files of the
      wrong type or sizes, damaged gzip data, or image and label counts that
      differ.
  """
  if split not in _SPLIT_FILES:
    raise ValueError(f'config.data.split: unknown IDX split {split!r}; '
                     f'allowed: {sorted(_SPLIT_FILES)}')
  directory = os.fspath(directory)
  if not os.path.isdir(directory):
    raise FileNotFoundError(
        f'config.data.dir={directory!r}: directory not found (it must hold '
        f'the IDX files {_SPLIT_FILES[split][0]}.gz and '
        f'{_SPLIT_FILES[split][1]}.gz)')
  image_path, label_path = (_find(directory, s) for s in _SPLIT_FILES[split])
  images = read_idx(image_path)
  labels = read_idx(label_path)
  if images.dtype != np.uint8 or images.ndim != 3:
    raise DamagedFile(f'{image_path}: expected uint8 [N, rows, cols] images, '
                     f'got {images.dtype} {images.shape}')
  if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
    raise DamagedFile(f'{label_path}: expected {images.shape[0]} labels, got '
                     f'shape {labels.shape}')
  return images[..., None], labels.astype(np.int64)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
  """Writes ``array`` as a gzip-compressed IDX file (the inverse of
  :func:`read_idx`), atomically: a temporary file renamed into place."""
  array = np.asarray(array)
  codes = {dt.newbyteorder('='): code for code, dt in _IDX_DTYPES.items()}
  code = codes.get(array.dtype.newbyteorder('='))
  if code is None:
    raise ValueError(f'{os.fspath(path)}: dtype {array.dtype} has no IDX type '
                     f'code; allowed: {sorted(str(d) for d in codes)}')
  header = struct.pack(f'>BBBB{array.ndim}I', 0, 0, code, array.ndim,
                       *array.shape)
  dtype = _IDX_DTYPES[code]
  tmp = f'{os.fspath(path)}.tmp{os.getpid()}'
  with gzip.open(tmp, 'wb') as f:
    f.write(header + array.astype(dtype).tobytes())
  os.replace(tmp, path)


def write_random_digits(directory: str | os.PathLike, *, num_train: int = 64,
                        num_test: int = 16, seed: int = 0) -> str:
  """An MNIST-layout directory of random 28x28 uint8 'digits' (uniform
  pixels; labels 0, 1, ..., 9, 0, ... in turn) for offline checks of code
  that reads MNIST: the four gzip IDX files of :func:`load_idx_dataset`.
  Deterministic in ``seed``. Returns ``directory``."""
  directory = os.fspath(directory)
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for split, n in (('train', num_train), ('test', num_test)):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = (np.arange(n) % 10).astype(np.uint8)
    images_file, labels_file = _SPLIT_FILES[split]
    write_idx(os.path.join(directory, images_file + '.gz'), images)
    write_idx(os.path.join(directory, labels_file + '.gz'), labels)
  return directory
