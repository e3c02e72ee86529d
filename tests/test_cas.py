"""CAS and GAN-test label agreement on a synthetic, easily separable 10-class
28 x 28 data set (class k: a bright 6 x 6 block at a class-specific position
on a dark, noisy background), small enough to train in seconds on a CPU."""

import numpy as np
import pytest

from conftest import block_images
from gan_stability.metrics import cas, classifier

EPOCHS, BATCH, LR = 3, 32, 3e-3
TRAIN = block_images(400, seed=0)
TEST = block_images(200, seed=1)


def _cas(train_labels, seed=0):
  return cas.classification_accuracy_score(
      TRAIN[0], train_labels, TEST[0], TEST[1], epochs=EPOCHS, seed=seed,
      batch_size=BATCH, learning_rate=LR)


def test_balanced_labels():
  y = cas.balanced_labels(23, num_classes=10)
  assert y.dtype == np.int32 and y.shape == (23,)
  np.testing.assert_array_equal(y, np.arange(23) % 10)
  assert np.all(np.bincount(cas.balanced_labels(50, num_classes=10)) == 5)
  assert cas.balanced_labels(0, num_classes=3).shape == (0,)
  with pytest.raises(ValueError, match='n must be an integer >= 0'):
    cas.balanced_labels(-1, num_classes=10)
  with pytest.raises(ValueError, match='num_classes must be an integer >= 1'):
    cas.balanced_labels(5, num_classes=0)


def test_cas_true_labels_and_determinism():
  first = _cas(TRAIN[1])
  assert first['accuracy'] >= 0.95, first
  assert first['num_train'] == 400 and first['train_seconds'] > 0
  assert 0 <= first['loss'] < 0.5
  again = _cas(TRAIN[1])  # same seed: same weights, same numbers
  assert again['accuracy'] == first['accuracy']
  assert again['loss'] == first['loss']


def test_cas_permuted_labels_is_near_chance():
  shuffled = np.random.default_rng(5).permutation(TRAIN[1])
  assert np.mean(shuffled == TRAIN[1]) < 0.2
  result = _cas(shuffled)
  assert result['accuracy'] <= 0.3, result


def test_as_float_images_and_combine():
  a = np.array([[[0, 255], [127, 1]]], np.uint8)
  a = np.pad(a, ((0, 0), (0, 26), (0, 26)))  # [1, 28, 28], zeros elsewhere
  b = np.full((2, 28, 28, 1), 0.25, np.float32)
  fa = cas.as_float_images(a)
  assert fa.dtype == np.float32 and fa.shape == (1, 28, 28, 1)
  assert fa[0, 0, 0, 0] == -1.0 and fa[0, 0, 1, 0] == 1.0
  # float32 arithmetic, x / 127.5 - 1 (as classifier.prepare_images).
  assert fa[0, 1, 0, 0] == np.float32(127) / np.float32(127.5) - 1
  np.testing.assert_array_equal(cas.as_float_images(b), b)
  x, y = cas.combine((a, [3]), (b, np.array([0, 9], np.int64)))
  fa_hand = a[..., None].astype(np.float32) / np.float32(127.5) - 1
  expected = np.concatenate([fa_hand, b])
  assert x.dtype == np.float32 and x.shape == (3, 28, 28, 1)
  np.testing.assert_array_equal(x, expected)
  assert y.dtype == np.int32 and y.tolist() == [3, 0, 9]
  with pytest.raises(ValueError, match=r'sets\[1\] labels must have shape'):
    cas.combine((a, [3]), (b, [0]))
  with pytest.raises(ValueError, match=r'sets\[0\] must be an \(images, '):
    cas.combine(a)
  with pytest.raises(ValueError, match='at least one'):
    cas.combine()


def test_label_agreement_hand_counted(monkeypatch):
  # Requested labels and the (patched) classifier's predictions:
  #   y = 0 0 0 1 1 2 2 2 2 5
  #   p = 0 1 0 1 1 2 0 2 7 5  -> 7 of 10 agree.
  # Per class: 0 -> 2/3, 1 -> 2/2, 2 -> 2/4, 5 -> 1/1, others no sample.
  y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 5])
  p = np.array([0, 1, 0, 1, 1, 2, 0, 2, 7, 5])
  images = np.zeros((10, 28, 28), np.uint8)
  monkeypatch.setattr(classifier, 'predict',
                      lambda params, x, batch_size: p[:len(x)])
  got = cas.label_agreement(None, images, y)
  assert got['accuracy'] == pytest.approx(0.7)
  assert got['num_samples'] == 10
  assert got['per_class'] == pytest.approx(
      [2 / 3, 1.0, 0.5, None, None, 1.0, None, None, None, None])
  assert got['class_counts'] == [3, 2, 4, 0, 0, 1, 0, 0, 0, 0]


def test_label_agreement_real_classifier():
  # GAN-test with a classifier trained on the real blocks: "generated"
  # samples that are real test blocks agree with their labels; the same
  # samples with shifted requested labels do not.
  params, _ = classifier.train_classifier(
      TRAIN[0], TRAIN[1], epochs=EPOCHS, seed=0, batch_size=BATCH,
      learning_rate=LR, max_shift=0)
  good = cas.label_agreement(params, TEST[0], TEST[1], batch_size=200)
  bad = cas.label_agreement(params, TEST[0], (TEST[1] + 1) % 10,
                            batch_size=200)
  assert good['accuracy'] >= 0.95 and bad['accuracy'] <= 0.05
  assert min(good['per_class']) >= 0.8
  assert sum(good['class_counts']) == 200


def test_errors():
  x, y = TRAIN[0][:20], TRAIN[1][:20]
  kw = dict(epochs=1, seed=0, batch_size=8)
  score = cas.classification_accuracy_score
  with pytest.raises(ValueError, match='train_images is empty'):
    score(x[:0], y[:0], x, y, **kw)
  with pytest.raises(ValueError, match=r'train_labels must lie in 0\.\.9'):
    score(x, np.where(y == 3, 10, y), x, y, **kw)
  with pytest.raises(ValueError, match=r'test_labels must lie in 0\.\.9'):
    score(x, y, x, y - 1, **kw)
  with pytest.raises(ValueError, match=r'train_labels must have shape \[20\]'):
    score(x, y[:5], x, y, **kw)
  with pytest.raises(ValueError, match=r'batch_size=64 exceeds .* 1\.\.20'):
    score(x, y, x, y, epochs=1, seed=0, batch_size=64)
  with pytest.raises(ValueError, match='epochs must be an integer >= 1'):
    score(x, y, x, y, epochs=0, seed=0, batch_size=8)
  with pytest.raises(ValueError, match='labels must be integers'):
    score(x, y.astype(np.float32), x, y, **kw)
  with pytest.raises(ValueError, match='label_agreement: images is empty'):
    cas.label_agreement(None, x[:0], y[:0])
  with pytest.raises(ValueError, match=r'label_agreement: labels must lie'):
    cas.label_agreement(None, x, y + 10)
