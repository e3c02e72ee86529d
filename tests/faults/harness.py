"""Fault injection for the tests: make the N-th write of one writer fail as
a full disk would, or a checkpoint save never finish.

``inject(writer, n)`` is a context manager patching the library for its
duration (``tests/test_faults.py`` uses it in-process;
``tests/faults/inject_train.py`` wraps ``experiments.train`` in it):

* ``'metrics'``     - appending a record to ``metrics.jsonl``
* ``'tensorboard'`` - writing a TensorBoard event
* ``'samples'``     - saving a sample figure
* ``'checkpoint'``  - the N-th checkpoint save fails in orbax's background
  thread: the error surfaces when the run next checks (as orbax reports a
  failed asynchronous save), and nothing of that save is finalised
* ``'config'``      - writing ``config.json``
* ``'hang_save'``   - the N-th checkpoint save never finishes (a hung
  filesystem): waiting for it blocks forever

Each failure is ``OSError(ENOSPC)``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading

from gan_stability import checkpoint, errors, plotting, writers
from gan_stability.train import workdir

WRITERS = ('metrics', 'tensorboard', 'samples', 'checkpoint', 'config',
           'hang_save')


def enospc(path: str = '') -> OSError:
  return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)


@contextlib.contextmanager
def inject(writer: str, n: int):
  """Within the block, the ``n``-th (1-based) write of ``writer`` fails."""
  if writer not in WRITERS:
    raise ValueError(f'writer {writer!r}: one of {WRITERS}')
  calls = {'n': 0}

  def due() -> bool:
    calls['n'] += 1
    return calls['n'] == n

  patches = []  # (object, attribute, replacement)
  if writer in ('metrics', 'config'):
    suffix = 'metrics.jsonl' if writer == 'metrics' else 'config.json.tmp'

    def _open(path, mode='r', *args, **kwargs):
      if ('w' in mode or 'a' in mode) and str(path).endswith(suffix) and due():
        raise enospc(str(path))
      return open(path, mode, *args, **kwargs)

    patches.append((writers if writer == 'metrics' else workdir, 'open',
                    _open))
  elif writer == 'tensorboard':
    real_write = writers.TensorBoardWriter._write  # pylint: disable=protected-access

    def _write(self, summary, step):
      if due():
        raise enospc(self.logdir)
      return real_write(self, summary, step)

    patches.append((writers.TensorBoardWriter, '_write', _write))
  elif writer == 'samples':
    for name in ('save_scatter', 'save_image_grid'):
      def _save(path, *args, _real=getattr(plotting, name), **kwargs):
        if due():
          raise enospc(path)
        return _real(path, *args, **kwargs)
      patches.append((plotting, name, _save))
  else:  # checkpoint, hang_save
    cls = checkpoint.Checkpointer
    real_save, real_check, real_wait = cls.save, cls.check, cls.wait
    failed = threading.Event()

    def fail(self):
      if writer == 'hang_save':
        threading.Event().wait()  # never returns
      raise errors.write_failed(
          'checkpoint', os.path.join(self.directory, str(self._pending)),  # pylint: disable=protected-access
          enospc())

    def save(self, step, state, meta):
      if not due():
        return real_save(self, step, state, meta)
      self.wait()
      self._pending = step  # pylint: disable=protected-access
      failed.set()  # "started", failing (or stuck) in the background
      return None

    def check(self):
      if failed.is_set() and writer == 'checkpoint':
        fail(self)
      return real_check(self)

    def wait(self):
      if failed.is_set():
        fail(self)
      return real_wait(self)

    patches += [(cls, 'save', save), (cls, 'check', check), (cls, 'wait', wait)]

  saved = [(obj, name, obj.__dict__.get(name, _MISSING))
           for obj, name, _ in patches]
  for obj, name, value in patches:
    setattr(obj, name, value)
  try:
    yield
  finally:
    for obj, name, old in saved:
      if old is _MISSING:
        delattr(obj, name)
      else:
        setattr(obj, name, old)


_MISSING = object()
