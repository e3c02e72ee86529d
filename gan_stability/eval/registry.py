"""The metric registry: every image metric ``config.eval.metrics`` can name.

Each entry says what it adds to a ``metrics.jsonl`` record, what it needs
(greyscale MNIST-like images for the project's MNIST classifier, Stacked
MNIST, the FID Inception weights, a feature space) and how it is computed.
Config validation (:func:`validate`) and the image evaluator
(:mod:`gan_stability.eval.evaluators`) both read it, so adding a metric is
one entry here (plus its tests).

=================  =========================================================
``digits``         MNIST-classifier label histogram of 1-channel samples:
                   ``digit_modes`` (of 10), ``digit_kl`` (to uniform) and
                   ``digit_confident``: the share of samples the classifier
                   labels with softmax probability >= 0.9 (recognisable
                   digits).
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

The real side is the first ``config.eval.num_real`` training images.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import numpy as np

from gan_stability import data as data_lib
from gan_stability.errors import ConfigError
from gan_stability.metrics import classifier, fid_kid, manifold, modes

# Feature spaces (``config.eval.features``), in the order they are computed.
SPACES = ('classifier', 'inception')
CONFIDENT = 0.9  # softmax probability of a 'recognisable' digit
MIN_SAMPLES = 6  # the fewest evaluation samples any metric accepts
# The settings of the feature-space metrics (the evaluator's and
# experiments.score's): KID is reported x 1e3 over 100 subsets of
# min(KID_SUBSET, n); precision / recall use PR_K neighbours, density /
# coverage DC_K.
KID_SCALE = 1e3
KID_SUBSET = 1000
PR_K = 3
DC_K = 5

# What a metric can need:
GREY = 'grey'            # 1-channel MNIST-like data (the MNIST classifier)
STACKED = 'stacked'      # dataset='stacked_mnist'


@dataclasses.dataclass(frozen=True)
class Metric:
  """A registered image metric.

  Attributes:
    outputs: the keys it adds to an evaluation record.
    compute: ``compute(ctx, samples)`` -> the values of ``outputs``, in
      their order; ``ctx`` is the
      evaluator (:class:`gan_stability.eval.evaluators.ImageEvaluator`:
      ``classifier()``, ``fake_features(space)``, ``real_features(space)``,
      ``real_stats(space)``, ``kid_key``).
    space: the feature space it is computed in; ``None`` for metrics that
      need no features, ``'features'`` for ``config.eval.features``.
    needs: :data:`GREY` and/or :data:`STACKED`.
  """
  outputs: tuple[str, ...]
  compute: Callable[[Any, np.ndarray], tuple]
  space: str | None = None
  needs: frozenset = frozenset()


def grey(images: np.ndarray) -> np.ndarray:
  """1-channel images for the MNIST classifier (uint8 or [-1, 1] floats)."""
  if images.ndim == 4 and images.shape[-1] != 1:
    raise ValueError('the MNIST classifier needs 1-channel images; got shape '
                     f'{images.shape} (use stacked_modes for Stacked MNIST)')
  return images


def _digits(ctx, samples):
  logits = classifier.predict_logits(ctx.classifier(), grey(samples))
  counts = modes.mode_histogram(np.argmax(logits, axis=-1), 10)
  return (int(np.sum(counts > 0)), modes.kl_to_uniform(counts),
          float(np.mean(classifier.max_probability(logits) >= CONFIDENT)))


def _stacked_modes(ctx, samples):
  r = modes.stacked_mnist_modes(ctx.classifier(), samples)
  return r['modes'], r['kl']


def _fid(space: str):
  def compute(ctx, samples):
    del samples
    mu, sigma = fid_kid.gaussian_stats(ctx.fake_features(space))
    return (fid_kid.fid_from_stats(mu, sigma, *ctx.real_stats(space)),)
  return compute


def _kid(space: str):
  def compute(ctx, samples):
    del samples
    fake = ctx.fake_features(space)
    return (KID_SCALE * fid_kid.kid(ctx.real_features(space), fake,
                                    key=ctx.kid_key,
                                    subset_size=min(KID_SUBSET, len(fake))),)
  return compute


def _manifold(fn, k: int):
  """A k-NN manifold metric pair in ``config.eval.features`` space."""
  def compute(ctx, samples):
    del samples
    space = ctx.config.eval.features
    return fn(ctx.real_features(space), ctx.fake_features(space), k=k)
  return compute


METRICS: dict[str, Metric] = {
    'digits': Metric(('digit_modes', 'digit_kl', 'digit_confident'), _digits,
                     needs=frozenset({GREY})),
    'stacked_modes': Metric(('modes', 'kl'), _stacked_modes,
                            needs=frozenset({STACKED})),
    'cfid': Metric(('cfid',), _fid('classifier'), 'classifier',
                   frozenset({GREY})),
    'ckid': Metric(('ckid',), _kid('classifier'), 'classifier',
                   frozenset({GREY})),
    'fid': Metric(('fid',), _fid('inception'), 'inception'),
    'kid': Metric(('kid',), _kid('inception'), 'inception'),
    'pr': Metric(('precision', 'recall'),
                 _manifold(manifold.precision_recall, k=PR_K), 'features'),
    'dc': Metric(('density', 'coverage'),
                 _manifold(manifold.density_coverage, k=DC_K), 'features'),
}


def parse(spec: str) -> tuple[str, ...]:
  """``'cfid, pr'`` -> ``('cfid', 'pr')``; raises ConfigError on unknown
  names."""
  names = tuple(n.strip() for n in spec.split(',') if n.strip())
  bad = [n for n in names if n not in METRICS]
  if bad:
    raise ConfigError(f'config.eval.metrics: unknown {bad}; allowed: '
                      f'{list(METRICS)}')
  return names


def space_of(name: str, features: str) -> str | None:
  """The feature space metric ``name`` is computed in, given
  ``config.eval.features``."""
  space = METRICS[name].space
  return features if space == 'features' else space


def plan(names, features: str) -> list[str]:
  """The order in which metrics are computed (it is the order of their
  outputs in a record): those without features in registry order, then
  each feature space's in registry order."""
  names = set(names)
  order = [n for n in METRICS if n in names and METRICS[n].space is None]
  for space in SPACES:
    order += [n for n in METRICS if n in names and
              METRICS[n].space is not None and space_of(n, features) == space]
  return order


