"""How every CLI of ``experiments/`` starts: absl's ``app.run`` with a flag
parser that reports a bad flag (an unknown flag, a bad value, an unknown
``--config.`` field, a config file that does not load) as one line
``error: ...`` on stderr and exit status 2, as argparse does, instead of
absl's two lines (or a traceback) and status 1.

A CLI's ``__main__`` calls ``entry.main(main)``.
"""

from __future__ import annotations

import sys
from typing import Callable

from absl import app, flags

EXIT_USAGE = 2


def fail(message: str, status: int = EXIT_USAGE):
  """Prints ``error: message`` to stderr and exits with ``status``."""
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(status)


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with a bad flag reported as one line, status 2. A
  flag parser's own exception counts as bad input too; when its message
  holds a traceback (config_flags appends one) its exception line is kept."""
  try:
    return flags.FLAGS(argv)
  except Exception as e:  # pylint: disable=broad-except
    lines = [line for line in str(e).strip().splitlines() if line.strip()]
    message = lines[0] if lines else ''
    if len(lines) > 1:
      message = f'{message} {lines[-1].strip()}'
    if not isinstance(e, flags.Error):
      message = f'{type(e).__name__}: {message}'
    if isinstance(e, (AttributeError, KeyError)):  # --config.<unknown field>
      field = message.split(':', 1)[-1].strip(' \'"')
      names = [a[2:].split('=', 1)[0] for a in argv[1:] if a.startswith('--')]
      hits = [n for n in names if n.rsplit('.', 1)[-1] == field and '.' in n]
      if hits:
        message = f'flag --{hits[0]}: the config has no field {field!r}'
    fail(message)


def main(entry: Callable[[list[str]], None]) -> None:
  """``app.run(entry)`` with :func:`parse_flags`."""
  app.run(entry, flags_parser=parse_flags)
