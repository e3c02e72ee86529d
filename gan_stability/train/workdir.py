"""The workdir contract, written once for every kind of run.

A run directory holds (process 0 writes):

* ``config.json`` - the run's config. A rerun with the same workdir checks
  that its config differs from it only in fields the schema marks
  resumable (:func:`check_config_file`); an old file is upgraded first.
* ``metrics.jsonl`` - one JSON object per logged step: ``step``, the train
  metrics averaged over the steps since the previous record, evaluation
  metrics at evaluation steps. On resume, records after the restored
  checkpoint are dropped, so a resumed run writes exactly the records of an
  uninterrupted one.
* TensorBoard event files and ``samples/step_*.png``.
* ``checkpoints/<step>/`` - orbax checkpoints of the state with a JSON item
  (:meth:`RunFiles.save`): the data position, the per-step metrics not yet
  logged (``pending``) and the divergence rollbacks so far. A checkpoint that
  does not restore is moved to ``checkpoints.corrupt/`` and the next older
  one is used.

SIGTERM makes the loop checkpoint and raise :class:`Preempted` (the CLIs exit
with :data:`EXIT_PREEMPTED`); a non-finite loss raises
:class:`DivergenceError` (or rolls back, as the config says) and never
writes a checkpoint of the diverged state.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import jax
import ml_collections
import numpy as np
from absl import logging

from gan_stability import config as config_lib
from gan_stability import writers
from gan_stability.checkpoint import Checkpointer

# Exit status after a SIGTERM (128 + 15, what a scheduler sees for a
# terminated job): the checkpoint is saved, rerun the same command to resume.
EXIT_PREEMPTED = 143
CONFIG_FILE = 'config.json'


class DivergenceError(RuntimeError):
  """Raised when a loss or gradient norm becomes NaN or infinite."""


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


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The ``config.json`` a run wrote (upgraded to the schema), as a
  ConfigDict."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no config.json; is {workdir!r} the '
                            'workdir of a training run?')
  with open(path) as f:
    return ml_collections.ConfigDict(config_lib.upgrade(json.load(f)))


def check_config_file(config, workdir: str) -> None:
  """Writes ``config.json``, or checks that a resumed run's config differs
  from the one written only in resumable fields (ConfigError naming the
  first other one)."""
  path = os.path.join(workdir, CONFIG_FILE)
  new = config.to_dict()
  if os.path.exists(path):
    changed = config_lib.resume_changes(load_run_config(workdir), config)
    if changed:
      raise config_lib.ConfigError(
          f'config.{changed[0]}: differs from the run already in {workdir} '
          f'(changed: {changed}); use a new --workdir to start a different run')
  if jax.process_index() == 0:
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(new, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


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


def host_means(chunks: list[dict]) -> dict:
  """Mean of each metric over all steps in the stacked per-dispatch chunks."""
  keys = chunks[0].keys()
  return {k: float(np.mean(np.concatenate([np.atleast_1d(c[k])
                                           for c in chunks])))
          for k in keys}


class RunFiles:
  """The files of one run directory: its checkpoints and metric writer."""

  def __init__(self, config, workdir: str):
    self.workdir = workdir
    self.write_samples = config.write_samples
    self.ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'),
                             max_to_keep=config.keep_checkpoints)
    self.writer = writers.MetricWriter(workdir,
                                       tensorboard=config.write_tensorboard)

  def resume(self, target, *, fallback: bool = True):
    """``(start, state, meta)`` from the newest checkpoint, or ``(0,
    target, None)`` for a new run; drops the records written after it.

    With ``fallback`` a damaged checkpoint is moved aside and the next
    older one restored (noted in ``metrics.jsonl``); without it a
    checkpoint that does not restore raises RuntimeError.
    """
    if fallback:
      start, state, meta, skipped = self.ckpt.restore_latest(target)
    else:
      start, skipped = self.ckpt.latest_step(), []
      state, meta = (target, None) if start is None else self.ckpt.restore(
          start, target)
    if start is None:
      self.writer.truncate_after(0)
      return 0, target, None
    logging.info('resumed %s at step %d', self.workdir, start)
    self.writer.truncate_after(start)
    if skipped:
      self.writer.write(start, {'restored_from': start,
                                'unreadable_checkpoints': skipped})
    return start, state, meta

  def sample_dir(self) -> str | None:
    """``samples/`` (created) when the run writes sample figures."""
    if not self.write_samples or jax.process_index() != 0:
      return None
    path = os.path.join(self.workdir, 'samples')
    os.makedirs(path, exist_ok=True)
    return path

  def save(self, step: int, state, data_state: dict, chunks: list[dict],
           rollbacks: int) -> None:
    """Starts saving the checkpoint of ``step``."""
    self.ckpt.save(step, state, {'data': data_state, 'step': step,
                                 'pending': pending_to_json(chunks),
                                 'rollbacks': rollbacks})

  def close(self) -> None:
    self.ckpt.close()
    self.writer.close()
