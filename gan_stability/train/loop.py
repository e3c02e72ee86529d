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
import os
import signal
import threading

import jax
import numpy as np
from absl import logging

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import evaluation, models, writers
from gan_stability.checkpoint import Checkpointer
from gan_stability.metrics import dynamics
from gan_stability.models.layers import SPECTRAL_STATS
from gan_stability.kernels import compile_options
from gan_stability.train import parallel, state as state_lib
from gan_stability.train import step as step_lib


class DivergenceError(RuntimeError):
  """Raised when a loss or gradient norm becomes NaN or infinite."""


# Exit status of ``experiments/train.py`` after a SIGTERM (128 + 15, what a
# scheduler sees for a terminated job): the checkpoint is saved, rerun the
# same command to resume.
EXIT_PREEMPTED = 143


class Preempted(Exception):
  """SIGTERM received: the state was checkpointed at ``step``."""

  def __init__(self, step: int):
    super().__init__(f'preempted (SIGTERM): checkpoint saved at step {step}; '
                     'rerun the same command to resume')
    self.step = step


class SigtermFlag:
  """Records SIGTERM instead of dying, while the loop runs (main thread)."""

  def __init__(self):
    self.requested = False
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, self._handle)
    return self

  def _handle(self, signum, frame):
    del signum, frame
    self.requested = True
    logging.warning('SIGTERM: saving a checkpoint and stopping')

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False


def pending_to_json(chunks: list[dict]) -> dict:
  """The per-step metrics since the last log record, for the checkpoint, so
  that a resumed run writes the same averages as an uninterrupted one."""
  if not chunks:
    return {}
  return {k: np.concatenate([np.atleast_1d(c[k]) for c in chunks]).tolist()
          for k in chunks[0]}


def pending_from_json(pending: dict) -> list[dict]:
  if not pending:
    return []
  return [{k: np.asarray(v, np.float32) for k, v in pending.items()}]


def check_config_file(config, workdir: str) -> None:
  """Writes ``config.json``, or checks that a resumed run's config matches."""
  path = os.path.join(workdir, 'config.json')
  new = config.to_dict()
  if os.path.exists(path):
    with open(path) as f:
      old = config_lib.upgrade(json.load(f))
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


def checkpoint_or_stop(config, step: int, save, sigterm: SigtermFlag,
                       ckpt: Checkpointer) -> None:
  """After the dispatch that reached ``step``: ``save(step)`` at checkpoint
  steps and the last step; after a SIGTERM (not at the last step) save if
  not saved, wait for the write and raise :class:`Preempted`."""
  is_last = step == config.num_steps
  saved = step % config.checkpoint_every == 0 or is_last
  if saved:
    save(step)
  if sigterm.requested and not is_last:
    if not saved:
      save(step)
    ckpt.wait()
    raise Preempted(step)


