"""The workdir contract, written once for every kind of run.

A run directory holds (process 0 writes):

* ``run.lock`` - held by the run training it (:class:`WorkdirLock`); a
  second run on the same workdir is refused at once, naming the holder.
* ``config.json`` - the run's config. A rerun with the same workdir checks
  that its config differs from it only in fields the schema marks
  resumable (:func:`check_files`); an old file is upgraded first.
* ``model.json`` - what the config alone does not say about the networks:
  the shape of one data example (``data_shape``), so that a run can be
  loaded and sampled without its data (:func:`gan_stability.trained.load`).
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

import contextlib
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time

import jax
import ml_collections
import numpy as np
from absl import logging

from gan_stability import config as config_lib
from gan_stability import distributed
from gan_stability import writers
from gan_stability.checkpoint import Checkpointer
from gan_stability.errors import DamagedFile, write_failed, writing

# Exit status after a SIGTERM (128 + 15, what a scheduler sees for a
# terminated job): the checkpoint is saved, rerun the same command to resume.
EXIT_PREEMPTED = 143
CONFIG_FILE = 'config.json'
MODEL_FILE = 'model.json'
# How long a failing run waits for its checkpoint save in flight.
CLOSE_TIMEOUT_S = 60


class WorkdirInUse(RuntimeError):
  """Another run (another process, or another job) holds the workdir."""


LOCK_FILE = 'run.lock'


class WorkdirLock:
  """The exclusive lock a run holds on its workdir while it trains.

  A POSIX record lock (``fcntl.lockf``, honoured across hosts by NFSv4 and
  Lustre) on ``<workdir>/run.lock``, which also holds the holder's pid, host
  and start time for the message a second run gets. The kernel drops the
  lock when its process ends in any way (``kill -9`` included), so a stale
  lock is simply taken over; the file's old content then only says whose it
  was. One multi-host job takes it once (process 0), not per process.
  """

  def __init__(self, workdir: str):
    self.workdir = workdir
    self.path = os.path.join(workdir, LOCK_FILE)
    self._fd = None

  def _holder(self, fd) -> str:
    try:
      os.lseek(fd, 0, os.SEEK_SET)
      info = json.loads(os.read(fd, 4096).decode() or '{}')
      return (f"pid {info['pid']} on host {info['host']} (started "
              f"{info['started']})")
    except (OSError, ValueError, KeyError):
      return 'another process'

  def acquire(self) -> None:
    """Takes the lock, or raises :class:`WorkdirInUse` naming the holder."""
    with writing('lock', self.path):
      os.makedirs(self.workdir, exist_ok=True)
      fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
      fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = self._holder(fd)
      os.close(fd)
      if e.errno not in (errno.EACCES, errno.EAGAIN):
        raise write_failed('lock', self.path, e) from e
      raise WorkdirInUse(
          f'{self.workdir}: in use by another run, {holder} (its lock: '
          f'{self.path}); wait for it to end or stop it, or use another '
          '--workdir') from None
    previous = self._holder(fd)
    if previous != 'another process':
      logging.warning('%s: took over the lock of %s, which has ended',
                      self.workdir, previous)
    info = {'pid': os.getpid(), 'host': socket.gethostname(),
            'started': time.strftime('%Y-%m-%d %H:%M:%S %Z')}
    try:
      os.ftruncate(fd, 0)
      os.lseek(fd, 0, os.SEEK_SET)
      os.write(fd, json.dumps(info).encode())
    except OSError as e:
      os.close(fd)
      raise write_failed('lock', self.path, e) from e
    self._fd = fd

  def release(self) -> None:
    if self._fd is not None:
      try:
        os.ftruncate(self._fd, 0)
      except OSError:
        pass
      os.close(self._fd)  # drops the lock
      self._fd = None


def lock_workdirs(workdirs) -> list[WorkdirLock]:
  """Locks every workdir for this job (process 0 takes the locks; every
  process learns whether they were free). Raises :class:`WorkdirInUse`
  (on every process) when one is held; nothing is left locked then."""
  locks, error = [], None
  if jax.process_index() == 0:
    try:
      for wd in workdirs:
        lock = WorkdirLock(wd)
        lock.acquire()
        locks.append(lock)
    except WorkdirInUse as e:
      error = e
  if distributed.any_process(error is not None):
    for lock in locks:
      lock.release()
    raise error or WorkdirInUse(
        f'{workdirs[0]}: process 0 of this job found a workdir in use by '
        'another run')
  return locks


class DivergenceError(RuntimeError):
  """Raised when a loss or gradient norm becomes NaN or infinite."""


class Preempted(Exception):
  """SIGTERM received: the state was checkpointed at ``step``."""

  def __init__(self, step: int):
    super().__init__(f'preempted (SIGTERM): checkpoint saved at step {step}; '
                     'rerun the same command to resume')
    self.step = step


# How long after a SIGTERM the run may take to checkpoint and stop before
# it exits without a new checkpoint (a save or a collective that cannot
# complete); the CLIs' --stop_timeout_s.
STOP_TIMEOUT_S = 120.0
# Exit status when a file could not be written (WriteFailed), or a save
# could not complete after a SIGTERM: no new checkpoint was made.
EXIT_WRITE_FAILED = 4


class SigtermFlag:
  """Records SIGTERM instead of dying, while the loop runs (main thread).

  The loop checkpoints and stops at the end of the dispatch in progress. If
  it has not stopped :data:`STOP_TIMEOUT_S` seconds after the signal, the
  process exits with :data:`EXIT_WRITE_FAILED` saying so (the last complete
  checkpoint is kept). A second SIGTERM, or a SIGINT after a SIGTERM, exits
  at once (status 128 + the signal).
  """

  def __init__(self, stop_timeout: float | None = None):
    self.requested = False
    self.stop_timeout = STOP_TIMEOUT_S if stop_timeout is None else stop_timeout
    self._previous = {}
    self._stopped = threading.Event()

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      for sig in (signal.SIGTERM, signal.SIGINT):
        self._previous[sig] = signal.signal(sig, self._handle)
    return self

  def _handle(self, signum, frame):
    if self.requested:
      print(f'{signal.Signals(signum).name} after SIGTERM: exiting at once, '
            'without a new checkpoint (the last complete one is kept)',
            file=sys.stderr, flush=True)
      os._exit(128 + signum)  # pylint: disable=protected-access
    if signum == signal.SIGINT:  # Ctrl-C alone: Python's KeyboardInterrupt
      previous = self._previous.get(signal.SIGINT)
      if callable(previous):
        return previous(signum, frame)
      raise KeyboardInterrupt
    self.requested = True
    logging.warning('SIGTERM: saving a checkpoint and stopping')
    threading.Thread(target=self._deadline, daemon=True,
                     name='gan_stability-stop-deadline').start()

  def _deadline(self):
    if not self._stopped.wait(self.stop_timeout):
      print(f'error: the run did not stop within {self.stop_timeout:.0f} s of '
            'SIGTERM (a checkpoint save or a collective is stuck): exiting '
            'without a new checkpoint; the last complete one is kept',
            file=sys.stderr, flush=True)
      os._exit(EXIT_WRITE_FAILED)  # pylint: disable=protected-access

  def __exit__(self, *exc):
    self._stopped.set()
    for sig, previous in self._previous.items():
      if previous is not None:
        signal.signal(sig, previous)
    self._previous = {}
    return False


def load_run_config(workdir: str) -> ml_collections.ConfigDict:
  """The ``config.json`` a run wrote (upgraded to the schema), as a
  ConfigDict."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no config.json; is {workdir!r} the '
                            'workdir of a training run?')
  try:
    with open(path, 'rb') as f:
      saved = json.loads(f.read())
    if not isinstance(saved, dict):
      raise ValueError(f'a JSON {type(saved).__name__}, not an object')
  except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
    raise DamagedFile(
        f'{path}: damaged ({e}); it records the run\'s config: restore it '
        f'from a copy, or start the run again in a new --workdir') from None
  return ml_collections.ConfigDict(config_lib.upgrade(saved))


