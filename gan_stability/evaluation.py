"""Evaluators run by the training loop at ``eval_every`` steps, chosen by the
kind of dataset. Each takes a batch of generated samples (from a fixed latent
batch, so successive evaluations are comparable) and returns scalar metrics;
it also writes the sample figure under ``workdir/samples/``."""

from __future__ import annotations

import os

import numpy as np

from gan_stability import config as config_lib
from gan_stability import plotting
from gan_stability.data import mixtures
from gan_stability.metrics import mixtures as mixture_metrics


class MixtureEvaluator:
  """Modes captured, % high quality and reverse KL; a scatter plot."""

  def __init__(self, config):
    self.mixture = mixtures.from_config(config)

  def __call__(self, samples: np.ndarray, step: int, *, sample_dir: str | None,
               writer=None) -> dict:
    result = mixture_metrics.mode_metrics(samples, self.mixture.centers,
                                          self.mixture.sigma)
    if sample_dir is not None:
      image = plotting.save_scatter(
          os.path.join(sample_dir, f'step_{step:07d}.png'), samples,
          self.mixture.centers,
          f"step {step}: {result['modes']} modes, "
          f"{result['high_quality']:.1f}% HQ")
      if writer is not None:
        writer.add_image('samples', image, step)
    return result


class ImageEvaluator:
  """A grid of generated images (metrics such as FID come from issue #4)."""

  def __init__(self, config):
    self.ncols = config.data.samples_per_row

  def __call__(self, samples: np.ndarray, step: int, *, sample_dir: str | None,
               writer=None) -> dict:
    finite = bool(np.all(np.isfinite(samples)))
    if sample_dir is not None:
      grid = plotting.save_image_grid(
          os.path.join(sample_dir, f'step_{step:07d}.png'), samples, self.ncols)
      if writer is not None:
        writer.add_image('samples', grid, step)
    return {'sample_mean': float(np.mean(samples)),
            'sample_std': float(np.std(samples)),
            'samples_finite': finite}


def make_evaluator(config):
  if config_lib.data_kind(config.dataset) == 'mixture':
    return MixtureEvaluator(config)
  return ImageEvaluator(config)
