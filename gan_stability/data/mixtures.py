"""2-D mixtures of Gaussians: the ring and the grid of the mode-collapse literature.

* ring: ``num_modes`` Gaussians with means ``radius * (cos a_i, sin a_i)``,
  ``a_i = 2 pi i / num_modes`` (i = 0..num_modes-1; ``linspace(0, 2 pi, n)``
  would repeat the first mode), isotropic std ``sigma``. PacGAN (Lin et al.
  2018) uses 8 modes, radius 1, sigma 0.01.
* grid: ``size x size`` Gaussians on ``spacing * {-(size-1)/2 .. (size-1)/2}^2``,
  std ``sigma``. PacGAN uses 5 x 5 on {-4, -2, 0, 2, 4}^2, sigma 0.05.

Batches are a pure function of ``(seed, index)``: batch ``i`` is drawn from
``numpy.random.default_rng([seed, i])``, so the iterator position is a single
integer and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses

import numpy as np


def ring_centers(num_modes: int = 8, radius: float = 1.0) -> np.ndarray:
  """``[num_modes, 2]`` means on a circle, at angles ``2 pi i / num_modes``."""
  angles = 2.0 * np.pi * np.arange(num_modes) / num_modes
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=-1)


def grid_centers(size: int = 5, spacing: float = 2.0) -> np.ndarray:
  """``[size**2, 2]`` means on a square grid centred at the origin."""
  coords = spacing * (np.arange(size) - (size - 1) / 2.0)
  xx, yy = np.meshgrid(coords, coords, indexing='ij')
  return np.stack([xx.ravel(), yy.ravel()], axis=-1)


@dataclasses.dataclass(frozen=True)
class Mixture:
  """An isotropic Gaussian mixture with equal weights."""
  centers: np.ndarray
  sigma: float

  @property
  def num_modes(self) -> int:
    return self.centers.shape[0]

  def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` samples as float32 ``[n, dim]``."""
    idx = rng.integers(0, self.num_modes, size=n)
    noise = rng.standard_normal((n, self.centers.shape[1]))
    return (self.centers[idx] + self.sigma * noise).astype(np.float32)


def from_config(config) -> Mixture:
  """The mixture named by ``config.dataset`` with ``config.data`` parameters."""
  d = config.data
  if config.dataset == 'ring':
    return Mixture(ring_centers(d.ring_modes, d.ring_radius), d.ring_sigma)
  if config.dataset == 'grid':
    return Mixture(grid_centers(d.grid_size, d.grid_spacing), d.grid_sigma)
  raise ValueError(f'config.dataset: unknown dataset {config.dataset!r}; '
                   "allowed: ['grid', 'ring']")


class MixtureIterator:
  """Deterministic, resumable iterator of (process-local) global batches,
  ``{'x': float32 [n, dim]}``.

  Every process computes the same global batch of ``global_batch`` rows and
  keeps rows ``[process_index * n, (process_index + 1) * n)`` with
  ``n = global_batch / process_count``, so the data a run sees does not depend
  on the number of processes or devices.
  """

  def __init__(self, mixture: Mixture, *, global_batch: int, seed: int,
               process_index: int = 0, process_count: int = 1):
    if global_batch % process_count:
      raise ValueError(f'config.batch_size={global_batch} is not divisible by '
                       f'the process count {process_count}')
    self.mixture = mixture
    self.global_batch = global_batch
    self.seed = seed
    self.local_batch = global_batch // process_count
    self.offset = process_index * self.local_batch
    self.index = 0

  @property
  def element_shape(self) -> tuple[int, ...]:
    return (self.mixture.centers.shape[1],)

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([self.seed, self.index])
    batch = self.mixture.sample(rng, self.global_batch)
    self.index += 1
    return {'x': batch[self.offset:self.offset + self.local_batch]}

  def get_state(self) -> dict:
    return {'index': int(self.index)}

  def set_state(self, state: dict) -> None:
    self.index = int(state['index'])
