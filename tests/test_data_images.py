"""Image data pipeline: IDX reader, array iterator, Stacked MNIST, TFDS source.

Real MNIST / Fashion-MNIST IDX files are read from ``$GAN_STABILITY_DATA_DIR``
(default: ``../shared/data`` next to the repository); those tests skip when the
folder is absent.
"""

import gzip
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from gan_stability.data import idx
from gan_stability.data import images as images_lib
from gan_stability.data import stacked_mnist
from gan_stability.data import tfds_source

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS_DIR)
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))



def _next(it):
  """The images (points) of an iterator's next batch, a dict ``{'x': ...}``
  (unconditional data sets have no other key)."""
  batch = next(it)
  assert isinstance(batch, dict) and set(batch) == {'x'}, batch
  return batch['x']

def _real_dir(name):
  path = os.path.join(DATA_DIR, name)
  if not os.path.isfile(os.path.join(path, 'train-images-idx3-ubyte.gz')):
    pytest.skip(f'real {name} IDX files not found in {path} '
                '(set GAN_STABILITY_DATA_DIR)')
  return path


def _indexed_images(n, h=2, w=2, c=1):
  """uint8 [n, h, w, c] whose every pixel of image k is k (n <= 256)."""
  assert n <= 256
  return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None],
                         (n, h, w, c)).copy()


def _decode_ids(batch):
  """Inverse of scaling for _indexed_images: the image id of each row."""
  ids = np.rint((batch[:, 0, 0, 0].astype(np.float64) + 1.0) * 127.5)
  return ids.astype(np.int64)


def _make(images, **kw):
  kw.setdefault('seed', 0)
  return images_lib.ArrayImageIterator(images, **kw)


# ------------------------------------------------------------------ IDX ---


def _idx_bytes(type_code, shape, payload):
  return (bytes([0, 0, type_code, len(shape)]) +
          struct.pack(f'>{len(shape)}I', *shape) + payload)


def test_parse_hand_made_idx_exactly(tmp_path):
  data = _idx_bytes(0x08, (2, 3, 2), bytes(range(12)))
  want = np.arange(12, dtype=np.uint8).reshape(2, 3, 2)
  plain = tmp_path / 'x-idx3-ubyte'
  plain.write_bytes(data)
  zipped = tmp_path / 'x-idx3-ubyte.gz'
  zipped.write_bytes(gzip.compress(data))
  for path in (plain, zipped):
    got = idx.read_idx(path)
    assert got.dtype == np.uint8 and got.shape == (2, 3, 2)
    np.testing.assert_array_equal(got, want)
  # Big-endian int16 and float32 are converted to native values.
  got = idx.parse_idx(_idx_bytes(0x0B, (3,), b'\x01\x02\xff\xfe\x00\x07'))
  np.testing.assert_array_equal(got, [258, -2, 7])
  assert got.dtype == np.int16 and got.dtype.isnative
  got = idx.parse_idx(_idx_bytes(0x0D, (1,), struct.pack('>f', 1.5)))
  np.testing.assert_array_equal(got, np.float32([1.5]))


def test_parse_idx_rejects_bad_files():
  with pytest.raises(ValueError, match='not an IDX file'):
    idx.parse_idx(b'\x01\x00\x08\x01\x00\x00\x00\x01\x05')
  with pytest.raises(ValueError, match='type code 0x07'):
    idx.parse_idx(_idx_bytes(0x07, (1,), b'\x00'))
  with pytest.raises(ValueError, match='data bytes'):
    idx.parse_idx(_idx_bytes(0x08, (2, 2), b'\x00\x01\x02'))


