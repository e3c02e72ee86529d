"""Stacked-MNIST mode counting: histogram / KL helpers against hand-computed
values, and the packaged classifier on real Stacked MNIST.

Real MNIST IDX files are read from ``$GAN_STABILITY_DATA_DIR`` (default:
``../shared/data`` next to the repository); those tests skip when absent.
"""

import math
import os

import numpy as np
import pytest

from gan_stability.data import idx
from gan_stability.data import stacked_mnist
from gan_stability.metrics import classifier
from gan_stability.metrics import modes

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
DATA_DIR = os.environ.get(
    'GAN_STABILITY_DATA_DIR',
    os.path.normpath(os.path.join(TESTS_DIR, '..', '..', 'shared', 'data')))


# ------------------------------------------------------------ helpers ---


def test_mode_histogram():
  np.testing.assert_array_equal(modes.mode_histogram([0, 0, 3], 5),
                                [2, 0, 0, 1, 0])
  np.testing.assert_array_equal(modes.mode_histogram(np.zeros(0, int), 3),
                                [0, 0, 0])
  with pytest.raises(ValueError, match=r'\[0, 5\)'):
    modes.mode_histogram([0, 5], 5)
  with pytest.raises(ValueError, match='integers'):
    modes.mode_histogram([0.5], 5)


def test_kl_to_uniform_hand_values():
  assert modes.kl_to_uniform([1, 1, 1, 1]) == pytest.approx(0.0, abs=1e-15)
  assert modes.kl_to_uniform([7, 0, 0, 0]) == pytest.approx(math.log(4))
  # p = (1/2, 1/4, 1/4, 0): 1/2 log 2 + 2 * 1/4 log 1 + 0 log 0 (= 0).
  assert modes.kl_to_uniform([2, 1, 1, 0]) == pytest.approx(0.5 * math.log(2))
  # p = (3/4, 1/4), K = 2: 3/4 log(3/2) + 1/4 log(1/2).
  assert modes.kl_to_uniform([3, 1]) == pytest.approx(
      0.75 * math.log(1.5) + 0.25 * math.log(0.5))
  one = np.zeros(1000)
  one[417] = 26_000
  assert modes.kl_to_uniform(one) == pytest.approx(math.log(1000))
  assert math.isnan(modes.kl_to_uniform([0, 0]))
  with pytest.raises(ValueError):
    modes.kl_to_uniform([1, -1])


def test_shape_errors():
  with pytest.raises(ValueError, match=r'\[N, H, W, 3\]'):
    modes.stacked_mnist_modes(None, np.zeros((2, 28, 28, 1), np.float32))


# ---------------------------------------------------- real Stacked MNIST ---


@pytest.fixture(scope='module')
def real():
  path = os.path.join(DATA_DIR, 'mnist')
  if not os.path.isfile(os.path.join(path, 't10k-images-idx3-ubyte.gz')):
    pytest.skip(f'real MNIST IDX files not found in {path} '
                '(set GAN_STABILITY_DATA_DIR)')
  # t10k digits: images the classifier never trained on.
  images, labels = idx.load_idx_dataset(path, 'test')
  stacked, true_modes = stacked_mnist.make_stacked_mnist(
      images, labels, num_examples=modes.PAPER_NUM_SAMPLES, seed=0)
  params = classifier.load_classifier()
  return params, stacked, true_modes


def test_real_stacked_mnist_covers_all_modes(real):
  params, stacked, true_modes = real
  samples = stacked.astype(np.float32) / 127.5 - 1.0  # the GAN's scaling
  result = modes.stacked_mnist_modes(params, samples, return_counts=True)
  assert result['num_samples'] == 26_000
  assert result['counts'].sum() == 26_000
  # Every one of the 1000 modes has probability >= 0.0892^3 = 7.1e-4 here
  # (digit 5 is the rarest t10k class), i.e. >= 18 expected samples out of
  # 26,000; P(some mode empty) <= 1000 e^-18 ~ 2e-5 even before classifier
  # errors, which only move a few percent of the samples.
  assert result['modes'] >= 990, result['modes']
  # Expected KL: for a multinomial with N samples over K equiprobable cells,
  # 2N * KL(p_hat || U) is approximately chi-square(K - 1), so
  # E[KL] ~ (K - 1) / (2N) = 999 / 52,000 = 0.0192 (sd sqrt(2 * 999) / 52,000
  # = 0.0009; a simulation gives 0.0194 +- 0.0009). The t10k classes are not
  # exactly balanced: the true mode distribution is a product of three digit
  # distributions, so its KL to uniform is 3 * KL(p_digit || U_10) = 0.0052.
  # Together ~0.024-0.025; 0.035 leaves > 10 sd for classifier errors.
  true_kl = modes.kl_to_uniform(modes.mode_histogram(true_modes, 1000))
  assert 0.02 < true_kl < 0.03
  assert result['kl'] < 0.035, result['kl']
  assert abs(result['kl'] - true_kl) < 0.005, (result['kl'], true_kl)
  # Per-sample agreement with the construction's modes on the first 2,000
  # samples (~0.995^3 = 0.985 for 99.5 % digit accuracy; 0.986 measured on
  # all 26,000).
  digits = modes.stacked_mnist_digits(params, samples[:2000])
  agree = np.mean(stacked_mnist.modes_from_digits(digits) == true_modes[:2000])
  assert agree > 0.96, agree
  np.testing.assert_array_equal(
      modes.mode_histogram(stacked_mnist.modes_from_digits(digits), 1000),
      modes.stacked_mnist_modes(params, samples[:2000],
                                return_counts=True)['counts'])
  # uint8 input and 32 x 32 padding (config.data.pad_to=32) give the same.
  head = samples[:100]
  padded = np.pad(head, ((0, 0), (2, 2), (2, 2), (0, 0)),
                  constant_values=-1.0)
  np.testing.assert_array_equal(modes.stacked_mnist_digits(params, padded),
                                digits[:100])
  np.testing.assert_array_equal(
      modes.stacked_mnist_digits(params, stacked[:100]), digits[:100])


def test_single_triple_generator_scores_one_mode(real):
  params, stacked, _ = real
  # A fully collapsed 'generator': one real digit triple, repeated.
  one = stacked[:1].astype(np.float32) / 127.5 - 1.0
  samples = np.repeat(one, 2000, axis=0)
  result = modes.stacked_mnist_modes(params, samples, return_counts=True)
  assert result['modes'] == 1
  assert result['kl'] == pytest.approx(math.log(1000), rel=1e-12)
  assert result['counts'].max() == 2000
  assert modes.stacked_mnist_modes(params, samples, min_count=2001)[
      'modes'] == 0