def host_means(chunks: list[dict]) -> dict:
  """Mean of each metric over all steps in the stacked per-dispatch chunks."""
  keys = chunks[0].keys()
  return {k: float(np.mean(np.concatenate([np.atleast_1d(c[k]) for c in chunks])))
          for k in keys}


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (or resumes) the run in ``workdir``; returns the final metrics.

  Raises:
    ConfigError: invalid config, or a config that differs from the one the
      workdir was started with (before anything is compiled).
    DivergenceError: a NaN/Inf loss or gradient (after ``max_rollbacks``
      rollbacks when ``on_divergence='rollback'``); no checkpoint is ever
      written for a diverged state.
    Preempted: SIGTERM arrived; the state was checkpointed first.
    RuntimeError: checkpoints exist but none can be restored.

  A VAE config (``config.family == 'vae'``) is trained by
  :func:`gan_stability.train.vae.train_vae` under the same contract.
  """
  if config.get('family', 'gan') == 'vae':
    from gan_stability.train import vae  # pylint: disable=g-import-not-at-top
    return vae.train_vae(config, workdir)
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  check_config_file(config, workdir)

  mesh = parallel.make_mesh(config.num_devices)
  evaluator = evaluation.make_evaluator(config, workdir=workdir)
  iterator = data_lib.make_iterator(config, seed=config.seed)
  data_shape = iterator.element_shape
  generator, discriminator = models.build(config.model, data_shape)

  root = jax.random.key(config.seed)
  init_key, train_key, eval_key = jax.random.split(root, 3)
  repl = parallel.replicated(mesh)
  def fresh_state():
    return jax.device_put(state_lib.init_state(
        config, generator, discriminator, init_key, data_shape), repl)
  state = fresh_state()

  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'),
                      max_to_keep=config.keep_checkpoints)
  writer = writers.MetricWriter(workdir, tensorboard=config.write_tensorboard)
  template = jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
      state)
  start, state, meta, skipped = ckpt.restore_latest(state)
  chunks: list[dict] = []
  rollbacks = 0
  if start is not None:
    iterator.set_state(meta['data'])
    chunks = pending_from_json(meta.get('pending'))
    rollbacks = meta.get('rollbacks', 0)
    logging.info('resumed %s at step %d', workdir, start)
    writer.truncate_after(start)
    if skipped:
      writer.write(start, {'restored_from': start,
                           'unreadable_checkpoints': skipped})
  else:
    start = 0
    writer.truncate_after(0)

  def save(step):
    ckpt.save(step, state, {'data': iterator.get_state(), 'step': step,
                            'pending': pending_to_json(chunks),
                            'rollbacks': rollbacks})

  batch_axis = 2  # [k, n_critic, B, ...]
  bsharding = parallel.batch_sharding(mesh, batch_axis)
  num_classes = config.model.get('num_classes', 0)
  # Labels [k, n_critic, B] are split over devices like the images.
  batch_shardings = ({'x': bsharding, 'label': bsharding} if num_classes
                     else {'x': bsharding})
  latent_sharding = parallel.batch_sharding(mesh, 0)
  train_step = step_lib.make_train_step(config, generator, discriminator,
                                        latent_sharding=latent_sharding)
  multi_step = jax.jit(step_lib.make_multi_step(
      train_step, unroll=step_lib.resolve_loop_impl(config)),
                       in_shardings=(repl, batch_shardings, repl),
                       out_shardings=(repl, repl), donate_argnums=0,
                       compiler_options=compile_options.compiler_options(
                           config.get('cpu_ynn_fusions', 'xla')))
  sample = jax.jit(step_lib.make_sample_fn(generator, config.model.z_dim),
                   static_argnums=3)
  # Conditional models: a fixed class per row of the sample grid.
  eval_labels = step_lib.sample_labels(config, config.eval_samples)

  def evaluate(state, step):
    g_params = state_lib.eval_generator_params(state)
    samples = np.asarray(jax.device_get(
        sample(g_params, state.g_collections, eval_key, config.eval_samples,
               eval_labels)))
    sample_dir = None
    if config.write_samples and jax.process_index() == 0:
      sample_dir = os.path.join(workdir, 'samples')
      os.makedirs(sample_dir, exist_ok=True)
    return evaluator(samples, step, sample_dir=sample_dir, writer=writer), samples

  monitor = dynamics.DynamicsMonitor(
      grad_factor=config.get('alarm_grad_factor', 0.0),
      collapse_ratio=config.get('alarm_collapse_ratio', 0.0))
  for rec in writer.records():  # a resumed run's alarms see its history
    if not rec.get('evaluate_only'):
      monitor.update(rec)
  progress = writers.Progress(config.num_steps, start)
  step = start
  last: dict = {}
  k_max = config.steps_per_dispatch
  on_divergence = config.get('on_divergence', 'stop')
  max_rollbacks = config.get('max_rollbacks', 0)
  sigterm = SigtermFlag().__enter__()
  try:
    while step < config.num_steps:
      # After a rollback the keys are re-drawn (the rollback count is folded
      # in); without one the stream is that of the seed and the step alone.
      run_key = (train_key if rollbacks == 0
                 else jax.random.fold_in(train_key, rollbacks))
      k = min(k_max, config.num_steps - step)
      draws = [[next(iterator) for _ in range(config.n_critic)]
               for _ in range(k)]
      if num_classes:  # {'x', 'label'} per draw
        batch = {name: parallel.global_batch(
            np.stack([np.stack([d[name] for d in row]) for row in draws]),
            bsharding, batch_axis) for name in ('x', 'label')}
      else:
        batch = {'x': parallel.global_batch(np.stack([np.stack(row)
                                                      for row in draws]),
                                            bsharding, batch_axis)}
      new_state, metrics = multi_step(state, batch, run_key)
      metrics = jax.device_get(metrics)  # waits: one sync per dispatch
      bad = [name for name, v in metrics.items()
             if not np.all(np.isfinite(v))]
      if bad:
        first = int(np.argmax(~np.isfinite(metrics[bad[0]])))
        network = 'discriminator' if bad[0].startswith('d') else 'generator'
        record = {'diverged': True, 'bad_metrics': bad, 'network': network,
                  **{n: float(np.asarray(metrics[n])[first]) for n in bad}}
        ckpt.wait()
        if on_divergence == 'rollback' and rollbacks < max_rollbacks:
          # Back to the last good checkpoint (or the initial state); the data
          # iterator keeps going, so the batches that diverged are skipped.
          rollbacks += 1
          good = ckpt.latest_step()
          if good is None:
            good, state, chunks = 0, fresh_state(), []
          else:
            state, meta = ckpt.restore(good, template)
            chunks = pending_from_json(meta.get('pending'))
          writer.truncate_after(good)
          writer.write(good, {**record, 'diverged_at': step + first + 1,
                              'rollback': rollbacks})
          logging.warning('non-finite %s at step %d (%s); rolled back to step '
                          '%d (rollback %d of %d)', bad, step + first + 1,
                          network, good, rollbacks, max_rollbacks)
          step = good
          continue
        writer.write(step + first + 1, record)
        raise DivergenceError(
            f'non-finite {bad} at step {step + first + 1} ({network} first); '
            f'last checkpoint kept at step {ckpt.latest_step()}'
            + (f' after {rollbacks} rollbacks' if rollbacks else ''))
      state = new_state
      step += k
      chunks.append(metrics)
      is_last = step == config.num_steps
      if step % config.log_every == 0 or is_last:
        record = host_means(chunks)
        chunks = []
        if config.get('log_sigmas', False):
          record.update(dynamics.layer_sigmas(
              jax.device_get(state.d_params),
              jax.device_get(state.d_collections.get(SPECTRAL_STATS)),
              prefix='d_sigma/'))
        if step % config.eval_every == 0 or is_last:
          record.update(evaluate(state, step)[0])
        alarms = monitor.update(record)
        if alarms:
          record['alarms'] = alarms
          logging.warning('step %d: alarms %s', step, alarms)
        writer.write(step, record)
        progress.report(step, record)
        last = record
      checkpoint_or_stop(config, step, save, sigterm, ckpt)
  finally:
    sigterm.__exit__()
    ckpt.close()
    writer.close()
  if not last:  # resumed a finished run: report its final evaluation
    last = dict(evaluate(state, step)[0])
  last['step'] = step
  return last


def final_samples(config, workdir: str) -> np.ndarray:
  """``config.eval_samples`` samples of the latest checkpoint in ``workdir``
  (no training), from the evaluation key of the run."""
  from gan_stability.train import evaluate as evaluate_lib  # pylint: disable=g-import-not-at-top
  config_lib.validate(config)
  eval_key = jax.random.split(jax.random.key(config.seed), 3)[2]
  sample_fn, _ = evaluate_lib.restore_generator(config, workdir)
  return sample_fn(eval_key, config.eval_samples)
