r"""Starts the N processes of one multi-host job on this machine::

  python -m experiments.launch --num_processes=2 -- \
      python -m experiments.train --multihost --config=... --workdir=DIR

Process ``i`` runs the command with ``JAX_COORDINATOR_ADDRESS=127.0.0.1:<a
free port>``, ``JAX_NUM_PROCESSES=N`` and ``JAX_PROCESS_ID=i`` in its
environment (read by ``--multihost``, ``experiments/cli.py``) and, with
``--devices_per_process=K``, K CPU devices. Each output line is prefixed with
``[i] ``; the launcher prints ``[launch] process i: pid P`` for each, and
``[launch] process i exited with status S`` as each ends.

SIGTERM and SIGINT are forwarded to every process. The launcher exits with
the first non-zero status of a process (a process ended by signal ``s``
counts as ``128 + s``; a preempted run exits 143), else 0. Once one process
has failed, the others get ``--grace_s`` seconds to end on their own (a
multi-host run notices a lost process within its heartbeat timeout), then
SIGTERM, then SIGKILL ten seconds later.

It stands in for a cluster's launcher (srun, mpirun, a TPU pod's
``--worker=all``) on one machine: the tests and docs/distributed.md use it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

from absl import flags

from experiments import entry

flags.DEFINE_integer('num_processes', 2, 'Processes to start.')
flags.DEFINE_integer('port', 0, 'Coordinator port (0: a free one).')
flags.DEFINE_integer('devices_per_process', 0, 'CPU devices of each process '
                     '(XLA_FLAGS=--xla_force_host_platform_device_count; 0: '
                     'leave the environment as it is).')
flags.DEFINE_float('grace_s', 150.0, 'After a process fails, seconds the '
                   'others get to end on their own before SIGTERM.')
FLAGS = flags.FLAGS

_PR_SET_PDEATHSIG = 1


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _die_with_parent():
  """In the child: SIGKILL when the launcher dies (Linux), so a killed
  launcher never leaves processes blocked in a collective."""
  try:
    ctypes.CDLL('libc.so.6', use_errno=True).prctl(_PR_SET_PDEATHSIG,
                                                   signal.SIGKILL)
  except (OSError, AttributeError):
    pass


def _status(returncode: int) -> int:
  return 128 - returncode if returncode < 0 else returncode


def _env(i: int, n: int, port: int, devices: int) -> dict:
  env = dict(os.environ, JAX_COORDINATOR_ADDRESS=f'127.0.0.1:{port}',
             JAX_NUM_PROCESSES=str(n), JAX_PROCESS_ID=str(i),
             PYTHONUNBUFFERED='1')
  if devices:
    kept = [f for f in env.get('XLA_FLAGS', '').split()
            if not f.startswith('--xla_force_host_platform_device_count')]
    env['XLA_FLAGS'] = ' '.join(
        kept + [f'--xla_force_host_platform_device_count={devices}'])
  return env


def _pump(i: int, stream, lock: threading.Lock) -> None:
  for line in iter(stream.readline, b''):
    with lock:
      sys.stdout.write(f'[{i}] ' + line.decode(errors='replace'))
      sys.stdout.flush()
  stream.close()


def launch(command: list[str], num_processes: int, *, port: int = 0,
           devices_per_process: int = 0, grace_s: float = 150.0) -> int:
  """Runs ``command`` as ``num_processes`` processes of one job; returns the
  launcher's exit status (see the module docstring)."""
  port = port or free_port()
  lock = threading.Lock()
  procs, pumps = [], []
  for i in range(num_processes):
    p = subprocess.Popen(command, env=_env(i, num_processes, port,
                                           devices_per_process),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         start_new_session=True, preexec_fn=_die_with_parent)
    procs.append(p)
    with lock:
      print(f'[launch] process {i}: pid {p.pid}', flush=True)
    t = threading.Thread(target=_pump, args=(i, p.stdout, lock), daemon=True)
    t.start()
    pumps.append(t)

  def forward(signum, frame):
    del frame
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  for s in (signal.SIGTERM, signal.SIGINT):
    signal.signal(s, forward)

  first, failed_at, termed_at = None, None, None
  ended = set()
  while len(ended) < len(procs):
    for i, p in enumerate(procs):
      code = p.poll()
      if code is None or i in ended:
        continue
      ended.add(i)
      with lock:
        print(f'[launch] process {i} exited with status {_status(code)}',
              flush=True)
      if code != 0 and first is None:
        first, failed_at = _status(code), time.monotonic()
    now = time.monotonic()
    if failed_at is not None and termed_at is None and now - failed_at > grace_s:
      forward(signal.SIGTERM, None)
      termed_at = now
    if termed_at is not None and now - termed_at > 10:
      forward(signal.SIGKILL, None)
    time.sleep(0.1)
  for t in pumps:
    t.join(timeout=5)
  return first or 0


def main(argv):
  command = argv[1:]
  if not command:
    print('error: no command: python -m experiments.launch --num_processes=N '
          '-- COMMAND ...', file=sys.stderr)
    sys.exit(2)
  if shutil.which(command[0]) is None:
    print(f'error: {command[0]}: command not found (the COMMAND after --)',
          file=sys.stderr)
    sys.exit(2)
  if FLAGS.num_processes < 1:
    print(f'error: --num_processes={FLAGS.num_processes}: must be >= 1',
          file=sys.stderr)
    sys.exit(2)
  sys.exit(launch(command, FLAGS.num_processes, port=FLAGS.port,
                  devices_per_process=FLAGS.devices_per_process,
                  grace_s=FLAGS.grace_s))


if __name__ == '__main__':
  entry.main(main)
