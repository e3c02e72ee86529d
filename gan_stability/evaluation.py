"""Evaluators run by the training loop at ``eval_every`` steps (and by
``experiments/evaluate.py``), chosen by the kind of dataset. Each takes a
batch of generated samples (from a fixed latent batch, so successive
evaluations are comparable) and returns scalar metrics; it also writes the
sample figure under ``workdir/samples/``.

Image metrics are chosen by name in ``config.eval.metrics`` (comma-separated):

=================  =========================================================
``digits``         MNIST-classifier label histogram of 1-channel samples:
                   ``digit_modes`` (of 10), ``digit_kl`` (to uniform) and
                   ``digit_confident``: the share of samples the classifier
                   labels with softmax probability >= 0.9 (recognisable
                   digits; real t10k digits: 0.99).
``stacked_modes``  Stacked-MNIST ``modes`` (of 1,000) and ``kl`` (VEEGAN /
                   PacGAN protocol; 26,000 samples in the papers).
``cfid``           FID in the MNIST classifier's 128-d feature space.
``ckid``           KID (x 1e3) in that space.
``fid`` ``kid``    FID / KID (x 1e3) on FID-Inception features
                   (``config.eval.inception_path``).
``pr`` ``dc``      precision / recall (k=3) and density / coverage (k=5) in
                   ``config.eval.features`` space (``classifier`` |
                   ``inception``).
=================  =========================================================

The real side uses the first ``config.eval.num_real`` training images (its
FID statistics are cached under ``config.eval.cache_dir``, default
``<workdir>/eval_cache``). Every evaluator also reports ``diversity``
(:func:`gan_stability.metrics.dynamics.sample_diversity`).
"""

from __future__ import annotations

import os

import numpy as np

from gan_stability import config as config_lib
from gan_stability import plotting
from gan_stability.data import mixtures
from gan_stability.metrics import dynamics
from gan_stability.metrics import mixtures as mixture_metrics

