"""Evaluate a run's checkpoint after (or during) training.

``evaluate_checkpoint(workdir)`` rebuilds the run from its ``config.json``,
restores the latest (or a given) checkpoint, draws ``num_samples`` samples
from the evaluation generator (the EMA weights when the run keeps them) and
computes the metrics the config asks for (``config.eval.metrics`` for
images, mode coverage for the 2-D mixtures), optionally overridden. The
result is appended to ``metrics.jsonl`` with ``evaluate_only: true`` so it is
never mistaken for a training record. CLI: ``experiments/evaluate.py``.
"""

from __future__ import annotations

import json
import os

import jax
import ml_collections
import numpy as np

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import evaluation, models, writers
from gan_stability.checkpoint import Checkpointer
from gan_stability.train import state as state_lib, step as step_lib

SAMPLE_CHUNK = 1000  # generator batch when drawing many samples


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The ``config.json`` a run wrote, as a ConfigDict."""
  path = os.path.join(workdir, 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no config.json; is {workdir!r} the '
                            'workdir of a training run?')
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def restore_generator(config, workdir: str, step: int | None = None):
  """``(sample_fn, step)``: ``sample_fn(key, n)`` draws ``n`` samples from the
  evaluation generator of checkpoint ``step`` (default: the latest)."""
  data_shape = data_lib.make_iterator(config, seed=config.seed).element_shape
  generator, discriminator = models.build(config.model, data_shape)
  init_key = jax.random.split(jax.random.key(config.seed), 3)[0]
  state = state_lib.init_state(config, generator, discriminator, init_key,
                               data_shape)
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'))
  try:
    available = ckpt.all_steps()
    if not available:
      raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
    if step is None:
      step = max(available)
    elif step not in available:
      raise ValueError(f'--step={step}: no such checkpoint in {workdir}; '
                       f'available: {sorted(available)}')
    state, _ = ckpt.restore(step, state)
  finally:
    ckpt.close()
  g_params = state_lib.eval_generator_params(state)
  sample = jax.jit(step_lib.make_sample_fn(generator, config.model.z_dim),
                   static_argnums=3)

  def sample_fn(key, n):
    chunks = []
    for i, start in enumerate(range(0, n, SAMPLE_CHUNK)):
      m = min(SAMPLE_CHUNK, n - start)
      chunks.append(np.asarray(sample(g_params, state.g_collections,
                                      jax.random.fold_in(key, i), m)))
    return np.concatenate(chunks)

  return sample_fn, step


def evaluate_checkpoint(workdir: str, *, step: int | None = None,
                        num_samples: int | None = None,
                        metrics: str | None = None, seed: int = 0,
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
    write: append the result to ``metrics.jsonl``.

  Returns:
    ``{'step', 'evaluate_only': True, 'eval_num_samples', **metrics}``.
  """
  config = load_run_config(workdir)
  if num_samples is not None:
    config.eval_samples = int(num_samples)
  if metrics is not None:
    if 'eval' not in config:
      raise config_lib.ConfigError('--metrics: only image runs have '
                                   'config.eval.metrics')
    config.eval.metrics = metrics
  config_lib.validate(config)
  sample_fn, step = restore_generator(config, workdir, step)
  samples = sample_fn(jax.random.fold_in(jax.random.key(seed), step),
                      config.eval_samples)
  evaluator = evaluation.make_evaluator(config, workdir=workdir)
  result = evaluator(samples, step, sample_dir=None)
  record = {'evaluate_only': True, 'eval_num_samples': len(samples),
            'eval_seed': seed, **result}
  if write:
    writer = writers.MetricWriter(workdir, tensorboard=False)
    writer.write(step, record)
    writer.close()
  return {'step': step, **record}
