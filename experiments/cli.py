"""What every training or evaluation CLI shares: the multi-host flags and
the way a run ends (exit statuses, one-line errors).

Importing this module defines the flags::

  --multihost               join a multi-process job first
  --coordinator_address     host:port of process 0's coordinator
  --num_processes           processes in the job
  --process_id              this process's id (0 .. num_processes - 1)
  --init_timeout_s          how long to wait for the coordinator and the others
  --heartbeat_timeout_s     a process silent this long is declared dead
  --stop_timeout_s          after SIGTERM, the longest the checkpoint may take

The three ids default to ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES``,
``JAX_PROCESS_ID`` (what ``experiments.launch`` sets), then to JAX's own
cluster detection (SLURM, Open MPI, TPU, Kubernetes).

Exit statuses of :func:`run` (and :func:`main`, :mod:`experiments.entry`, for
bad flags): 0 done; 1 crashed or diverged; 2 bad input or
the job could not be formed, a damaged input file, a workdir in use (one
line on stderr); 3 a multi-host job lost a process (one line naming it;
rerun to resume); 4 a file could not be written (a full disk: one line
saying which file and how much space is left; rerun after freeing space);
143 preempted (SIGTERM, checkpoint saved: rerun the same command).
"""

from __future__ import annotations

import logging as pylogging
import os
import sys
from typing import Callable

from absl import flags, logging

from experiments import entry

flags.DEFINE_bool('multihost', False, 'Join a multi-process (multi-host) job '
                  'first (jax.distributed.initialize); docs/distributed.md.')
flags.DEFINE_string('coordinator_address', None, 'With --multihost: '
                    'host:port of process 0 (default: JAX_COORDINATOR_ADDRESS '
                    'or the cluster environment).')
flags.DEFINE_integer('num_processes', None, 'With --multihost: processes in '
                     'the job (default: JAX_NUM_PROCESSES or the cluster '
                     'environment).')
flags.DEFINE_integer('process_id', None, 'With --multihost: this process '
                     '(default: JAX_PROCESS_ID or the cluster environment).')
flags.DEFINE_integer('init_timeout_s', 120, 'With --multihost: seconds to '
                     'reach the coordinator and see every process join.')
flags.DEFINE_float('stop_timeout_s', 120, 'After a SIGTERM, seconds the run '
                   'may take to checkpoint and stop before it exits without '
                   'a new checkpoint (status 4); a second signal exits at once.')
flags.DEFINE_integer('heartbeat_timeout_s', 30, 'With --multihost: a process '
                     'silent this long is declared dead and the job stops.')
FLAGS = flags.FLAGS

EXIT_ERROR = 1
EXIT_USAGE = entry.EXIT_USAGE


main = entry.main  # every CLI's __main__ (one-line flag errors, status 2)


def _closed_loop(error) -> bool:
  return isinstance(error, RuntimeError) and str(error) == 'Event loop is closed'


def _quiet_closed_loops() -> None:
  """``sys.excepthook`` and ``sys.unraisablehook`` without orbax's "Event
  loop is closed" errors: after a checkpoint write fails, tensorstore may
  still complete writes whose asyncio loop orbax has closed, and each
  completion prints that error (the run reports the failure itself, in one
  line)."""
  excepthook, unraisablehook = sys.excepthook, sys.unraisablehook

  def quiet_excepthook(kind, value, tb):
    if not _closed_loop(value):
      excepthook(kind, value, tb)

  def quiet_unraisablehook(unraisable):
    if not _closed_loop(unraisable.exc_value):
      unraisablehook(unraisable)

  sys.excepthook, sys.unraisablehook = quiet_excepthook, quiet_unraisablehook


class _QuietOrbax(pylogging.Filter):
  """Drops orbax's log records below CRITICAL (see :func:`run`)."""

  def filter(self, record) -> bool:
    return (record.levelno >= pylogging.CRITICAL
            or f'{os.sep}orbax{os.sep}' not in record.pathname)


def start_runtime() -> None:
  """Joins the multi-process job when ``--multihost`` is given; refuses to
  run one of several launched processes as a single-process run."""
  from gan_stability import distributed  # pylint: disable=g-import-not-at-top
  try:
    if FLAGS.multihost:
      distributed.initialize(
          FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
          initialization_timeout=FLAGS.init_timeout_s,
          heartbeat_timeout=FLAGS.heartbeat_timeout_s)
    elif distributed.launched_processes() > 1:
      entry.fail(f'{distributed.ENV_NUM_PROCESSES}='
            f'{distributed.launched_processes()} (one of several launched '
            'processes) but --multihost not given: each would train alone '
            'in the same workdir; add --multihost')
  except distributed.DistributedError as e:
    entry.fail(str(e))


def run(body: Callable[[], None]) -> None:
  """Runs a CLI's ``body`` after :func:`start_runtime`, ending as the
  module docstring says: bad input (ConfigError, a damaged or missing file,
  a workdir in use) in one line and status 2, a failed write in one line and
  status 4, a SIGTERM in status 143, divergence in one line and status 1."""
  if not FLAGS['verbosity'].present:
    # orbax logs every save at INFO, and a failed background save as a
    # stream of tracebacks that the run reports in one line (WriteFailed).
    logging.set_verbosity(logging.WARNING)
    logging.get_absl_handler().addFilter(_QuietOrbax())
    _quiet_closed_loops()
  start_runtime()
  from gan_stability import distributed, errors, train  # pylint: disable=g-import-not-at-top
  from gan_stability.train import workdir  # pylint: disable=g-import-not-at-top
  workdir.STOP_TIMEOUT_S = FLAGS.stop_timeout_s
  # Every process of a job meets these ends together (same config, same
  # replicated metrics, the SIGTERM agreed on): its silence afterwards is
  # not a lost process. Any other exception leaves the others to notice.
  try:
    body()
    distributed.finish()
  except train.Preempted as e:
    distributed.finish()
    print(str(e), flush=True)
    sys.exit(train.EXIT_PREEMPTED)
  except (errors.ConfigError, errors.DamagedFile, FileNotFoundError,
          train.WorkdirInUse) as e:
    distributed.finish()
    entry.fail(str(e))
  except train.DivergenceError as e:
    distributed.finish()
    entry.fail(f'diverged: {e}', EXIT_ERROR)
  except errors.WriteFailed as e:
    # The files are closed (the save in flight given a bounded time); leave
    # at once rather than wait on threads stuck on a full disk.
    print(f'error: {e}', file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(workdir.EXIT_WRITE_FAILED)  # pylint: disable=protected-access
  except Exception:  # e.g. a collective failed: which process was lost?
    distributed.await_lost_process()
    raise