# Why one's own images never get the MNIST-classifier metrics, even
# 28x28x1 ones: the classifier knows digits, and the images' shape is
# known only once they are read, after validation.
_CUSTOM_HINT = {data_lib.CUSTOM: (
    ' (the MNIST classifier knows digits, not one\'s own images; use fid / '
    'kid / pr / dc with eval.inception_path and eval.features=inception)')}


def validate(c) -> None:
  """Checks ``config.eval`` of an image config against the metrics' needs."""
  names = parse(c.eval.metrics)
  info = data_lib.dataset_info(c.dataset)
  is_grey = info is not None and info.channels == 1 and (
      c.dataset in data_lib.DATASETS)
  for m in names:
    needs = METRICS[m].needs
    if GREY in needs and not is_grey:
      raise ConfigError(f'config.eval.metrics: {m!r} uses the MNIST classifier '
                        f'on 1-channel images; dataset {c.dataset!r} is not '
                        'mnist/fashion_mnist' + _CUSTOM_HINT.get(c.dataset, ''))
    if STACKED in needs and c.dataset != 'stacked_mnist':
      raise ConfigError(f"config.eval.metrics: {m!r} needs "
                        f"dataset='stacked_mnist', got {c.dataset!r}")
  in_space = {space_of(m, c.eval.features) for m in names}
  featured = [m for m in names if METRICS[m].space == 'features']
  if c.eval.features == 'classifier' and featured and not is_grey:
    if c.dataset == 'stacked_mnist':
      raise ConfigError("config.eval.features: 'classifier' space takes "
                        '1-channel images; use inception for stacked_mnist')
    raise ConfigError("config.eval.features: 'classifier' space needs MNIST "
                      f'images; use inception for {c.dataset!r}')
  if 'inception' in in_space and not c.eval.inception_path:
    raise ConfigError('config.eval.inception_path: required by eval.metrics='
                      f'{c.eval.metrics!r} (the FID Inception weights .npz)')
  if names and c.eval_samples < MIN_SAMPLES:
    raise ConfigError(f'config.eval_samples: {c.eval_samples} is too few for '
                      f'eval.metrics={c.eval.metrics!r} (need >= '
                      f'{MIN_SAMPLES})')