def test_write_idx_is_the_inverse_of_read_idx(tmp_path):
  path = tmp_path / 'x-idx3-ubyte.gz'
  # The bytes are exactly the hand-made file's (header, big-endian payload).
  idx.write_idx(path, np.array([258, -2, 7], np.int16))
  assert gzip.decompress(path.read_bytes()) == _idx_bytes(
      0x0B, (3,), b'\x01\x02\xff\xfe\x00\x07')
  for dtype in ('>i4', '<f4', 'f8', 'u1', 'i1'):
    x = (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
    idx.write_idx(path, x)
    got = idx.read_idx(path)
    assert got.dtype == x.dtype.newbyteorder('=') and got.shape == x.shape
    np.testing.assert_array_equal(got, x)
  with pytest.raises(ValueError, match='int64 has no IDX type code'):
    idx.write_idx(path, np.zeros(2, np.int64))
  d = idx.write_random_digits(tmp_path / 'digits', num_train=12, num_test=3)
  x, y = idx.load_idx_dataset(d, 'train')
  assert x.shape == (12, 28, 28, 1) and x.dtype == np.uint8
  np.testing.assert_array_equal(y, np.arange(12) % 10)
  x2, _ = idx.load_idx_dataset(
      idx.write_random_digits(tmp_path / 'again', num_train=12, num_test=3),
      'train')
  np.testing.assert_array_equal(x, x2)  # deterministic in the seed


def test_load_idx_dataset_hand_made(tmp_path):
  rng = np.random.default_rng(0)
  imgs = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
  labels = np.array([7, 0, 9], np.uint8)
  (tmp_path / 't10k-images-idx3-ubyte.gz').write_bytes(
      gzip.compress(_idx_bytes(0x08, (3, 28, 28), imgs.tobytes())))
  (tmp_path / 't10k-labels-idx1-ubyte').write_bytes(  # plain file also works
      _idx_bytes(0x08, (3,), labels.tobytes()))
  x, y = idx.load_idx_dataset(tmp_path, 'test')
  assert x.shape == (3, 28, 28, 1) and x.dtype == np.uint8
  assert y.dtype == np.int64
  np.testing.assert_array_equal(x[..., 0], imgs)
  np.testing.assert_array_equal(y, [7, 0, 9])
  with pytest.raises(FileNotFoundError) as e:
    idx.load_idx_dataset(tmp_path, 'train')
  msg = str(e.value)
  assert 'config.data.dir' in msg and str(tmp_path) in msg
  assert 'train-images-idx3-ubyte.gz' in msg
  with pytest.raises(FileNotFoundError, match='config.data.dir'):
    idx.load_idx_dataset(tmp_path / 'nope', 'train')
  with pytest.raises(ValueError, match='config.data.split'):
    idx.load_idx_dataset(tmp_path, 'validation')


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851,
                      5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope='module')
def mnist_train():
  return idx.load_idx_dataset(_real_dir('mnist'), 'train')


def test_real_mnist(mnist_train):
  x, y = mnist_train
  assert x.shape == (60000, 28, 28, 1) and x.dtype == np.uint8
  assert y.shape == (60000,) and y.dtype == np.int64
  np.testing.assert_array_equal(y[:5], [5, 0, 4, 1, 9])
  np.testing.assert_array_equal(np.bincount(y, minlength=10),
                                MNIST_TRAIN_COUNTS)
  assert x.min() == 0 and x.max() == 255
  # Digits are bright strokes on a black background: the corners are empty.
  assert x[:, 0, 0, 0].max() == 0 and 0.1 < (x > 0).mean() < 0.25
  xt, yt = idx.load_idx_dataset(_real_dir('mnist'), 'test')
  assert xt.shape == (10000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(yt, minlength=10),
                                MNIST_TEST_COUNTS)
  np.testing.assert_array_equal(yt[:5], [7, 2, 1, 0, 4])


