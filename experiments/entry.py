"""How every CLI of ``experiments/`` starts: absl's ``app.run`` with a flag
parser that reports a bad flag (an unknown flag, a bad value, an unknown
``--config.`` field, a config file that does not load) as one line
``error: ...`` on stderr and exit status 2, as argparse does, instead of
absl's two lines (or a traceback) and status 1.

``--help`` (``-h``, ``--helpshort``) prints the module's docstring and its
own flags, one line each, to stdout and exits 0; ``--helpfull`` lists every
flag. A CLI that takes no positional arguments refuses them
(:func:`no_arguments`) rather than ignore them.

A CLI's ``__main__`` calls ``entry.main(main)``.

**Warm starts.** Every CLI keeps JAX's persistent compilation cache
(``--compile_cache``, :func:`setup_compile_cache`): a program compiled once
(a train step, an evaluation, a sweep worker's group) is loaded, not
compiled, by every later process that builds the same program on the same
machine (a cached executable is the same program: results are unchanged).
The default directory is ``$GAN_STABILITY_COMPILE_CACHE``, else
``$JAX_COMPILATION_CACHE_DIR``, else ``$XDG_CACHE_HOME/gan_stability/xla``
(``~/.cache/...``); ``--compile_cache=DIR`` chooses one, ``--compile_cache=off``
turns it off. Sweep workers inherit it through the environment. The cache
is bounded (:data:`CACHE_MAX_BYTES`, least recently used entries evicted),
and with a bound JAX takes a file lock around every read and write, so
concurrent sweep workers never read an entry being written. A cache that
cannot be created or read never fails a run: it is reported in one line
and the run compiles.
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from absl import app, flags

EXIT_USAGE = 2
CACHE_MAX_BYTES = 4 << 30  # the compilation cache's bound (LRU eviction)
CACHE_OFF = 'off'

flags.DEFINE_string(
    'compile_cache', None, 'Persistent XLA compilation cache directory '
    '(default: $GAN_STABILITY_COMPILE_CACHE, else $JAX_COMPILATION_CACHE_DIR, '
    "else ~/.cache/gan_stability/xla); 'off' disables it.")
HELP_SHORT = ('-h', '-help', '--help', '-helpshort', '--helpshort', '-?')
HELP_FULL = ('-helpfull', '--helpfull')


def fail(message: str, status: int = EXIT_USAGE):
  """Prints ``error: message`` to stderr and exits with ``status``."""
  print(f'error: {message}', file=sys.stderr, flush=True)
  sys.exit(status)


def no_arguments(argv: list[str]) -> None:
  """Refuses positional arguments (``argv[1:]``, what absl left after the
  flags) of a CLI that takes none: one line, status 2."""
  if len(argv) > 1:
    fail(f'unexpected arguments {argv[1:]}: this command takes only flags '
         '(see --help)')


def check_at_least(minimum, *names: str) -> None:
  """Refuses a value below ``minimum`` of any of the flags ``names`` (an
  unset flag, None, passes): one line naming the flag, status 2."""
  for name in names:
    value = flags.FLAGS[name].value
    if value is not None and value < minimum:
      fail(f'--{name}: expected >= {minimum}, got {value}')


def _one_line(text: str) -> str:
  return ' '.join(str(text or '').split())


def _flag_line(flag) -> str:
  """``  --name: help (default: value)`` of an absl flag, on one line."""
  name = f'[no]{flag.name}' if flag.boolean else flag.name
  default = ''
  if flag.default is not None and flag.default_as_str not in ("''", ''):
    default = f' (default: {_one_line(flag.default_as_str)})'
  return f'  --{name}: {_one_line(flag.help)}{default}'


def _main_module_flags(argv0: str) -> tuple[str, list]:
  """The docstring and the flags of the module run as ``argv0`` (absl keys
  the flags of ``__main__`` by ``sys.argv[0]``, of an imported module by
  its name)."""
  path = os.path.abspath(argv0)
  names, doc = {argv0}, ''
  for name, module in list(sys.modules.items()):
    file = getattr(module, '__file__', None)
    if file and os.path.abspath(file) == path:
      names.add(name)
      doc = doc or module.__doc__ or ''
  by_module = flags.FLAGS.flags_by_module_dict()
  found = {f.name: f for n in names for f in by_module.get(n, [])}
  return doc, [found[k] for k in sorted(found)]


def usage(argv0: str, full: bool = False) -> str:
  """The ``--help`` text of the CLI run as ``argv0``: its docstring, then
  its flags (``full``: every flag, by module), one line each."""
  doc, own = _main_module_flags(argv0)
  lines = [doc.strip('\n'), '', 'flags:']
  if not full:
    lines += [_flag_line(f) for f in own]
    lines += ['', 'Try --helpfull to get a list of all flags.']
  else:
    for module, module_flags in sorted(
        flags.FLAGS.flags_by_module_dict().items()):
      lines += ['', f'{module}:']
      lines += [_flag_line(f) for f in sorted(module_flags,
                                               key=lambda f: f.name)]
  return '\n'.join(lines) + '\n'


def _help_asked(argv: list[str]) -> str | None:
  """``'short'`` or ``'full'`` when a help flag comes before any ``--``."""
  for arg in argv[1:]:
    if arg == '--':
      return None
    if arg in HELP_SHORT:
      return 'short'
    if arg in HELP_FULL:
      return 'full'
  return None


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing with a bad flag reported as one line, status 2. A
  flag parser's own exception counts as bad input too; when its message
  holds a traceback (config_flags appends one) its exception line is kept.
  A help flag prints :func:`usage` to stdout and exits 0."""
  asked = _help_asked(argv)
  if asked:
    sys.stdout.write(usage(argv[0], full=asked == 'full'))
    sys.stdout.flush()
    sys.exit(0)
  try:
    rest = flags.FLAGS(argv)
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
  _check_config_files()
  return rest


