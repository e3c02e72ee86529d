"""``train_and_evaluate(config, workdir)``: the training loop and the workdir contract.

Files written (process 0): ``config.json``, ``metrics.jsonl`` (one JSON
object per logged step: ``step``, the train metrics averaged over the steps
since the previous record, and at evaluation steps ``modes``,
``high_quality``, ``kl``), TensorBoard event files, ``samples/step_*.png``
and orbax checkpoints under ``checkpoints/``. Running again with the same
workdir resumes from the latest checkpoint; the data position, the optimiser
and spectral-norm states and the step (hence every PRNG key) are restored.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import numpy as np
from absl import logging

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import evaluation, models, writers
from gan_stability.checkpoint import Checkpointer
from gan_stability.train import parallel, state as state_lib, step as step_lib


class DivergenceError(RuntimeError):
  """Raised when a loss or gradient norm becomes NaN or infinite."""


def _check_config_file(config, workdir: str) -> None:
  """Writes ``config.json``, or checks that a resumed run's config matches."""
  path = os.path.join(workdir, 'config.json')
  new = config.to_dict()
  if os.path.exists(path):
    with open(path) as f:
      old = json.load(f)
    resumable = set(config_lib.RESUMABLE_CHANGES)
    if config.optimizer.lr_schedule != 'constant':
      resumable.discard('num_steps')  # the schedule depends on it
    changed = [k for k in config_lib.diff(config_lib.flatten(old),
                                          config_lib.flatten(new))
               if k not in resumable]
    if changed:
      raise config_lib.ConfigError(
          f'config.{changed[0]}: differs from the run already in {workdir} '
          f'(changed: {changed}); use a new --workdir to start a different run')
  if jax.process_index() == 0:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(new, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def _host_means(chunks: list[dict]) -> dict:
  """Mean of each metric over all steps in the stacked per-dispatch chunks."""
  keys = chunks[0].keys()
  return {k: float(np.mean(np.concatenate([np.atleast_1d(c[k]) for c in chunks])))
          for k in keys}


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (or resumes) the run in ``workdir``; returns the final metrics.

  Raises:
    ConfigError: invalid config, or a config that differs from the one the
      workdir was started with (before anything is compiled).
    DivergenceError: a NaN/Inf loss or gradient; no checkpoint is written
      for the diverged state.
  """
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  _check_config_file(config, workdir)

  mesh = parallel.make_mesh(config.num_devices)
  evaluator = evaluation.make_evaluator(config)
  iterator = data_lib.make_iterator(config, seed=config.seed)
  data_shape = iterator.element_shape
  generator, discriminator = models.build(config.model, data_shape)

  root = jax.random.key(config.seed)
  init_key, train_key, eval_key = jax.random.split(root, 3)
  repl = parallel.replicated(mesh)
  state = jax.device_put(
      state_lib.init_state(config, generator, discriminator, init_key,
                           data_shape), repl)

  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'),
                      max_to_keep=config.keep_checkpoints)
  writer = writers.MetricWriter(workdir, tensorboard=config.write_tensorboard)
  start = ckpt.latest_step()
  if start is not None:
    state, meta = ckpt.restore(start, state)
    iterator.set_state(meta['data'])
    logging.info('resumed %s at step %d', workdir, start)
    writer.truncate_after(start)
  else:
    start = 0
    writer.truncate_after(0)

  batch_axis = 2  # [k, n_critic, B, ...]
  bsharding = parallel.batch_sharding(mesh, batch_axis)
  latent_sharding = parallel.batch_sharding(mesh, 0)
  train_step = step_lib.make_train_step(config, generator, discriminator,
                                        latent_sharding=latent_sharding)
  multi_step = jax.jit(step_lib.make_multi_step(
      train_step, unroll=step_lib.resolve_loop_impl(config)),
                       in_shardings=(repl, {'x': bsharding}, repl),
                       out_shardings=(repl, repl), donate_argnums=0)
  sample = jax.jit(step_lib.make_sample_fn(generator, config.model.z_dim),
                   static_argnums=3)

  def evaluate(state, step):
    g_params = state_lib.eval_generator_params(state)
    samples = np.asarray(jax.device_get(
        sample(g_params, state.g_collections, eval_key, config.eval_samples)))
    sample_dir = None
    if config.write_samples and jax.process_index() == 0:
      sample_dir = os.path.join(workdir, 'samples')
      os.makedirs(sample_dir, exist_ok=True)
    return evaluator(samples, step, sample_dir=sample_dir, writer=writer), samples

  progress = writers.Progress(config.num_steps, start)
  step = start
  chunks: list[dict] = []
  last: dict = {}
  k_max = config.steps_per_dispatch
  try:
    while step < config.num_steps:
      k = min(k_max, config.num_steps - step)
      local = np.stack([np.stack([next(iterator) for _ in range(config.n_critic)])
                        for _ in range(k)])
      batch = {'x': parallel.global_batch(local, bsharding, batch_axis)}
      new_state, metrics = multi_step(state, batch, train_key)
      metrics = jax.device_get(metrics)  # waits: one sync per dispatch
      bad = [name for name, v in metrics.items()
             if not np.all(np.isfinite(v))]
      if bad:
        first = int(np.argmax(~np.isfinite(metrics[bad[0]])))
        record = {'diverged': True, 'bad_metrics': bad,
                  **{n: float(np.asarray(metrics[n])[first]) for n in bad}}
        writer.write(step + first + 1, record)
        raise DivergenceError(
            f'non-finite {bad} at step {step + first + 1} '
            f"({'discriminator' if bad[0].startswith('d') else 'generator'} "
            f'first); last checkpoint kept at step {ckpt.latest_step()}')
      state = new_state
      step += k
      chunks.append(metrics)
      is_last = step == config.num_steps
      if step % config.log_every == 0 or is_last:
        record = _host_means(chunks)
        chunks = []
        if step % config.eval_every == 0 or is_last:
          record.update(evaluate(state, step)[0])
        writer.write(step, record)
        progress.report(step, record)
        last = record
      if step % config.checkpoint_every == 0 or is_last:
        ckpt.save(step, state, {'data': iterator.get_state(), 'step': step})
  finally:
    ckpt.close()
    writer.close()
  if not last:  # resumed a finished run: report its final evaluation
    last = dict(evaluate(state, step)[0])
  last['step'] = step
  return last


def final_samples(config, workdir: str) -> np.ndarray:
  """Evaluation samples of the latest checkpoint in ``workdir`` (no training)."""
  config_lib.validate(config)
  data_shape = data_lib.make_iterator(config, seed=config.seed).element_shape
  generator, discriminator = models.build(config.model, data_shape)
  init_key, _, eval_key = jax.random.split(jax.random.key(config.seed), 3)
  state = state_lib.init_state(config, generator, discriminator, init_key,
                               data_shape)
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'))
  step = ckpt.latest_step()
  if step is None:
    raise FileNotFoundError(f'no checkpoint in {workdir}/checkpoints')
  state, _ = ckpt.restore(step, state)
  ckpt.close()
  sample = step_lib.make_sample_fn(generator, config.model.z_dim)
  return np.asarray(sample(state_lib.eval_generator_params(state),
                           state.g_collections, eval_key, config.eval_samples))
