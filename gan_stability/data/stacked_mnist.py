"""Stacked MNIST: three MNIST digits as the R, G, B channels, 1,000 modes.

Introduced by Metz et al. 2017 (Unrolled GANs, sec. 3.3) and used by
Srivastava et al. 2017 (VEEGAN, sec. 5.2) and Lin et al. 2018 (PacGAN,
sec. 4.1) to count the modes a GAN covers: example ``j`` stacks digits
``(d_R, d_G, d_B)``, and its mode is ``100 d_R + 10 d_G + d_B`` in
``[0, 1000)``. A pretrained MNIST classifier applied channel by channel gives
the modes of generated samples.

Construction (deterministic): the source indices are
``numpy.random.default_rng([seed, STREAM]).integers(0, N, size=(num_examples,
3))``; column ``c`` picks channel ``c`` (0 = R, 1 = G, 2 = B), so the three
digits of an example are drawn independently and uniformly (with replacement)
from the ``N`` source images, and modes are uniform over 1,000 when the
classes are balanced. ``STREAM`` keeps this generator distinct from the
``[seed, epoch]`` shuffling streams of :mod:`.images`.

Size: PacGAN's released code (``num_training_sample: 128000`` in
``stacked_MNIST_experiments/*/config.py``) builds a fixed training set of
128,000 stacked images, the default here (configurable as
``config.data.stacked_num_examples``); it evaluates on 26,000 generated
samples. The set is built in memory: 128,000 x 28 x 28 x 3 uint8 = 301 MB.
"""

from __future__ import annotations

import numpy as np

DEFAULT_NUM_EXAMPLES = 128_000
NUM_MODES = 1000
STREAM = 0x5354414B  # 'STAK'


def modes_from_digits(digits: np.ndarray) -> np.ndarray:
  """``[..., 3]`` digits (R, G, B) -> int64 modes ``100 d_R + 10 d_G + d_B``."""
  d = np.asarray(digits, dtype=np.int64)
  return 100 * d[..., 0] + 10 * d[..., 1] + d[..., 2]


def digits_from_modes(modes: np.ndarray) -> np.ndarray:
  """Inverse of :func:`modes_from_digits`: ``[...]`` -> ``[..., 3]``."""
  m = np.asarray(modes, dtype=np.int64)
  return np.stack([m // 100, (m // 10) % 10, m % 10], axis=-1)


def source_indices(num_source: int, *, num_examples: int,
                   seed: int) -> np.ndarray:
  """int64 ``[num_examples, 3]``: the source image of each channel."""
  rng = np.random.default_rng([seed, STREAM])
  return rng.integers(0, num_source, size=(num_examples, 3), dtype=np.int64)


def make_stacked_mnist(images: np.ndarray, labels: np.ndarray, *,
                       num_examples: int = DEFAULT_NUM_EXAMPLES,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Builds a Stacked MNIST set from single-digit images.

  Args:
    images: uint8 ``[N, H, W, 1]`` (or ``[N, H, W]``) digits, e.g. MNIST train.
    labels: ``[N]`` digit labels in 0..9.
    num_examples: size of the stacked set.
    seed: construction seed (the dataset, not the training run).

  Returns:
    ``(stacked, modes)``: uint8 ``[num_examples, H, W, 3]`` whose channel
    ``c`` is ``images[idx[:, c]]``, and int64 ``[num_examples]`` modes
    ``100 labels[idx[:, 0]] + 10 labels[idx[:, 1]] + labels[idx[:, 2]]``,
    with ``idx = source_indices(N, num_examples=num_examples, seed=seed)``.
  """
  images = np.asarray(images)
  if images.ndim == 4:
    if images.shape[-1] != 1:
      raise ValueError(f'expected single-channel digits, got {images.shape}')
    images = images[..., 0]
  if images.dtype != np.uint8 or images.ndim != 3:
    raise ValueError(f'images must be uint8 [N, H, W, 1], got {images.dtype} '
                     f'{images.shape}')
  labels = np.asarray(labels).astype(np.int64)
  if labels.shape != images.shape[:1]:
    raise ValueError(f'{images.shape[0]} images but labels of shape '
                     f'{labels.shape}')
  if labels.size and (labels.min() < 0 or labels.max() > 9):
    raise ValueError('digit labels must lie in 0..9, got '
                     f'[{labels.min()}, {labels.max()}]')
  if num_examples <= 0:
    raise ValueError(f'config.data.stacked_num_examples={num_examples} must '
                     'be positive')
  idx = source_indices(images.shape[0], num_examples=num_examples, seed=seed)
  stacked = np.empty((num_examples,) + images.shape[1:] + (3,), np.uint8)
  for c in range(3):
    stacked[..., c] = images[idx[:, c]]
  return stacked, modes_from_digits(labels[idx])
