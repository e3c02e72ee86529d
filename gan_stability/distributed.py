"""Several processes (hosts) as one run on JAX's multi-controller runtime.

One process runs per host (or per GPU group); after :func:`initialize` every
process sees all processes' devices in ``jax.devices()``, the training mesh
spans them, each process feeds its own rows of every global batch
(:mod:`gan_stability.train.parallel`) and XLA's collectives do the rest. This
module holds what the loop and the evaluators need on top of that:

* :func:`initialize` - joins the job (explicit ids, the ``JAX_*`` variables
  written by ``experiments.launch``, or JAX's own detection of SLURM / Open
  MPI / TPU / Kubernetes), selects the gloo collectives on CPU; a missing or
  out-of-range id raises :class:`DistributedError`, and a coordinator not
  reached (or processes not joined) in time ends the process with one line
  and status 2 instead of JAX's abort with a C++ stack trace.
* :func:`any_process` - one tiny all-gather: all processes agree on a flag
  (a SIGTERM that reached only one host), so all checkpoint the same step.
* :func:`to_host` and :func:`map_rows` - a batch-sharded array gathered to
  every process, and a per-row function (feature extractors) computed on
  each process's share of the rows and gathered once.

With one process every function is the single-process identity, so library
code calls them unconditionally.

A lost process: every process advances a counter in the coordinator's
key-value store each second; a peer silent for ``heartbeat_timeout`` seconds
ends every other process with one line naming it and exit status
:data:`EXIT_LOST_PROCESS` (even while they are blocked in a collective that
waits for it). JAX's coordination service would end them too, later
(its heartbeat timeout is set to twice that), with a C++ stack trace.
"""

from __future__ import annotations

import atexit
import os
import socket
import sys
import threading
import time
from typing import Callable

import jax
import numpy as np

# JAX itself reads only JAX_COORDINATOR_ADDRESS; the two others are read
# here (and written by experiments.launch).
ENV_COORDINATOR = 'JAX_COORDINATOR_ADDRESS'
ENV_NUM_PROCESSES = 'JAX_NUM_PROCESSES'
ENV_PROCESS_ID = 'JAX_PROCESS_ID'

INIT_TIMEOUT_S = 120  # to reach the coordinator and see every process join
HEARTBEAT_TIMEOUT_S = 30  # a silent process is declared dead after this
SHUTDOWN_TIMEOUT_S = 60  # the barrier of a clean exit
# Exit status of a process whose job lost another process (rerun the job to
# resume from the last checkpoint); distinct from a crash (1), bad input (2)
# and preemption (143).
EXIT_LOST_PROCESS = 3


class DistributedError(RuntimeError):
  """The job cannot be formed: an id missing or out of range."""


def _env_int(name: str) -> int | None:
  value = os.environ.get(name, '').strip()
  if not value:
    return None
  try:
    return int(value)
  except ValueError:
    raise DistributedError(f'{name}={value!r}: not an integer') from None


def launched_processes() -> int:
  """The process count ``experiments.launch`` (or a user) put in the
  environment (``JAX_NUM_PROCESSES``; 1 when unset)."""
  return _env_int(ENV_NUM_PROCESSES) or 1


