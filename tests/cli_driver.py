r"""Runs one CLI of ``experiments/`` on many command lines in one process,
for tests/test_cli.py (one interpreter and one import per CLI, not one per
case)::

  python tests/cli_driver.py MODULE < CASES.json
  python tests/cli_driver.py --crash MODULE ARGS...

``CASES.json`` is a JSON list of argument lists (without the program name).
For each, every flag is reset (``flags.FLAGS.unparse_flags()``), the
arguments are parsed again through ``experiments.entry.parse_flags`` (the
parser of ``entry.main``) and the module's ``main`` runs, as under
``python -m MODULE ARGS...``; one JSON line per case is printed:
``{"argv", "status", "stdout", "stderr", "seconds"}`` (status 0 when ``main``
returned, the ``SystemExit`` code otherwise, 1 and the traceback in
``stderr`` for an exception, as the interpreter would end).

``--crash``: runs ``MODULE ARGS...`` for real (``entry.main``, exit status
and traceback as the interpreter gives them) with the body that
``experiments.cli.run`` runs replaced by one raising ``RuntimeError
('simulated crash')``: an unexpected exception inside a CLI.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
  sys.path.insert(0, REPO)

from absl import flags  # pylint: disable=g-import-not-at-top,wrong-import-position

from experiments import entry  # pylint: disable=g-import-not-at-top,wrong-import-position


def load(name: str):
  """Imports the CLI module ``name`` and defines its flags as its
  ``__main__`` does (``define_flags()`` where the flags are defined only
  when run as a script)."""
  module = importlib.import_module(name)
  define = getattr(module, 'define_flags', None)
  if define is not None:
    with contextlib.suppress(flags.DuplicateFlagError):
      define()
  return module


def _status(code) -> int:
  if code is None:
    return 0
  if isinstance(code, int):
    return code
  print(code, file=sys.stderr)  # sys.exit('message'): printed, status 1
  return 1


def run_case(module, args: list[str]) -> dict:
  """``python -m MODULE *args``, in this process: the result as a dict."""
  start = time.time()
  argv = [module.__file__] + list(args)
  flags.FLAGS.unparse_flags()
  for name in list(flags.FLAGS):  # config_flags defines one per override
    if name.startswith('config.'):
      delattr(flags.FLAGS, name)
  out, err = io.StringIO(), io.StringIO()
  saved_argv = sys.argv
  sys.argv = argv  # config_flags reads the --config.* overrides from it
  try:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
      try:
        module.main(entry.parse_flags(argv))
        status = 0
      except SystemExit as e:
        status = _status(e.code)
      except Exception:  # pylint: disable=broad-except
        traceback.print_exc()
        status = 1
  finally:
    sys.argv = saved_argv
  return {'argv': list(args), 'status': status, 'stdout': out.getvalue(),
          'stderr': err.getvalue(), 'seconds': time.time() - start}


def crash(name: str, args: list[str]) -> None:
  """Runs ``name`` for real with a body that raises (module docstring)."""
  from experiments import cli  # pylint: disable=g-import-not-at-top
  module = load(name)
  real_run = cli.run

  def body():
    raise RuntimeError('simulated crash')

  cli.run = lambda _: real_run(body)
  sys.argv = [module.__file__] + list(args)
  entry.main(module.main)


def main() -> None:
  if sys.argv[1] == '--crash':
    crash(sys.argv[2], sys.argv[3:])
    return
  module = load(sys.argv[1])
  for args in json.load(sys.stdin):
    print(json.dumps(run_case(module, args)), flush=True)


if __name__ == '__main__':
  main()