class MixtureEvaluator:
  """Modes captured, % high quality and reverse KL; a scatter plot."""

  def __init__(self, config):
    self.mixture = mixtures.from_config(config)

  def __call__(self, samples: np.ndarray, step: int, *, sample_dir: str | None,
               writer=None) -> dict:
    result = mixture_metrics.mode_metrics(samples, self.mixture.centers,
                                          self.mixture.sigma)
    result['diversity'] = dynamics.sample_diversity(samples)
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
  """A grid of generated images plus the metrics named in ``config.eval``."""

  def __init__(self, config, *, workdir: str | None = None):
    self.config = config
    self.ncols = config.data.samples_per_row
    ev = config.get('eval', None)
    self.metrics = (config_lib.parse_eval_metrics(ev.metrics)
                    if ev is not None else ())
    self.ev = ev
    self.cache_dir = None
    if ev is not None:
      self.cache_dir = ev.cache_dir or (
          os.path.join(workdir, 'eval_cache') if workdir else None)
    self._classifier = None
    self._inception = None
    self._real = {}

  # Feature extractors and real-data features, loaded on first use.
  def classifier(self):
    if self._classifier is None:
      from gan_stability.metrics import classifier  # pylint: disable=g-import-not-at-top
      self._classifier = classifier.load_classifier(
          self.ev.classifier_path or None)
    return self._classifier

  def inception(self):
    if self._inception is None:
      from gan_stability.metrics import inception  # pylint: disable=g-import-not-at-top
      if not self.ev.inception_path:
        raise ValueError('config.eval.inception_path: required by the '
                         "'fid' / 'kid' / inception-space metrics (the FID "
                         'Inception .npz, see third_party/README.md)')
      self._inception = inception.load_params(self.ev.inception_path)
    return self._inception

  def features(self, space: str, images: np.ndarray) -> np.ndarray:
    """``images`` float in [-1, 1] (generated) or uint8 (real)."""
    if space == 'classifier':
      from gan_stability.metrics import classifier  # pylint: disable=g-import-not-at-top
      return classifier.features(self.classifier(), _grey(images))
    from gan_stability.metrics import inception  # pylint: disable=g-import-not-at-top
    pixels = images if images.dtype == np.uint8 else (
        (np.clip(images, -1.0, 1.0) + 1.0) * 127.5)
    return inception.features(self.inception(), pixels)

  def real_features(self, space: str) -> np.ndarray:
    if space not in self._real:
      from gan_stability import data as data_lib  # pylint: disable=g-import-not-at-top
      from gan_stability.data import images as images_lib  # pylint: disable=g-import-not-at-top
      real = data_lib.load_images(self.config)[:self.ev.num_real]
      if self.config.data.pad_to:  # as the training images
        real = images_lib.pad_images(real, self.config.data.pad_to)
      self._real[space] = self.features(space, real)
    return self._real[space]

  def real_stats(self, space: str):
    from gan_stability.metrics import fid_kid as fid_lib  # pylint: disable=g-import-not-at-top
    c = self.config
    name = (f"{c.dataset.replace(':', '_')}-{c.data.split}-{self.ev.num_real}"
            f'-{space}')
    if self.cache_dir is None:
      return fid_lib.gaussian_stats(self.real_features(space))
    return fid_lib.reference_stats(name, lambda: self.real_features(space),
                                   cache_dir=self.cache_dir)

  def compute_metrics(self, samples: np.ndarray, step: int) -> dict:
    import jax  # pylint: disable=g-import-not-at-top
    from gan_stability.metrics import fid_kid as fid_lib  # pylint: disable=g-import-not-at-top
    out = {}
    wanted = set(self.metrics)
    if 'digits' in wanted:
      from gan_stability.metrics import classifier, modes  # pylint: disable=g-import-not-at-top
      logits = classifier.predict_logits(self.classifier(), _grey(samples))
      counts = modes.mode_histogram(np.argmax(logits, axis=-1), 10)
      out['digit_modes'] = int(np.sum(counts > 0))
      out['digit_kl'] = modes.kl_to_uniform(counts)
      out['digit_confident'] = float(np.mean(
          classifier.max_probability(logits) >= CONFIDENT))
    if 'stacked_modes' in wanted:
      from gan_stability.metrics import modes  # pylint: disable=g-import-not-at-top
      r = modes.stacked_mnist_modes(self.classifier(), samples)
      out['modes'], out['kl'] = r['modes'], r['kl']
    key = jax.random.fold_in(jax.random.key(self.config.seed), step)
    for space, fid_name, kid_name in (('classifier', 'cfid', 'ckid'),
                                      ('inception', 'fid', 'kid')):
      need_space = (fid_name in wanted or kid_name in wanted or
                    (wanted & {'pr', 'dc'} and self.ev.features == space))
      if not need_space:
        continue
      fake = self.features(space, samples)
      if fid_name in wanted:
        mu, sigma = fid_lib.gaussian_stats(fake)
        out[fid_name] = fid_lib.fid_from_stats(mu, sigma,
                                               *self.real_stats(space))
      if kid_name in wanted:
        out[kid_name] = 1e3 * fid_lib.kid(
            self.real_features(space), fake, key=key,
            subset_size=min(1000, len(fake)))
      if self.ev.features == space and wanted & {'pr', 'dc'}:
        from gan_stability.metrics import manifold  # pylint: disable=g-import-not-at-top
        real = self.real_features(space)
        if 'pr' in wanted:
          out['precision'], out['recall'] = manifold.precision_recall(
              real, fake, k=3)
        if 'dc' in wanted:
          out['density'], out['coverage'] = manifold.density_coverage(
              real, fake, k=5)
    return out

  def __call__(self, samples: np.ndarray, step: int, *, sample_dir: str | None,
               writer=None) -> dict:
    finite = bool(np.all(np.isfinite(samples)))
    if sample_dir is not None:
      grid = plotting.save_image_grid(
          os.path.join(sample_dir, f'step_{step:07d}.png'),
          samples[:self.ncols * self.ncols], self.ncols)
      if writer is not None:
        writer.add_image('samples', grid, step)
    result = {'sample_mean': float(np.mean(samples)),
              'sample_std': float(np.std(samples)),
              'samples_finite': finite,
              'diversity': dynamics.sample_diversity(samples)}
    if finite and self.metrics:
      result.update(self.compute_metrics(samples, step))
    return result


CONFIDENT = 0.9  # softmax probability of a 'recognisable' digit


def _grey(images: np.ndarray) -> np.ndarray:
  """1-channel images for the MNIST classifier (uint8 or [-1, 1] floats)."""
  if images.ndim == 4 and images.shape[-1] != 1:
    raise ValueError('the MNIST classifier needs 1-channel images; got shape '
                     f'{images.shape} (use stacked_modes for Stacked MNIST)')
  return images


def make_evaluator(config, *, workdir: str | None = None):
  if config_lib.data_kind(config.dataset) == 'mixture':
    return MixtureEvaluator(config)
  return ImageEvaluator(config, workdir=workdir)
