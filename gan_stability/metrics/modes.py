"""Mode coverage on Stacked MNIST (1,000 modes).

Protocol (Metz et al. 2017, Unrolled GANs, sec. 3.3; Srivastava et al. 2017,
VEEGAN, sec. 5.2 and Table 2; Lin et al. 2018, PacGAN, sec. 4.1 and
Tables 2-3): a generator of ``[N, 28, 28, 3]`` images is sampled; each colour
channel is classified *independently* as a digit ``d_c`` by a pretrained MNIST
classifier (here :mod:`gan_stability.metrics.classifier`), and the sample's
mode is ``m = 100 d_0 + 10 d_1 + d_2`` in ``[0, 1000)``
(:func:`gan_stability.data.stacked_mnist.modes_from_digits`, the same encoding
as the data set). With the histogram ``n_k`` of the ``N`` modes and
``p_k = n_k / N``:

* ``modes`` = ``#{k : n_k >= min_count}`` (``min_count = 1``: a mode is
  covered by at least one sample), out of 1,000;
* ``kl`` = ``KL(p || uniform_1000) = sum_k p_k log(1000 p_k)`` with
  ``0 log 0 = 0`` (natural log): 0 for a perfectly balanced histogram,
  ``log 1000 = 6.908`` when every sample has the same mode.

VEEGAN and PacGAN report both on N = 26,000 generated samples
(``PAPER_NUM_SAMPLES``; PacGAN's released code sets ``num_test_sample:
26000`` in ``stacked_MNIST_experiments/*/config.py``). Note that the plug-in KL of a finite sample is biased upwards: for a
truly uniform generator ``2 N KL`` is approximately chi-square with
``K - 1`` degrees of freedom, so ``E[KL] ~ (K - 1) / (2 N) = 0.019`` at
``N = 26,000, K = 1,000`` (standard deviation ``sqrt(2 (K - 1)) / (2 N) =
0.0009``); real MNIST digits are also not exactly balanced (digit 1 is 11 % of
the set, 5 is 9 %), which adds a few thousandths. Numbers compared across
papers must use the same ``N``.
"""

from __future__ import annotations

import numpy as np

from gan_stability.data import stacked_mnist
from gan_stability.metrics import classifier as classifier_lib

NUM_MODES = stacked_mnist.NUM_MODES  # 1000
PAPER_NUM_SAMPLES = 26_000  # VEEGAN / PacGAN evaluation size


def mode_histogram(labels: np.ndarray, num_modes: int) -> np.ndarray:
  """int64 ``[num_modes]`` counts of integer ``labels`` in ``[0, num_modes)``."""
  labels = np.asarray(labels)
  if labels.size and not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f'mode labels must be integers, got {labels.dtype}')
  labels = labels.astype(np.int64).reshape(-1)
  if labels.size and (labels.min() < 0 or labels.max() >= num_modes):
    raise ValueError(f'mode labels must lie in [0, {num_modes}), got '
                     f'[{labels.min()}, {labels.max()}]')
  return np.bincount(labels, minlength=num_modes).astype(np.int64)


def kl_to_uniform(counts: np.ndarray) -> float:
  """``KL(p || uniform_K) = sum_k p_k log(K p_k)`` of a histogram.

  ``counts`` (``[K]``, non-negative, e.g. from :func:`mode_histogram`) is
  normalised to ``p``; terms with ``p_k = 0`` are 0. Returns NaN for an empty
  histogram.
  """
  counts = np.asarray(counts, np.float64)
  if counts.ndim != 1 or counts.size == 0:
    raise ValueError(f'expected a 1-D histogram, got shape {counts.shape}')
  if np.any(counts < 0):
    raise ValueError('histogram counts must be non-negative')
  total = counts.sum()
  if total <= 0:
    return float('nan')
  p = counts[counts > 0] / total
  return float(np.sum(p * np.log(p * counts.size)))


def stacked_mnist_digits(classifier_params, samples: np.ndarray, *,
                         batch_size: int = classifier_lib.DEFAULT_BATCH_SIZE
                         ) -> np.ndarray:
  """int64 ``[N, 3]``: the classifier's digit for each channel of each sample.

  ``samples``: ``[N, H, W, 3]`` float in [-1, 1] (or uint8), ``H, W >= 28``
  (larger images are centre-cropped, see
  :func:`gan_stability.metrics.classifier.prepare_images`).
  """
  samples = np.asarray(samples)
  if samples.ndim != 4 or samples.shape[-1] != 3:
    raise ValueError('Stacked-MNIST samples must be [N, H, W, 3], got shape '
                     f'{samples.shape}')
  n = samples.shape[0]
  # [N, H, W, 3] -> [N * 3, H, W, 1], rows (sample 0 ch 0, sample 0 ch 1, ...)
  channels = np.moveaxis(samples, -1, 1).reshape((n * 3,) + samples.shape[1:3])
  digits = classifier_lib.predict(classifier_params, channels,
                                  batch_size=batch_size)
  return digits.reshape(n, 3)


def stacked_mnist_modes(classifier_params, samples: np.ndarray, *,
                        min_count: int = 1, return_counts: bool = False,
                        batch_size: int = classifier_lib.DEFAULT_BATCH_SIZE
                        ) -> dict:
  """Mode coverage of Stacked-MNIST samples (see the module docstring).

  Args:
    classifier_params: MNIST classifier variables, e.g.
      ``classifier.load_classifier()``.
    samples: ``[N, 28, 28, 3]`` in [-1, 1] (``N = 26,000`` in the papers).
      Non-finite samples are classified as they come (their digit is
      arbitrary); filter them first if that matters.
    min_count: samples needed for a mode to count as covered.
    return_counts: also return the ``[1000]`` int64 histogram.
    batch_size: classifier batch (memory / speed only).

  Returns:
    ``{'modes': int, 'kl': float, 'num_samples': int}`` (+ ``'counts'``).
  """
  if min_count < 1:
    raise ValueError(f'min_count={min_count} must be >= 1')
  digits = stacked_mnist_digits(classifier_params, samples,
                                batch_size=batch_size)
  counts = mode_histogram(stacked_mnist.modes_from_digits(digits), NUM_MODES)
  result = {
      'modes': int(np.sum(counts >= min_count)),
      'kl': kl_to_uniform(counts),
      'num_samples': int(digits.shape[0]),
  }
  if return_counts:
    result['counts'] = counts
  return result