def _check_config(config, workdir: str) -> None:
  """A resumed run's config may differ from its ``config.json`` only in
  resumable fields (ConfigError naming the first other one)."""
  if os.path.exists(os.path.join(workdir, CONFIG_FILE)):
    changed = config_lib.resume_changes(load_run_config(workdir), config)
    if changed:
      raise config_lib.ConfigError(
          f'config.{changed[0]}: differs from the run already in {workdir} '
          f'(changed: {changed}); use a new --workdir to start a different run')


def check_files(config, workdir: str) -> None:
  """Reads what a resumed run will read, changing nothing: ``config.json``
  must match ``config`` (:func:`_check_config`) and, like
  ``metrics.jsonl``, be intact (DamagedFile)."""
  _check_config(config, workdir)
  if os.path.exists(os.path.join(workdir, writers.METRICS_FILE)):
    writers.read_metrics(workdir)


def write_config_file(config, workdir: str) -> None:
  """Writes ``config.json`` (process 0) after checking it against the one
  there (:func:`_check_config`: another run may have written it since
  :func:`check_files`)."""
  path = os.path.join(workdir, CONFIG_FILE)
  _check_config(config, workdir)
  if jax.process_index() == 0:
    tmp = path + '.tmp'
    with writing('config', path):
      with open(tmp, 'w') as f:
        json.dump(config.to_dict(), f, indent=2, sort_keys=True)
      os.replace(tmp, path)