def initialize(coordinator_address: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None, *,
               initialization_timeout: int = INIT_TIMEOUT_S,
               heartbeat_timeout: int = HEARTBEAT_TIMEOUT_S,
               shutdown_timeout: int = SHUTDOWN_TIMEOUT_S) -> None:
  """Joins the multi-process job (``jax.distributed.initialize``).

  Each argument left ``None`` is taken from ``JAX_COORDINATOR_ADDRESS``,
  ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID`` when set, else from JAX's
  detection of the cluster (SLURM, Open MPI, TPU, Kubernetes, ...). CPU
  backends use the gloo collectives. Must run before anything touches a
  JAX backend.

  A process that ends on purpose calls :func:`finish` first (the CLIs do);
  any other end is taken by the others for a lost process.

  A coordinator not reached, or processes that do not all join, within
  ``initialization_timeout`` seconds end the process with one line on
  stderr naming the address and status 2 (JAX itself would abort it with a
  C++ stack trace, which cannot be caught).

  Raises:
    DistributedError: an id that is missing (and not detected) or out of
      range; one line naming the flag.
  """
  if coordinator_address is None:
    coordinator_address = os.environ.get(ENV_COORDINATOR) or None
  if num_processes is None:
    num_processes = _env_int(ENV_NUM_PROCESSES)
  if process_id is None:
    process_id = _env_int(ENV_PROCESS_ID)
  if num_processes is not None and num_processes < 1:
    raise DistributedError(f'--num_processes={num_processes}: must be >= 1')
  if (process_id is not None and num_processes is not None
      and not 0 <= process_id < num_processes):
    raise DistributedError(f'--process_id={process_id}: must be in '
                           f'[0, {num_processes}) (--num_processes)')
  jax.config.update('jax_cpu_collectives_implementation', 'gloo')
  # JAX aborts the process (a fatal log and a C++ stack trace) when the
  # coordinator cannot be reached or the others do not join in time: this
  # deadline ends it first, with one line.
  joined = _deadline(initialization_timeout, lambda: _join_failure(
      coordinator_address, num_processes, process_id,
      initialization_timeout))
  try:
    # JAX's own heartbeat timeout is longer than the watchdog's, so that a
    # lost process is reported by the watchdog's one line.
    jax.distributed.initialize(
        coordinator_address, num_processes, process_id,
        initialization_timeout=initialization_timeout + 30,
        heartbeat_timeout_seconds=2 * heartbeat_timeout + 10,
        shutdown_timeout_seconds=shutdown_timeout)
  except (ValueError, TypeError) as e:
    missing = [flag for flag, v in (('--coordinator_address',
                                     coordinator_address),
                                    ('--num_processes', num_processes),
                                    ('--process_id', process_id))
               if v is None]
    raise DistributedError(
        f'--multihost: {e} (not given: {", ".join(missing) or "none"}); no '
        'cluster environment JAX detects (SLURM, Open MPI, TPU, Kubernetes) '
        'supplied it. Give --coordinator_address, --num_processes and '
        '--process_id, or start the processes with python -m '
        'experiments.launch') from None
  except Exception as e:  # XlaRuntimeError: DEADLINE_EXCEEDED, UNAVAILABLE
    raise DistributedError(
        _join_failure(coordinator_address, num_processes, process_id,
                      initialization_timeout) + f': {_first_line(e)}'
    ) from None
  finally:
    joined.set()
  global _WATCHDOG
  if jax.process_count() > 1:
    from jax._src import distributed as jax_distributed  # pylint: disable=g-import-not-at-top
    _WATCHDOG = _Watchdog(jax_distributed.global_state.client,
                          jax.process_index(), jax.process_count(),
                          timeout=heartbeat_timeout)
    _WATCHDOG.start()
    # At exit (a crash included) the counter stops; only finish() tells
    # the others that the silence is on purpose.
    atexit.register(_WATCHDOG.stopped.set)


class _Watchdog(threading.Thread):
  """Each process's liveness counter in the coordinator's key-value store,
  advanced every ``interval`` s; a peer whose counter has not moved for
  ``timeout`` s (and that has not finished) is lost: one line on stderr and
  exit :data:`EXIT_LOST_PROCESS`. It runs beside whatever the main thread
  is blocked in (a collective, a checkpoint barrier, a compile), and its
  timeout is shorter than the coordination service's heartbeat timeout, whose
  own reaction (a fatal log, a C++ stack trace, an abort) it pre-empts."""

  PREFIX = 'gan_stability/alive/'

  def __init__(self, client, process_id: int, num_processes: int,
               timeout: float, interval: float = 1.0):
    super().__init__(name='gan_stability-watchdog', daemon=True)
    self.client, self.me = client, process_id
    self.peers = [i for i in range(num_processes) if i != process_id]
    self.timeout, self.interval = timeout, interval
    self.stopped = threading.Event()

  def _read(self, peer: int) -> str | None:
    try:
      return self.client.key_value_try_get(f'{self.PREFIX}{peer}')
    except Exception:  # NOT_FOUND before the peer's first beat
      return None

  def run(self):
    start = time.monotonic()
    seen = {p: (None, start) for p in self.peers}
    beat = 0
    while not self.stopped.wait(self.interval):
      try:
        self.client.key_value_set(f'{self.PREFIX}{self.me}', str(beat),
                                  allow_overwrite=True)
      except Exception as e:  # pylint: disable=broad-except
        if self.stopped.is_set():
          return
        _lost(self.me, f'the coordinator (process 0) cannot be reached: '
              f'{_first_line(e)}')
      beat += 1
      now = time.monotonic()
      for p in self.peers:
        value = self._read(p)
        if value == 'done':
          seen[p] = (value, float('inf'))
        elif value != seen[p][0]:
          seen[p] = (value, now)
        elif now - seen[p][1] > self.timeout and not self.stopped.is_set():
          _lost(self.me, f'process {p} sent no heartbeat for {self.timeout:.0f} s '
                '(it died, hung or lost the network)')

  def finish(self):
    self.stopped.set()
    try:
      self.client.key_value_set(f'{self.PREFIX}{self.me}', 'done',
                                allow_overwrite=True)
    except Exception:  # pylint: disable=broad-except
      pass


