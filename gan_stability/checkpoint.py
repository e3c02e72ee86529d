"""Checkpointing of the training state and the data position (orbax).

A checkpoint holds the full :class:`GANState` (parameters, optimiser states,
spectral-norm and batch-norm collections, EMA, step) and a JSON item with the
data-iterator position. PRNG keys are not stored: every key is derived from
the config seed and the step, so restoring the step restores the random
stream. Orbax writes each checkpoint to a temporary directory and renames it
when complete, so an interrupted save never replaces a good checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import threading

import jax
import orbax.checkpoint as ocp
from absl import logging

from gan_stability.errors import ConfigError, writing


def _saved_form(state):
  """What is written of ``state``: a state dataclass naming
  ``OPTIONAL_FIELDS`` (fields added in later releases, ``None`` when
  unused) becomes the dict of its fields without those that are ``None``,
  so a run that does not use them writes, and reads, exactly the
  checkpoints of the releases before them. Anything else is written as is.
  """
  optional = getattr(state, 'OPTIONAL_FIELDS', ())
  if not optional or not dataclasses.is_dataclass(state):
    return state
  return {f.name: getattr(state, f.name) for f in dataclasses.fields(state)
          if not (f.name in optional and getattr(state, f.name) is None)}


def _from_saved(template, restored):
  """The inverse of :func:`_saved_form` (``template``'s class and its
  ``None`` optional fields)."""
  if restored is template or not isinstance(restored, dict) or (
      not dataclasses.is_dataclass(template)):
    return restored
  return template.replace(**restored)


class Checkpointer:
  """Thin wrapper around ``ocp.CheckpointManager`` for ``(state, meta)``."""

  def __init__(self, directory: str, *, max_to_keep: int = 2,
               read_only: bool = False):
    """``read_only``: a reader of another process's run (evaluation,
    ``gan_stability.load``), which must neither create the directory nor
    remove the save in flight of a run that is training."""
    self.directory = os.path.abspath(directory)
    self._mngr = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=not read_only,
            read_only=read_only,
            # A process killed mid-save leaves '<step>.orbax-checkpoint-tmp';
            # remove it, or the resumed run's save of that step fails (hangs).
            cleanup_tmp_directories=not read_only))
    self._pending = None  # the step of the latest save started

  def latest_step(self) -> int | None:
    return self._mngr.latest_step()

  def all_steps(self) -> list[int]:
    return list(self._mngr.all_steps())

  def choose_step(self, step: int | None = None) -> int:
    """``step`` if a checkpoint of it exists, the latest when ``None``.

    Raises:
      FileNotFoundError: no checkpoint at all.
      ConfigError: no checkpoint ``step`` (the message lists those there
        are; a ValueError: bad input, one line in the CLIs).
    """
    available = self.all_steps()
    if not available:
      raise FileNotFoundError(f'no checkpoint in {self.directory}')
    if step is None:
      return max(available)
    if step not in available:
      raise ConfigError(f'--step={step}: no such checkpoint in '
                       f'{self.directory}; available: {sorted(available)}')
    return step

  def save(self, step: int, state, meta: dict) -> None:
    """Starts an (asynchronous) save of ``state`` and ``meta`` at ``step``.

    Raises:
      WriteFailed: this save could not start, or an earlier one failed
        (its partial directory is never taken for a checkpoint).
    """
    self.wait()  # the previous save's failure, named as such
    self._pending = step
    with self._writing():
      self._mngr.save(step, args=ocp.args.Composite(
          state=ocp.args.StandardSave(_saved_form(state)),
          meta=ocp.args.JsonSave(meta)))

  def _writing(self):
    """Failed writes of the latest save started become WriteFailed."""
    return writing('checkpoint',
                   os.path.join(self.directory, str(self._pending)))

  def check(self) -> None:
    """Raises :class:`WriteFailed` if an asynchronous save has failed (in
    orbax's background thread, which does not stop the run by itself)."""
    with self._writing():
      self._mngr.check_for_errors()

  def restore(self, step: int, target_state):
    """Restores ``(state, meta)``; ``target_state`` gives shapes and shardings."""
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct,
                            _saved_form(target_state))
    try:
      out = self._mngr.restore(step, args=ocp.args.Composite(
          state=ocp.args.StandardRestore(abstract), meta=ocp.args.JsonRestore()))
    except Exception as e:  # orbax raises many types; name the checkpoint.
      raise RuntimeError(
          f'cannot restore checkpoint {self.directory}/{step}: '
          f'{type(e).__name__}: {e}. It does not match the current config '
          f'(model shapes) or is damaged; use a new --workdir or delete it.'
      ) from e
    return _from_saved(target_state, out.state), out.meta

  def restore_latest(self, target_state):
    """``(step, state, meta, skipped)`` from the newest checkpoint that
    restores, or ``(None, target_state, None, [])`` when there is none.

    A checkpoint that fails to restore (truncated or damaged files) is moved
    to ``<directory>.corrupt/<step>`` - kept for inspection, never deleted -
    and the next older one is tried; ``skipped`` lists the moved steps with
    their errors. When checkpoints exist but none restores (e.g. the model's
    shapes changed), a RuntimeError names each checkpoint and its error: a
    run never silently starts again from scratch over its own results.
    """
    steps = sorted(self.all_steps(), reverse=True)
    skipped = []
    for step in steps:
      try:
        state, meta = self.restore(step, target_state)
      except RuntimeError as e:
        skipped.append((step, str(e)))
        continue
      for bad, _ in skipped:
        self._quarantine(bad)
      if skipped:
        logging.warning('checkpoints %s could not be restored; moved to %s; '
                        'resuming from step %d', [b for b, _ in skipped],
                        self.directory + '.corrupt', step)
      return step, state, meta, [b for b, _ in skipped]
    if skipped:
      raise RuntimeError('no checkpoint in ' + self.directory + ' can be '
                         'restored:\n' + '\n'.join(m for _, m in skipped))
    return None, target_state, None, []

  def _quarantine(self, step: int) -> None:
    src = os.path.join(self.directory, str(step))
    dst_dir = self.directory + '.corrupt'
    os.makedirs(dst_dir, exist_ok=True)
    dst = os.path.join(dst_dir, str(step))
    if os.path.exists(dst):
      shutil.rmtree(dst)
    os.replace(src, dst)
    self._mngr.reload()

  def wait(self) -> None:
    """Waits for the save in flight; WriteFailed if it failed."""
    with self._writing():
      self._mngr.wait_until_finished()

  def close(self, *, timeout: float | None = None) -> None:
    """Waits for the save in flight and closes the manager. With ``timeout``
    (the run is already failing) errors are logged, not raised, and a close
    that takes longer is abandoned (its save never becomes a checkpoint)."""
    if timeout is None:
      self.wait()
      self._mngr.close()
      return

    def close():
      try:
        self._mngr.wait_until_finished()
        self._mngr.close()
      except Exception as e:  # pylint: disable=broad-except
        # Already reported (the run is failing because of it, or of worse).
        logging.info('closing checkpoints in %s: %s: %s', self.directory,
                     type(e).__name__, e)

    thread = threading.Thread(target=close, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
      logging.warning('checkpoints in %s: the save in flight did not end '
                      'within %.0f s; abandoned', self.directory, timeout)


def restore_run_state(workdir: str, template, step: int | None = None):
  """``(state, step)``: checkpoint ``step`` (default: the latest) of the run
  in ``workdir`` restored into the shapes of ``template`` (see
  :meth:`Checkpointer.choose_step` for the errors)."""
  directory = os.path.join(workdir, 'checkpoints')
  if not os.path.isdir(directory):
    raise FileNotFoundError(f'no checkpoint in {os.path.abspath(directory)}')
  ckpt = Checkpointer(directory, read_only=True)
  try:
    step = ckpt.choose_step(step)
    state, _ = ckpt.restore(step, template)
  finally:
    ckpt.close()
  return state, step
