"""``config.data.num_examples``: training on the first N examples of the
training split (data-efficiency experiments). The iterator yields exactly
those examples (and their labels), an epoch is N examples, the errors name
the field, and evaluation's real side is not subset. Real Fashion-MNIST IDX
files are read from ``$GAN_STABILITY_DATA_DIR`` (default ``../shared/data``);
that test skips when they are absent."""

import gzip
import os

import numpy as np
import pytest

from experiments.configs import folder as folder_cfg
from experiments.configs import mnist
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability.errors import ConfigError

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))


def _npz(tmp_path, n=10):
  rng = np.random.default_rng(3)
  x = rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8)
  labels = np.arange(n) % 3
  path = tmp_path / 'd.npz'
  np.savez(path, x=x, label=labels, x_test=x[:3])
  return path, x, labels


def _config(path, num_examples, batch_size=2, **model):
  c = folder_cfg.get_config('smoke')
  c.data.update(source='npz', dir=str(path), image_size=0,
                num_examples=num_examples)
  c.batch_size = batch_size
  c.model.update(model)
  config_lib.validate(c, num_devices=1)
  return c


@pytest.mark.parametrize('num_classes', [0, 3])
def test_the_iterator_yields_the_first_n_examples(tmp_path, num_classes):
  path, x, labels = _npz(tmp_path)
  c = _config(path, 6, num_classes=num_classes)
  it = data_lib.make_iterator(c, seed=1)
  assert it.num_examples == 6 and it.epoch_size == 3  # 6 examples / batch 2
  for epoch in range(2):
    rows, xs, ys = [], [], []
    for _ in range(it.epoch_size):
      i = it.index
      b = next(it)
      rows.append(it.global_indices(i))
      xs.append(b['x'])
      if num_classes:
        ys.append(b['label'])
      else:
        assert set(b) == {'x'}
    rows = np.concatenate(rows)
    assert sorted(rows) == list(range(6)), epoch  # each of the 6 once
    np.testing.assert_allclose(np.concatenate(xs), x[rows] / 127.5 - 1,
                               atol=1e-6)
    if num_classes:
      np.testing.assert_array_equal(np.concatenate(ys), labels[rows])
  # 0 (the default) is the whole split; evaluation's real side is never
  # subset.
  assert data_lib.make_iterator(_config(path, 0), seed=1).num_examples == 10
  np.testing.assert_array_equal(data_lib.load_split(c, 'train'), x)
  # All of the split is allowed too.
  assert data_lib.make_iterator(_config(path, 10), seed=1).num_examples == 10


def test_errors_name_the_field(tmp_path):
  path, _, _ = _npz(tmp_path)
  with pytest.raises(ConfigError, match=r"^config\.data\.num_examples: 11 "
                     r"exceeds the 10 examples of split 'train' of 'custom'"):
    data_lib.make_iterator(_config(path, 11), seed=0)
  with pytest.raises(ConfigError, match=r'^config\.batch_size: 8 exceeds the '
                     r'4 examples of config\.data\.num_examples=4 \(the first '
                     r"4 of split 'train'\)"):
    data_lib.make_iterator(_config(path, 4, batch_size=8), seed=0)
  with pytest.raises(ConfigError, match=r'^config\.data\.num_examples: -1 '
                     'must be >= 0'):
    _config(path, -1)
  # A run written before the field trains on all of its data.
  c = folder_cfg.get_config('smoke').to_dict()
  del c['data']['num_examples']
  assert config_lib.upgrade(c)['data']['num_examples'] == 0


def test_fashion_mnist_first_600():
  d = os.path.join(DATA_DIR, 'fashion-mnist')
  files = [os.path.join(d, f'train-{k}-ubyte.gz') for k in ('images-idx3',
                                                             'labels-idx1')]
  if not all(os.path.isfile(f) for f in files):
    pytest.skip(f'no Fashion-MNIST IDX files in {d}')
  c = mnist.get_config('nonsaturating_cond')
  c.dataset = 'fashion_mnist'
  c.data.update(dir=d, num_examples=600)
  config_lib.validate(c, num_devices=1)
  it = data_lib.make_iterator(c, seed=0)
  with gzip.open(files[0]) as f:  # the IDX file itself: 16-byte header
    x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28, 1)
  with gzip.open(files[1]) as f:
    y = np.frombuffer(f.read(), np.uint8, offset=8)
  assert it.num_examples == 600 and it.epoch_size == 600 // 64
  np.testing.assert_array_equal(it.images, x[:600])
  np.testing.assert_array_equal(it.labels, y[:600])
  assert np.bincount(y[:600], minlength=10).min() >= 40  # not class-sorted