def test_real_fashion_mnist():
  d = _real_dir('fashion-mnist')
  for split, n in (('train', 60000), ('test', 10000)):
    x, y = idx.load_idx_dataset(d, split)
    assert x.shape == (n, 28, 28, 1) and x.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(y, minlength=10),
                                  [n // 10] * 10)


def test_real_mnist_padded_batches(mnist_train):
  x, _ = mnist_train
  it = _make(x, global_batch=64, seed=1, pad_to=32)
  assert it.element_shape == (32, 32, 1) and it.epoch_size == 937
  b = _next(it)
  assert b.shape == (64, 32, 32, 1) and b.dtype == np.float32
  assert b.min() == -1.0 and b.max() == 1.0
  np.testing.assert_array_equal(b[:, :2], -1.0)
  np.testing.assert_array_equal(b[:, :, 30:], -1.0)
  np.testing.assert_array_equal(
      b[:, 2:30, 2:30], images_lib.scale_images(x[it.global_indices(0)]))


# ------------------------------------------------------------ iterator ---


def test_batches_follow_the_documented_formula():
  imgs = _indexed_images(13)
  it = _make(imgs, global_batch=4, seed=5)
  assert it.epoch_size == 3 and it.element_shape == (2, 2, 1)
  for i in range(8):
    epoch, j = divmod(i, 3)
    perm = np.random.default_rng([5, epoch]).permutation(13)
    b = _next(it)
    assert b.shape == (4, 2, 2, 1) and b.dtype == np.float32
    np.testing.assert_array_equal(_decode_ids(b), perm[4 * j:4 * j + 4])
    np.testing.assert_array_equal(b, images_lib.scale_images(
        imgs[perm[4 * j:4 * j + 4]]))


def test_every_example_once_per_epoch():
  it = _make(_indexed_images(12), global_batch=4, seed=3)
  orders = []
  for _ in range(4):  # 4 epochs of 3 batches
    ids = np.concatenate([_decode_ids(_next(it)) for _ in range(3)])
    np.testing.assert_array_equal(np.sort(ids), np.arange(12))
    orders.append(tuple(ids))
  assert len(set(orders)) == 4  # reshuffled every epoch
  # With a remainder (13 = 3 * 4 + 1) each epoch drops its last example.
  it = _make(_indexed_images(13), global_batch=4, seed=3)
  for epoch in range(3):
    ids = np.concatenate([_decode_ids(_next(it)) for _ in range(3)])
    perm = np.random.default_rng([3, epoch]).permutation(13)
    assert len(set(ids)) == 12 and perm[-1] not in ids


def test_resume_yields_identical_batches():
  rng = np.random.default_rng(0)
  imgs = rng.integers(0, 256, (50, 4, 4, 3), dtype=np.uint8)
  a = _make(imgs, global_batch=8, seed=7)  # 6 batches per epoch
  batches = [_next(a) for _ in range(7)]
  assert a.get_state() == {'index': 7}
  assert json.loads(json.dumps(a.get_state())) == {'index': 7}
  b = _make(imgs, global_batch=8, seed=7)
  b.set_state({'index': 3})
  for i in range(3, 7):
    np.testing.assert_array_equal(_next(b), batches[i])
  # Continuing after a restore matches too (across the epoch boundary).
  c = _make(imgs, global_batch=8, seed=7)
  c.set_state(json.loads(json.dumps(a.get_state())))
  np.testing.assert_array_equal(_next(c), _next(a))
  assert not np.array_equal(batches[0], batches[1])
  other = _make(imgs, global_batch=8, seed=8)
  assert not np.array_equal(_next(other), batches[0])


@pytest.mark.parametrize('process_count', [2, 4])
def test_process_slices_concatenate_to_the_global_batch(process_count):
  imgs = _indexed_images(40, 3, 3, 2)
  full = _make(imgs, global_batch=8, seed=2)
  procs = [_make(imgs, global_batch=8, seed=2, process_index=p,
                 process_count=process_count) for p in range(process_count)]
  for _ in range(12):  # more than two epochs of 5 batches
    want = _next(full)
    parts = [_next(p) for p in procs]
    assert parts[0].shape == (8 // process_count, 3, 3, 2)
    np.testing.assert_array_equal(np.concatenate(parts), want)
  assert procs[1].get_state() == full.get_state() == {'index': 12}


def test_validation_errors():
  imgs = _indexed_images(10)
  with pytest.raises(ValueError, match='config.batch_size'):
    _make(imgs, global_batch=6, process_count=4)
  with pytest.raises(ValueError, match='config.batch_size'):
    _make(imgs, global_batch=16)
  with pytest.raises(ValueError, match='uint8'):
    _make(imgs.astype(np.float32), global_batch=2)
  with pytest.raises(ValueError, match='pad_to'):
    _make(_indexed_images(10, 28, 28), global_batch=2, pad_to=16)


def test_scaling_endpoints_are_exact():
  imgs = np.zeros((4, 2, 2, 1), np.uint8)
  imgs[1] = 255
  imgs[2] = 51
  imgs[3, 0, 0, 0] = 128
  it = _make(imgs, global_batch=4, seed=0)
  b = _next(it)
  ids = it.global_indices(0)
  got = {int(i): b[r] for r, i in enumerate(ids)}
  assert (got[0] == -1.0).all() and (got[1] == 1.0).all()
  np.testing.assert_array_equal(got[2], np.float32(51) / np.float32(127.5) - 1)
  # float32 arithmetic: 128 -> 0.5 / 127.5 = 1 / 255 up to rounding.
  assert got[3][0, 0, 0] == np.float32(128) / np.float32(127.5) - np.float32(1)
  np.testing.assert_allclose(got[3][0, 0, 0], 1 / 255, rtol=1e-4)
  assert got[3][1, 1, 0] == -1.0
  assert b.min() >= -1.0 and b.max() <= 1.0


def test_padding_28_to_32():
  rng = np.random.default_rng(1)
  imgs = rng.integers(1, 256, (6, 28, 28, 1), dtype=np.uint8)  # no zeros
  plain = _make(imgs, global_batch=3, seed=4)
  padded = _make(imgs, global_batch=3, seed=4, pad_to=32)
  assert plain.element_shape == (28, 28, 1)
  assert padded.element_shape == (32, 32, 1)
  for _ in range(3):
    p, q = _next(plain), _next(padded)
    assert q.shape == (3, 32, 32, 1)
    np.testing.assert_array_equal(q[:, 2:30, 2:30], p)
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    np.testing.assert_array_equal(q[:, border], -1.0)
    assert (q[:, 2:30, 2:30] > -1.0).all()
  # pad_to equal to the size is a no-op.
  same = _make(imgs, global_batch=3, seed=4, pad_to=28)
  np.testing.assert_array_equal(_next(same), _next(_make(imgs, global_batch=3,
                                                       seed=4)))


# -------------------------------------------------------- Stacked MNIST ---


def test_stacked_mnist_channels_match_labels():
  # Source image k has every pixel = k and digit k % 10.
  src = _indexed_images(30, 28, 28, 1)
  labels = np.arange(30) % 10
  x, modes = stacked_mnist.make_stacked_mnist(src, labels, num_examples=500,
                                              seed=3)
  assert x.shape == (500, 28, 28, 3) and x.dtype == np.uint8
  assert modes.shape == (500,) and modes.dtype == np.int64
  ids = x[:, 0, 0, :].astype(np.int64)  # [500, 3] source ids (R, G, B)
  assert (x == ids[:, None, None, :]).all()  # whole channels copied
  np.testing.assert_array_equal(modes, 100 * (ids[:, 0] % 10) +
                                10 * (ids[:, 1] % 10) + ids[:, 2] % 10)
  # The documented construction, exactly.
  want = np.random.default_rng([3, stacked_mnist.STREAM]).integers(
      0, 30, size=(500, 3))
  np.testing.assert_array_equal(ids, want)
  np.testing.assert_array_equal(
      stacked_mnist.digits_from_modes(modes), ids % 10)
  np.testing.assert_array_equal(
      stacked_mnist.modes_from_digits(ids % 10), modes)
  assert stacked_mnist.modes_from_digits([9, 0, 4]) == 904


def test_stacked_mnist_determinism():
  src = _indexed_images(20)
  labels = np.arange(20) % 10
  a = stacked_mnist.make_stacked_mnist(src, labels, num_examples=100, seed=0)
  b = stacked_mnist.make_stacked_mnist(src, labels, num_examples=100, seed=0)
  c = stacked_mnist.make_stacked_mnist(src, labels, num_examples=100, seed=1)
  np.testing.assert_array_equal(a[0], b[0])
  np.testing.assert_array_equal(a[1], b[1])
  assert not np.array_equal(a[1], c[1])


def test_stacked_mnist_modes_are_uniform():
  # 100 sources, 10 per digit; 200,000 examples -> 200 expected per mode.
  src = _indexed_images(100)
  labels = np.arange(100) % 10
  n = 200_000
  _, modes = stacked_mnist.make_stacked_mnist(src, labels, num_examples=n,
                                              seed=0)
  counts = np.bincount(modes, minlength=1000)
  assert counts.shape == (1000,) and counts.sum() == n
  assert counts.min() > 0  # all 1,000 modes present
  expected = n / 1000
  chi2 = float(((counts - expected) ** 2 / expected).sum())
  # chi^2 with 999 dof: mean 999, sd sqrt(2 * 999) = 44.7; allow 5 sd.
  assert 999 - 5 * 44.7 < chi2 < 999 + 5 * 44.7, chi2
  # Each channel's digit is uniform and the channels are independent.
  digits = stacked_mnist.digits_from_modes(modes)
  for c in range(3):
    np.testing.assert_allclose(np.bincount(digits[:, c], minlength=10) / n,
                               0.1, atol=0.005)


def test_stacked_mnist_validation():
  src = _indexed_images(10, 28, 28, 1)
  with pytest.raises(ValueError, match='0..9'):
    stacked_mnist.make_stacked_mnist(src, np.arange(10) + 1, num_examples=4,
                                     seed=0)
  with pytest.raises(ValueError, match='labels'):
    stacked_mnist.make_stacked_mnist(src, np.arange(9), num_examples=4, seed=0)
  with pytest.raises(ValueError, match='single-channel'):
    stacked_mnist.make_stacked_mnist(np.repeat(src, 3, -1), np.arange(10),
                                     num_examples=4, seed=0)


def test_stacked_real_mnist_with_iterator(mnist_train):
  x, y = mnist_train
  stacked, modes = stacked_mnist.make_stacked_mnist(x, y, num_examples=2000,
                                                    seed=0)
  ids = stacked_mnist.source_indices(60000, num_examples=2000, seed=0)
  np.testing.assert_array_equal(stacked[..., 1], x[ids[:, 1], ..., 0])
  np.testing.assert_array_equal(modes, 100 * y[ids[:, 0]] +
                                10 * y[ids[:, 1]] + y[ids[:, 2]])
  it = _make(stacked, global_batch=64, seed=0, pad_to=32)
  assert it.element_shape == (32, 32, 3)
  assert _next(it).shape == (64, 32, 32, 3)


# ----------------------------------------------------------------- TFDS ---


@pytest.mark.parametrize('name,shape', [('mnist', (28, 28, 1)),
                                        ('fashion_mnist', (28, 28, 1)),
                                        ('cifar10', (32, 32, 3))])
def test_tfds_source_with_mock_data(name, shape):
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=8,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    x, y = tfds_source.load_tfds_images(name, 'train', data_dir=None)
    source = tfds.data_source(name, split='train')
    want_x = np.stack([source[i]['image'] for i in range(8)])
    want_y = np.array([source[i]['label'] for i in range(8)])
  assert x.shape == (8,) + shape and x.dtype == np.uint8
  assert y.shape == (8,) and y.dtype == np.int64
  assert ((0 <= y) & (y < 10)).all()
  np.testing.assert_array_equal(x, want_x)
  np.testing.assert_array_equal(y, want_y)
  assert x.std() > 0  # mock pixels are random, not a constant fill
  it = _make(x, global_batch=4, seed=0, pad_to=32)
  assert it.element_shape == (32, 32, shape[-1])
  assert _next(it).shape == (4, 32, 32, shape[-1])


def test_tfds_source_without_labels():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=3,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    x, y = tfds_source.load_tfds_images('celeb_a', 'train')
  assert x.shape == (3, 218, 178, 3) and x.dtype == np.uint8 and y is None


def test_modules_import_without_tensorflow_datasets():
  code = ('import sys; import gan_stability.data.tfds_source, '
          'gan_stability.data.images, gan_stability.data.idx, '
          'gan_stability.data.stacked_mnist; '
          "bad = [m for m in ('tensorflow_datasets', 'tensorflow') "
          'if m in sys.modules]; assert not bad, bad')
  proc = subprocess.run([sys.executable, '-c', code], cwd=REPO,
                        capture_output=True, text=True, timeout=120)
  assert proc.returncode == 0, proc.stderr[-2000:]