_WATCHDOG: _Watchdog | None = None


def _first_line(e) -> str:
  text = str(e).strip()
  return text.splitlines()[0] if text else repr(e)


def _lost(me: int, what: str) -> None:
  print(f'error: multi-host job lost a process: {what}; process '
        f'{me} stops (exit {EXIT_LOST_PROCESS}). Rerun the '
        'job to resume from its last checkpoint', file=sys.stderr, flush=True)
  os._exit(EXIT_LOST_PROCESS)  # pylint: disable=protected-access


def await_lost_process() -> None:
  """After a collective failed in a multi-process run (e.g. gloo's
  "connection reset by peer"): gives the watchdog one heartbeat timeout to
  name the lost process and exit; returns when none is lost."""
  if _WATCHDOG is not None:
    _WATCHDOG.join(timeout=_WATCHDOG.timeout + 5)


def finish() -> None:
  """Tells the other processes that this one ends on purpose (done or
  preempted), so that its silence is not taken for a loss."""
  global _WATCHDOG
  if _WATCHDOG is not None:
    _WATCHDOG.finish()
    _WATCHDOG = None


def _deadline(seconds: float, message: Callable[[], str]) -> threading.Event:
  """Unless the returned event is set within ``seconds``: ``message()`` on
  stderr and exit status 2 (the job could not be formed)."""
  done = threading.Event()

  def watch():
    if not done.wait(seconds):
      print(f'error: {message()}', file=sys.stderr, flush=True)
      os._exit(2)  # pylint: disable=protected-access

  threading.Thread(target=watch, name='gan_stability-join', daemon=True).start()
  return done


def _listening(address: str | None) -> bool:
  if not address or ':' not in address:
    return False
  host, port = address.rsplit(':', 1)
  try:
    with socket.create_connection((host.strip('[]'), int(port)), timeout=2):
      return True
  except (OSError, ValueError):
    return False


def _join_failure(address, num_processes, process_id, timeout) -> str:
  if _listening(address):
    why = (f'the coordinator answers, but not all {num_processes} processes '
           'joined (are they all started, with the same address?)')
  else:
    why = 'nothing answers there (is process 0 running, on that address?)'
  who = ('' if process_id is None else f' {process_id}') + (
      '' if num_processes is None else f' of {num_processes}')
  where = address or '(from the cluster environment)'
  return (f'--multihost: process{who} could not join the job at coordinator '
          f'{where} within {timeout} s: {why}')


def any_process(flag: bool) -> bool:
  """True on every process when ``flag`` is true on any (a collective:
  every process must call it at the same point)."""
  if jax.process_count() == 1:
    return bool(flag)
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  flags = multihost_utils.process_allgather(np.array([int(bool(flag))],
                                                     np.int32))
  return bool(np.any(flags))


def to_host(x: jax.Array) -> np.ndarray:
  """A (possibly batch-sharded across processes) array as one NumPy array on
  every process."""
  if getattr(x, 'is_fully_addressable', True):
    return np.asarray(jax.device_get(x))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def row_range(n: int) -> tuple[int, int]:
  """This process's rows ``[lo, hi)`` of ``n`` rows split in contiguous
  shares of ``ceil(n / process_count)`` (the last may be shorter)."""
  per = -(-n // jax.process_count())
  lo = min(n, jax.process_index() * per)
  return lo, min(n, lo + per)


def map_rows(fn: Callable[[np.ndarray], np.ndarray],
             x: np.ndarray) -> np.ndarray:
  """``fn(x)`` for a row-wise ``fn`` (``fn(x)[i]`` depends on ``x[i]`` only),
  each process computing its :func:`row_range` and the results gathered to
  every process (a collective)."""
  count = jax.process_count()
  if count == 1:
    return np.asarray(fn(x))
  from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
  n = len(x)
  per = -(-n // count)
  lo, hi = row_range(n)
  # Every process computes at least one row (padding a short share with
  # its last row, or row 0) so that all know the output's row shape.
  rows = x[lo:hi] if hi > lo else x[:1]
  out = np.asarray(fn(rows))
  padded = np.concatenate([out, np.repeat(out[-1:], per - len(out), 0)])
  gathered = np.asarray(multihost_utils.process_allgather(padded))
  shares = [gathered[i, :max(0, min(n, (i + 1) * per) - i * per)]
            for i in range(count)]
  return np.concatenate(shares)
