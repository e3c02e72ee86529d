"""Evaluators: what the training loop (at ``eval_every`` steps) and offline
evaluation (:mod:`gan_stability.eval.offline`) run on a batch of samples.

An evaluator takes generated samples (from a fixed latent batch, so
successive evaluations are comparable) and a step, returns scalar metrics,
and writes the sample figure to ``sample_dir`` when one is given. The 2-D
mixtures get mode coverage; images get the metrics named in
``config.eval.metrics`` (:mod:`gan_stability.eval.registry`). Every
evaluator also reports ``diversity``
(:func:`gan_stability.metrics.dynamics.sample_diversity`).

The real side of the image metrics uses the first ``config.eval.num_real``
images of ``config.eval.real_split`` (default: the training split); their
FID statistics come from a packaged file when one matches
(:mod:`gan_stability.eval.reference`), else are computed once and cached
under ``config.eval.cache_dir`` (default ``<workdir>/eval_cache``).
Samples are quantised to uint8 before any metric when
``config.eval.quantize``, and Inception inputs resized in the
``config.eval.fid_resize`` mode (docs/metrics.md, "Which FID?").
"""

from __future__ import annotations

import os

import jax
import numpy as np

from gan_stability import data as data_lib
from gan_stability import distributed
from gan_stability import plotting
from gan_stability.data import mixtures
from gan_stability.errors import writing
from gan_stability.eval import reference, registry
from gan_stability.metrics import classifier, dynamics, fid_kid, inception
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
      path = os.path.join(sample_dir, f'step_{step:07d}.png')
      with writing('sample figure', path):
        image = plotting.save_scatter(
            path, samples, self.mixture.centers,
            f"step {step}: {result['modes']} modes, "
            f"{result['high_quality']:.1f}% HQ")
      if writer is not None:
        writer.add_image('samples', image, step)
    return result


class ImageEvaluator:
  """A grid of generated images plus the metrics named in ``config.eval``
  (computed in the order of :func:`registry.plan`). The feature extractors
  and the real side's features are loaded on first use and kept; the
  samples' features are computed once per call and feature space."""

  def __init__(self, config, *, workdir: str | None = None):
    self.config = config
    self.ncols = config.data.samples_per_row
    self.metrics = registry.parse(config.eval.metrics)
    self.cache_dir = config.eval.cache_dir or (
        os.path.join(workdir, 'eval_cache') if workdir else None)
    self._classifier = None
    self._inception = None
    self._real = {}
    self._real_stats = {}
    self._fake = {}
    self._samples = None
    self.kid_key = None

  def classifier(self):
    if self._classifier is None:
      self._classifier = classifier.load_classifier(
          self.config.eval.classifier_path or None)
    return self._classifier

  def inception(self):
    if self._inception is None:
      if not self.config.eval.inception_path:
        raise ValueError('config.eval.inception_path: required by the '
                         "'fid' / 'kid' / inception-space metrics (the FID "
                         'Inception .npz, see third_party/README.md)')
      self._inception = inception.load_params(self.config.eval.inception_path)
    return self._inception

  def features(self, space: str, images: np.ndarray) -> np.ndarray:
    """``images`` float in [-1, 1] (generated) or uint8 (real). In a
    multi-process run each process computes its share of the rows and the
    features are gathered (:func:`gan_stability.distributed.map_rows`)."""
    if space == 'classifier':
      params = self.classifier()
      return distributed.map_rows(
          lambda x: classifier.features(params, registry.grey(x)), images)
    params = self.inception()
    mode = self.config.eval.fid_resize

    def inception_features(x):
      return inception.features(
          params, inception.to_pixels(x, quantize_samples=False), resize=mode)

    return distributed.map_rows(inception_features, images)

  def fake_features(self, space: str) -> np.ndarray:
    """The features of the samples being evaluated."""
    if space not in self._fake:
      self._fake[space] = self.features(space, self._samples)
    return self._fake[space]

  def real_split(self) -> str:
    return self.config.eval.real_split or self.config.data.split

  def real_features(self, space: str) -> np.ndarray:
    """Features of the first ``eval.num_real`` images of the real split
    (``eval.real_split``, default ``data.split``)."""
    if space not in self._real:
      real = data_lib.load_split(self.config, self.real_split(),
                                 self.config.eval.num_real)
      self._real[space] = self.features(space, real)
    return self._real[space]

  def real_stats(self, space: str):
    """``(mu, sigma)`` of the real side: a packaged reference file
    (:mod:`gan_stability.eval.reference`) when one matches the protocol and
    the Inception weights, else computed once and cached in ``cache_dir``;
    kept for the following evaluations."""
    if space not in self._real_stats:
      self._real_stats[space] = self._load_real_stats(space)
    return self._real_stats[space]

  def _load_real_stats(self, space: str):
    c = self.config
    key = reference.Key(data_lib.stats_name(c, self.real_split()),
                        self.real_split(), c.eval.num_real,
                        space, c.eval.fid_resize, c.data.pad_to)
    packaged = reference.find(key) if space == 'inception' else None
    ok = packaged is not None and reference.usable(
        packaged, inception.params_digest(self.inception()))
    # Decided together: a process that computes the real features takes part
    # in collectives the others must join.
    if not distributed.any_process(not ok):
      return fid_kid.load_stats(packaged)
    if self.cache_dir is None:
      return fid_kid.gaussian_stats(self.real_features(space))
    name = key.cache_name()
    if distributed.any_process(not os.path.exists(
        os.path.join(self.cache_dir, f'{name}.npz'))):
      self.real_features(space)
    return fid_kid.reference_stats(name, lambda: self.real_features(space),
                                   cache_dir=self.cache_dir)

  def compute_metrics(self, samples: np.ndarray, step: int) -> dict:
    """The configured metrics of ``samples`` (KID subsets drawn from
    ``fold_in(key(config.seed), step)``)."""
    if self.config.eval.quantize:
      samples = inception.quantize(samples)
    self._samples, self._fake = samples, {}
    self.kid_key = jax.random.fold_in(jax.random.key(self.config.seed), step)
    out = {}
    plan = registry.plan(self.metrics, self.config.eval.features)
    try:
      for name in plan:
        metric = registry.METRICS[name]
        out.update(zip(metric.outputs, metric.compute(self, samples)))
    finally:
      self._samples, self._fake = None, {}
    if any(registry.space_of(n, self.config.eval.features) == 'inception'
           for n in plan):  # the FID protocol beside every Inception metric
      out['fid_resize'] = self.config.eval.fid_resize
      out['quantized'] = bool(self.config.eval.quantize)
    return out

  def __call__(self, samples: np.ndarray, step: int, *, sample_dir: str | None,
               writer=None) -> dict:
    finite = bool(np.all(np.isfinite(samples)))
    if sample_dir is not None:
      path = os.path.join(sample_dir, f'step_{step:07d}.png')
      with writing('sample figure', path):
        grid = plotting.save_image_grid(
            path, samples[:self.ncols * self.ncols], self.ncols)
      if writer is not None:
        writer.add_image('samples', grid, step)
    result = {'sample_mean': float(np.mean(samples)),
              'sample_std': float(np.std(samples)),
              'samples_finite': finite,
              'diversity': dynamics.sample_diversity(samples)}
    if finite and self.metrics:
      result.update(self.compute_metrics(samples, step))
    return result


def make_evaluator(config, *, workdir: str | None = None):
  """The evaluator of ``config.dataset``'s kind."""
  if data_lib.kind(config.dataset) == 'mixture':
    return MixtureEvaluator(config)
  return ImageEvaluator(config, workdir=workdir)
