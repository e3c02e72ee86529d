"""The library's error types (a leaf module: everything may import it)."""

import contextlib
import os
import re


class ConfigError(ValueError):
  """A config field (or flag) has an invalid value; the message starts with
  ``config.<field>:`` and names the allowed values where there is a list."""


class DamagedFile(ValueError):
  """A file a run reads is damaged or not what it should be; the message
  starts with the file's path and says what is wrong and what to do."""


class WriteFailed(RuntimeError):
  """A run could not write one of its files (a full disk, a quota, a lost
  mount); the message says what, where, the error and the space left.

  Attributes:
    path: the file or directory that could not be written.
  """

  def __init__(self, message: str, path: str = ''):
    super().__init__(message)
    self.path = path


def _free_space(path: str) -> str:
  import shutil  # pylint: disable=g-import-not-at-top
  probe = os.path.abspath(path)
  while probe and not os.path.exists(probe):
    parent = os.path.dirname(probe)
    if parent == probe:
      break
    probe = parent
  try:
    free = shutil.disk_usage(probe).free
  except OSError:
    return 'free space unknown'
  for unit in ('bytes', 'KiB', 'MiB', 'GiB', 'TiB'):
    if free < 1024 or unit == 'TiB':
      size = f'{free} {unit}' if unit == 'bytes' else f'{free:.1f} {unit}'
      return f'{size} free on its filesystem'
    free /= 1024
  return ''


def is_write_error(error: BaseException) -> bool:
  """Whether ``error`` is a failed write of a file: an ``OSError``, or an
  error of orbax / tensorstore carrying an OS error code or saying
  RESOURCE_EXHAUSTED (not, e.g., a collective that failed inside a
  multi-process save because another process died)."""
  if isinstance(error, OSError):
    return True
  text = str(error)
  return ('os_error_code' in text or 'RESOURCE_EXHAUSTED' in text
          or 'No space left on device' in text)


def write_failed(what: str, path: str, error: BaseException) -> WriteFailed:
  """The :class:`WriteFailed` of writing ``what`` (e.g. ``'metrics'``) to
  ``path``, naming the error and the space left there."""
  text = str(error).strip()
  code = re.search(r"os_error_code='?(\d+)", text)  # tensorstore (orbax)
  if isinstance(error, OSError) and error.strerror:
    reason = error.strerror
  elif code:
    reason = f'{os.strerror(int(code.group(1)))} ({type(error).__name__})'
  else:
    reason = type(error).__name__ + (f': {text.splitlines()[0]}' if text else '')
  return WriteFailed(
      f'cannot write the {what} {path}: {reason} ({_free_space(path)}); '
      'free space (or fix the cause) and rerun the same command: the run '
      'resumes from its last complete checkpoint', path)


@contextlib.contextmanager
def writing(what: str, path: str):
  """Within the block, a failed write (:func:`is_write_error`) of ``what``
  at ``path`` becomes :func:`write_failed`'s :class:`WriteFailed`; any
  other exception passes unchanged."""
  try:
    yield
  except Exception as e:  # pylint: disable=broad-except
    if not is_write_error(e):
      raise
    raise write_failed(what, path, e) from e