def write_model_file(workdir: str, data_shape) -> None:
  """Writes ``model.json`` (process 0): ``{"data_shape": [...]}``."""
  if jax.process_index() != 0:
    return
  path = os.path.join(workdir, MODEL_FILE)
  tmp = path + '.tmp'
  with writing('model description', path):
    with open(tmp, 'w') as f:
      json.dump({'data_shape': [int(d) for d in data_shape]}, f)
    os.replace(tmp, path)


def read_model_file(workdir: str) -> dict | None:
  """``model.json`` of a run, or None when it has none (a run written
  before 0.2.0). DamagedFile when it does not parse."""
  path = os.path.join(workdir, MODEL_FILE)
  if not os.path.exists(path):
    return None
  try:
    with open(path, 'rb') as f:
      info = json.loads(f.read())
    shape = info['data_shape']
    if not (isinstance(shape, list) and shape and
            all(isinstance(d, int) and d > 0 for d in shape)):
      raise ValueError(f'data_shape {shape!r} is not a list of sizes')
  except (ValueError, KeyError, TypeError) as e:
    raise DamagedFile(f'{path}: damaged ({type(e).__name__}: {e}); delete '
                      'it: the next training command on the run writes it '
                      'again') from None
  return info


@contextlib.contextmanager
def claimed(configs, workdirs, *, data_shape=None):
  """The run directories of ``configs``, for the block: each checked
  (:func:`check_files`; a run refused here or at the lock writes nothing),
  locked for this job (:func:`lock_workdirs`) and given its
  ``config.json`` (and ``model.json`` with ``data_shape``); the locks are
  released when the block ends."""
  for config, workdir in zip(configs, workdirs):
    if os.path.isdir(workdir):
      check_files(config, workdir)
  locks = lock_workdirs(workdirs)
  try:
    for config, workdir in zip(configs, workdirs):
      write_config_file(config, workdir)
      if data_shape is not None:
        write_model_file(workdir, data_shape)
    yield
  finally:
    for lock in locks:
      lock.release()


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

  def close(self, *, failing: bool = False) -> None:
    """Waits for the save in flight and closes the files. When the run is
    already failing (``failing``) nothing here raises and the save in
    flight gets at most :data:`CLOSE_TIMEOUT_S` seconds."""
    try:
      self.ckpt.close(timeout=CLOSE_TIMEOUT_S if failing else None)
    finally:
      self.writer.close()
