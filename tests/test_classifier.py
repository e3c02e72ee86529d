"""The MNIST classifier: packaged artifact, storage, batched inference and
the training function.

The real-data test reads MNIST IDX files from ``$GAN_STABILITY_DATA_DIR``
(default: ``../shared/data`` next to the repository) and skips when absent.
Nothing here trains the real classifier.
"""

import hashlib
import json
import os

import jax
import numpy as np
import pytest

from gan_stability.data import idx
from gan_stability.metrics import classifier

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))


def _mnist_dir():
  path = os.path.join(DATA_DIR, 'mnist')
  if not os.path.isfile(os.path.join(path, 't10k-images-idx3-ubyte.gz')):
    pytest.skip(f'real MNIST IDX files not found in {path} '
                '(set GAN_STABILITY_DATA_DIR)')
  return path


def _packaged():
  path = classifier.default_classifier_path()
  assert os.path.isfile(path), (
      f'packaged classifier missing at {path}; see '
      'experiments/train_mnist_classifier.py')
  return classifier.load_classifier(path)


def test_default_path_is_packaged_asset():
  path = classifier.default_classifier_path()
  assert path.endswith(os.path.join('gan_stability', 'assets',
                                    'mnist_classifier.npz'))
  assert os.path.getsize(path) < 2 * 1024 * 1024
  meta = classifier.load_metadata()
  assert meta['test_accuracy'] >= 0.99
  assert 'experiments.train_mnist_classifier' in meta['command']
  assert len(meta['data_sha256']) == 4
  with open(path, 'rb') as f:
    assert hashlib.sha256(f.read()).hexdigest() == meta['weights_sha256']


def test_packaged_classifier_accuracy_on_real_t10k():
  images, labels = idx.load_idx_dataset(_mnist_dir(), 'test')
  params = _packaged()
  result = classifier.evaluate(params, images[:2000], labels[:2000])
  assert result['accuracy'] >= 0.99, result
  # uint8 input and the GAN's [-1, 1] float scaling give the same labels.
  scaled = images[:200].astype(np.float32) / 127.5 - 1.0
  np.testing.assert_array_equal(classifier.predict(params, scaled),
                                classifier.predict(params, images[:200]))


def test_save_load_roundtrip_and_keys(tmp_path):
  params = classifier.init_params(3)
  path = tmp_path / 'c.npz'
  classifier.save_classifier(path, params, {'test_accuracy': 0.5})
  with np.load(path) as data:
    assert sorted(data.files) == [
        'params/conv1/bias', 'params/conv1/kernel', 'params/conv2/bias',
        'params/conv2/kernel', 'params/conv3/bias', 'params/conv3/kernel',
        'params/dense/bias', 'params/dense/kernel',
        'params/head/bias', 'params/head/kernel']
    assert all(data[k].dtype == np.float32 for k in data.files)
  meta = json.loads((tmp_path / 'c.json').read_text())
  assert meta['test_accuracy'] == 0.5 and len(meta['weights_sha256']) == 64
  loaded = classifier.load_classifier(path)
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, loaded)
  assert classifier.num_params(loaded) == 356_234

  np.savez(tmp_path / 'bad.npz', **{'params/conv1/kernel': np.zeros(3)})
  with pytest.raises(ValueError, match='not MnistClassifier weights'):
    classifier.load_classifier(tmp_path / 'bad.npz')
  with pytest.raises(FileNotFoundError, match='train_mnist_classifier'):
    classifier.load_classifier(tmp_path / 'none.npz')


def test_batched_inference_matches_apply_and_compiles_once():
  params = classifier.init_params(1)
  x = np.random.default_rng(0).uniform(-1, 1, (13, 28, 28, 1)).astype(
      np.float32)
  want = np.asarray(classifier.MODEL.apply(params, x))
  before = classifier._logits_fn._cache_size()  # pylint: disable=protected-access
  for n in (13, 5, 1):  # 2 batches + padding, 1 padded batch, 1 row
    got = classifier.predict_logits(params, x[:n], batch_size=8)
    np.testing.assert_allclose(got, want[:n], rtol=1e-5, atol=1e-5)
  assert classifier._logits_fn._cache_size() == before + 1  # pylint: disable=protected-access
  np.testing.assert_array_equal(classifier.predict(params, x, batch_size=8),
                                np.argmax(want, -1))
  feats = classifier.features(params, x, batch_size=8)
  assert feats.shape == (13, classifier.FEATURE_DIM) and np.all(feats >= 0)
  head = params['params']['head']
  np.testing.assert_allclose(feats @ np.asarray(head['kernel']) +
                             np.asarray(head['bias']), want, rtol=1e-4,
                             atol=1e-4)
  # [N, 28, 28] input and a 32 x 32 zero-padded (background -1) input are
  # the same images to the classifier.
  np.testing.assert_allclose(
      classifier.predict_logits(params, x[..., 0], batch_size=8), want,
      rtol=1e-5, atol=1e-5)
  padded = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
  np.testing.assert_allclose(
      classifier.predict_logits(params, padded, batch_size=8), want,
      rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match='smaller'):
    classifier.predict(params, x[:, :20, :20])


def test_random_shift_is_a_translation():
  x = np.full((4, 6, 6, 1), -1.0, np.float32)
  x[:, 2:4, 2:4] = 1.0  # a 2 x 2 blob away from the border
  shifted = np.asarray(classifier.random_shift(jax.random.PRNGKey(0), x, 2))
  for img in shifted:
    assert np.sum(img == 1.0) == 4 and np.sum(img == -1.0) == 32
  np.testing.assert_array_equal(
      classifier.random_shift(jax.random.PRNGKey(0), x, 0), x)


def test_train_classifier_reduces_loss_on_tiny_fake_data():
  # 10 learnable classes: class k is a bright 4 x 4 square at a position
  # that depends on k, plus noise.
  rng = np.random.default_rng(0)
  labels = np.arange(80) % 10
  images = rng.integers(0, 60, (80, 28, 28, 1)).astype(np.uint8)
  for i, k in enumerate(labels):
    r, c = 4 + 5 * (k // 5 * 2), 2 + 5 * (k % 5)
    images[i, r:r + 4, c:c + 4] = 255
  before = classifier.evaluate(classifier.init_params(0), images, labels,
                               batch_size=80)
  params, history = classifier.train_classifier(
      images, labels, epochs=3, seed=0, batch_size=16, max_shift=1,
      eval_images=images, eval_labels=labels)
  after = classifier.evaluate(params, images, labels, batch_size=80)
  assert [h['epoch'] for h in history] == [1, 2, 3]
  assert history[-1]['train_loss'] < history[0]['train_loss']
  # ~2.5 -> ~1.5 in 15 Adam steps (cosine-decayed from 1e-3).
  assert after['loss'] < 0.75 * before['loss'], (before, after)
  assert after['accuracy'] >= 0.5 > before['accuracy'], (before, after)
  assert history[-1]['eval_loss'] == pytest.approx(after['loss'], rel=1e-5)
  # Deterministic in the seed.
  again, _ = classifier.train_classifier(images, labels, epochs=3, seed=0,
                                         batch_size=16, max_shift=1)
  jax.tree_util.tree_map(np.testing.assert_array_equal, params, again)