def _check_config_files() -> None:
  """A config file that does not load (a missing file, an IOError inside
  it) is no parse error to config_flags, which defers it to the first use
  of the config (a traceback, status 1): reported here, one line."""
  for name in list(flags.FLAGS):
    flag = flags.FLAGS[name]
    if flag.present and type(flag.value).__name__ == '_ErrorConfig':
      lines = [line.strip() for line in str(flag.value._error).splitlines()  # pylint: disable=protected-access
               if line.strip()]
      fail(f'flag --{name}={flag.serialize().split("=", 1)[-1]}: the config '
           f'file does not load: {lines[-1] if lines else ""}')


def default_compile_cache() -> str:
  """The cache directory used without ``--compile_cache``."""
  for var in ('GAN_STABILITY_COMPILE_CACHE', 'JAX_COMPILATION_CACHE_DIR'):
    if os.environ.get(var):
      return os.environ[var]
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'gan_stability', 'xla')


def setup_compile_cache(directory: str | None = None) -> str | None:
  """Turns on the persistent compilation cache in ``directory`` (None: the
  default, :func:`default_compile_cache`; ``'off'``: none) for this process
  and, through the environment, the processes it starts. Call before
  anything is compiled. Returns the directory, or None when off or when it
  cannot be created (then one line says so and nothing is cached)."""
  import jax  # pylint: disable=g-import-not-at-top
  directory = directory or default_compile_cache()
  if directory == CACHE_OFF:
    jax.config.update('jax_enable_compilation_cache', False)
    os.environ['GAN_STABILITY_COMPILE_CACHE'] = CACHE_OFF
    return None
  directory = os.path.abspath(os.path.expanduser(directory))
  try:
    os.makedirs(directory, exist_ok=True)
    probe = os.path.join(directory, f'.probe-{os.getpid()}')
    with open(probe, 'w'):
      pass
    os.remove(probe)
  except OSError as e:
    print(f'warning: --compile_cache: cannot use {directory} '
          f'({e.strerror or e}); compiling without a cache', file=sys.stderr,
          flush=True)
    jax.config.update('jax_enable_compilation_cache', False)
    return None
  os.environ['GAN_STABILITY_COMPILE_CACHE'] = directory
  jax.config.update('jax_enable_compilation_cache', True)
  jax.config.update('jax_compilation_cache_dir', directory)
  jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
  jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)
  try:  # the bound, and with it JAX's file lock, needs filelock
    import filelock  # pylint: disable=g-import-not-at-top,unused-import
    jax.config.update('jax_compilation_cache_max_size', CACHE_MAX_BYTES)
  except ImportError:
    pass
  return directory


def main(entry: Callable[[list[str]], None]) -> None:
  """``app.run(entry)`` with :func:`parse_flags`, the compilation cache
  set up (:func:`setup_compile_cache`) before ``entry`` runs."""

  def run(argv):
    setup_compile_cache(flags.FLAGS.compile_cache)
    entry(argv)

  app.run(run, flags_parser=parse_flags)
