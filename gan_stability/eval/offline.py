"""Offline evaluation of a run's checkpoint, with the evaluators the loop
uses.

:func:`evaluate_checkpoint` rebuilds the run from its ``config.json``,
restores the latest (or a given) checkpoint, draws ``num_samples`` samples
from the sampling network (the EMA generator when the run keeps one, the
VAE's decoder) and computes the metrics the config asks for
(``config.eval.metrics`` for images, mode coverage for the 2-D mixtures),
optionally overridden. The result is appended to ``metrics.jsonl`` with
``evaluate_only: true`` so it is never mistaken for a training record.
:func:`evaluate_held_out` scores real held-out images with the same
evaluator (the reference values). CLI: ``experiments/evaluate.py``.
"""

from __future__ import annotations

import jax

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import writers
from gan_stability.data import images as images_lib
from gan_stability.eval import evaluators
from gan_stability.train import tasks
from gan_stability.train.workdir import load_run_config


def _eval_config(workdir: str, num_samples: int | None, metrics: str | None,
                 eval_overrides: dict | None = None):
  """The run's config with the evaluation overrides, validated."""
  config = load_run_config(workdir)
  if num_samples is not None:
    config.eval_samples = int(num_samples)
  if metrics is not None:
    if 'eval' not in config:
      raise config_lib.ConfigError('--metrics: only image runs have '
                                   'config.eval.metrics')
    config.eval.metrics = metrics
  if eval_overrides:
    if 'eval' not in config:
      raise config_lib.ConfigError(
          f'config.eval: only image runs have it (overrides '
          f'{sorted(eval_overrides)})')
    config.eval.update(eval_overrides)
  config_lib.validate(config)
  return config


def evaluate_held_out(workdir: str, *, split: str = 'test',
                      num_samples: int | None = None,
                      metrics: str | None = None) -> dict:
  """The run's evaluator applied to *real* images of ``split`` in place of
  samples: what a generator that reproduced the data would score (the
  reference for FID/KID, precision/recall, density/coverage, digit
  confidence of the same run and protocol). Image runs only; writes nothing.

  Returns:
    ``{'split', 'eval_num_samples', **metrics}`` (the first ``num_samples``
    images of the split, default ``config.eval_samples``).
  """
  config = _eval_config(workdir, num_samples, metrics)
  if 'eval' not in config:
    raise config_lib.ConfigError('--held_out: only image runs have a '
                                 'held-out split')
  try:
    images = data_lib.load_split(config, split, config.eval_samples)
  except config_lib.ConfigError:
    raise
  except ValueError as e:  # e.g. a split the data set does not have
    raise config_lib.ConfigError(f'--held_out={split}: {e}') from e
  evaluator = evaluators.make_evaluator(config, workdir=workdir)
  result = evaluator(images_lib.scale_images(images), 0, sample_dir=None)
  return {'split': split, 'eval_num_samples': len(images), **result}


def evaluate_checkpoint(workdir: str, *, step: int | None = None,
                        num_samples: int | None = None,
                        metrics: str | None = None, seed: int = 0,
                        eval_overrides: dict | None = None,
                        write: bool = True) -> dict:
  """Evaluates checkpoint ``step`` (default latest) of the run in ``workdir``.

  Args:
    workdir: a training run's directory.
    step: the checkpoint step; ``None`` for the latest.
    num_samples: samples to draw (default ``config.eval_samples``).
    metrics: overrides ``config.eval.metrics`` for images (e.g.
      ``'stacked_modes'``, ``'cfid,pr,dc'``); validated like the config.
    seed: seeds the latents (``fold_in(key(seed), step)``), independent of
      the training keys.
    eval_overrides: other ``config.eval`` fields for this evaluation (e.g.
      ``{'num_real': 10000, 'inception_path': PATH}``); each is recorded as
      ``eval_<field>``.
    write: append the result to ``metrics.jsonl``.

  Returns:
    ``{'step', 'evaluate_only': True, 'eval_num_samples', **metrics}``.
  """
  config = _eval_config(workdir, num_samples, metrics, eval_overrides)
  sample_fn, step = tasks.restore_sampler(config, workdir, step)
  samples = sample_fn(jax.random.fold_in(jax.random.key(seed), step),
                      config.eval_samples)
  evaluator = evaluators.make_evaluator(config, workdir=workdir)
  result = evaluator(samples, step, sample_dir=None)
  record = {'evaluate_only': True, 'eval_num_samples': len(samples),
            **{f'eval_{k}': v for k, v in (eval_overrides or {}).items()},
            'eval_seed': seed, **result}
  if write:
    writer = writers.MetricWriter(workdir, tensorboard=False)
    writer.write(step, record)
    writer.close()
  return {'step': step, **record}
