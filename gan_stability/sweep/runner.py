"""Runs the points of a sweep: skip finished ones, resume the rest, in parallel.

Layout under the sweep's ``workdir``::

  sweep.json              the spec's base, overrides, axes (and those run
                          in one program) and point names
  runs/<point name>/      an ordinary run directory (config.json,
                          metrics.jsonl, samples/, checkpoints/) plus
    point.json            the point's axis values and group
    DONE                  written atomically once training has returned:
                          {"status": "ok" | "diverged", "final": {...}}
  logs/<unit>.log         output of each worker process (--parallel > 1)

A point with a ``DONE`` file is skipped. Any other point is (re)started with
:func:`gan_stability.train.train_and_evaluate` (or, for the points of a unit
run as one program, a group's seeds and the values of its
``in_one_program`` axes, :func:`gan_stability.train.seeds.train_points`,
which hands a diverging member back to ``train_and_evaluate``); both resume
from the run's latest checkpoint. A diverged run (non-finite loss) is a
result, not a failure: it gets ``DONE`` with ``status='diverged'``. A point
whose run directory another process is training (its ``run.lock``, e.g. a
second copy of the same sweep) is skipped as ``busy``. Other exceptions leave no
``DONE``; the sweep continues with the other units and reports the failures
at the end.

SIGTERM stops the sweep the way it stops a training run: the run(s) in
progress are checkpointed (workers receive the SIGTERM too) and
:class:`gan_stability.train.Preempted` is raised; rerun to resume.

With ``parallel=K > 1`` every unit runs in its own worker process
(``python -m gan_stability.sweep.worker``), at most ``K`` at a time; each
worker pins itself to its own share of this process's CPUs
(``os.sched_setaffinity`` before JAX starts: XLA sizes its thread pool to
the affinity, and all its threads stay on those CPUs).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any, Sequence

from gan_stability.errors import WriteFailed, writing
from gan_stability.sweep import spec as spec_lib
from gan_stability.train import (DivergenceError, Preempted, WorkdirInUse,
                                 seeds, train_and_evaluate)

DONE = 'DONE'
BUSY = 'busy'  # a run directory another process is training (its lock)
EXIT_BUSY = 75  # a worker whose unit was busy (EX_TEMPFAIL)
POINT_FILE = 'point.json'
SWEEP_FILE = 'sweep.json'


def run_dir(workdir: str, point) -> str:
  return os.path.join(workdir, 'runs', point.name)


def is_done(path: str) -> bool:
  return os.path.exists(os.path.join(path, DONE))


def write_json_atomic(path: str, obj: Any) -> None:
  """Writes JSON to ``path`` via a temporary file and ``os.replace``."""
  tmp = f'{path}.tmp{os.getpid()}'
  with writing('sweep file', path):
    with open(tmp, 'w') as f:
      json.dump(obj, f, indent=2, sort_keys=True)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)


def _jsonable(result: dict) -> dict:
  out = {}
  for k, v in result.items():
    v = getattr(v, 'item', lambda v=v: v)()
    out[k] = v if isinstance(v, (int, float, str, bool, type(None))) else str(v)
  return out


def mark_done(path: str, status: str, final: dict) -> None:
  """The ``DONE`` marker (atomic): status and the final metrics."""
  write_json_atomic(os.path.join(path, DONE),
                    {'status': status, 'final': _jsonable(final)})


def write_point_file(workdir: str, point) -> str:
  path = run_dir(workdir, point)
  os.makedirs(path, exist_ok=True)
  write_json_atomic(os.path.join(path, POINT_FILE),
                    {'name': point.name, 'group': point.group,
                     'values': point.values})
  return path


def write_sweep_file(workdir: str, sweep, points, extra_overrides) -> None:
  os.makedirs(workdir, exist_ok=True)
  write_json_atomic(os.path.join(workdir, SWEEP_FILE), {
      'base': sweep.base,
      'overrides': {**dict(sweep.overrides), **dict(extra_overrides or {})},
      'axes': sweep.axes.fields(),
      'seeds_in_one_program': sweep.seeds_in_one_program,
      'in_one_program': spec_lib.in_one_program_fields(sweep),
      'description': sweep.description,
      'points': [p.name for p in points],
  })


def unit_status(workdir: str, unit) -> str:
  """``done`` (all points), ``partial`` (some, or a checkpoint) or ``todo``."""
  dirs = [run_dir(workdir, p) for p in unit.points]
  done = sum(is_done(d) for d in dirs)
  if done == len(dirs):
    return 'done'
  started = any(os.path.isdir(os.path.join(d, 'checkpoints')) and
                os.listdir(os.path.join(d, 'checkpoints')) for d in dirs)
  return 'partial' if done or started else 'todo'


def run_unit(workdir: str, unit, *, quiet: bool = False) -> dict[str, str]:
  """Trains the unfinished points of ``unit``; returns ``{name: status}``."""
  todo = [p for p in unit.points if not is_done(run_dir(workdir, p))]
  out = {p.name: 'skipped' for p in unit.points}
  if not todo:
    return out
  dirs = [write_point_file(workdir, p) for p in todo]
  redirect = (contextlib.redirect_stdout(io.StringIO()) if quiet
              else contextlib.nullcontext())
  single = list(zip(todo, dirs))
  if len(todo) > 1:
    with redirect:
      results = seeds.train_points([p.config for p in todo], dirs,
                                   log_prefix=f'[{unit.name}] ')
    single = []
    for p, d, r in zip(todo, dirs, results):
      status = r.pop('status')
      if status == 'single':  # diverged (or unreadable checkpoint): the
        print(f'[{unit.name}] {p.name}: {r["reason"]}; finishing it '
              'alone', flush=True)  # loop's own handling decides
        single.append((p, d))
        continue
      mark_done(d, status, r)
      out[p.name] = status
  for p, d in single:
    try:
      with redirect:
        result = train_and_evaluate(p.config, d)
      mark_done(d, 'ok', result)
      out[p.name] = 'ok'
    except DivergenceError as e:
      mark_done(d, 'diverged', {'error': str(e)})
      out[p.name] = 'diverged'
  return out


@dataclasses.dataclass
class Plan:
  """The units this invocation is responsible for (its shard), in order."""
  units: list
  statuses: list


def plan(workdir: str, all_units: Sequence, shard: tuple[int, int]) -> Plan:
  mine = spec_lib.shard(all_units, *shard)
  return Plan(mine, [unit_status(workdir, u) for u in mine])


def dry_run_lines(workdir: str, p: Plan, vmapped: bool = True) -> list[str]:
  """One line per unit run as one program (its status and members), one
  per point otherwise. (``vmapped``, the sweep's ``seeds_in_one_program``,
  is not needed: a unit of several points is one program.)"""
  del vmapped
  lines = []
  for u, s in zip(p.units, p.statuses):
    if len(u.points) > 1:
      lines.append(f'{s:8s} {u.name}  [{_members(u)} in one program]')
    else:
      for pt in u.points:
        lines.append(f'{"done" if is_done(run_dir(workdir, pt)) else s:8s} '
                     f'{pt.name}')
  return lines


def _members(unit) -> str:
  """What varies among a unit's points: ``seeds 0 1`` (a group's seeds), or
  e.g. ``penalty_weight=0.1,seed=0 | penalty_weight=1.0,seed=0``."""
  keys = [k for k in unit.points[0].values
          if len({spec_lib.format_value(p.values.get(k))
                  for p in unit.points}) > 1]
  if keys == [spec_lib.SEED]:
    return 'seeds ' + ' '.join(str(x.seed) for x in unit.points)
  return ' | '.join(spec_lib.point_name({k: p.values[k] for k in keys})
                    for p in unit.points)


def cpu_slots(parallel: int) -> list[list[int]]:
  """This process's CPUs split into ``parallel`` disjoint slots (shared
  round-robin when there are fewer CPUs than slots)."""
  cpus = sorted(os.sched_getaffinity(0))
  if parallel <= len(cpus):
    per = len(cpus) // parallel
    return [cpus[i * per:(i + 1) * per] for i in range(parallel)]
  return [[cpus[i % len(cpus)]] for i in range(parallel)]


def worker_env(cpus: Sequence[int]) -> dict:
  """The worker's environment: native thread pools sized to its CPUs. XLA's
  CPU thread pool is sized by the process's CPU affinity, which the worker
  sets itself (``--cpus``) before JAX starts. XLA_FLAGS are left alone, so
  workers compile exactly what an in-process run compiles (same numbers, and
  the same entries of a persistent compilation cache)."""
  env = dict(os.environ)
  for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    env[var] = str(len(cpus))
  return env


def run(sweep_arg: str, workdir: str, units: Sequence, *, parallel: int = 1,
        extra_overrides: Sequence[str] = (), pin_cpus: bool = True,
        max_units: int = 0, log=print) -> dict[str, str]:
  """Runs ``units`` (skipping finished points); returns ``{point: status}``.

  Args:
    sweep_arg: the ``--sweep`` argument (workers reload the spec from it).
    workdir: the sweep directory.
    units: the units to run (already sharded).
    parallel: worker processes; 1 runs everything in this process.
    extra_overrides: ``field=value`` strings given to workers as
      ``--override``.
    pin_cpus: give each worker its own CPUs (``parallel > 1``).
    max_units: stop after starting this many units that had work (0: all).
    log: progress printer.
  """
  pending = [u for u in units if unit_status(workdir, u) != 'done']
  statuses = {p.name: 'skipped' for u in units for p in u.points
              if is_done(run_dir(workdir, p))}
  todo = pending[:max_units] if max_units else pending
  log(f'sweep: {len(units)} units in this shard, '
      f'{len(units) - len(pending)} already done, {len(todo)} to run now')
  t0 = time.time()
  if parallel <= 1:
    for n, u in enumerate(todo, 1):
      t = time.time()
      try:
        res = run_unit(workdir, u)
      except Preempted:  # SIGTERM: the run is checkpointed; stop the sweep
        log(f'[{n}/{len(todo)}] {u.name}: preempted (SIGTERM); rerun the '
            'same command to resume')
        raise
      except WriteFailed:  # a full disk: the next units would fail too
        log(f'[{n}/{len(todo)}] {u.name}: stopped, a write failed')
        raise
      except WorkdirInUse as e:  # another sweep process trains it now
        log(f'[{n}/{len(todo)}] {u.name}: BUSY, skipped: {e}')
        statuses.update({p.name: BUSY for p in u.points
                         if not is_done(run_dir(workdir, p))})
        continue
      except Exception as e:  # pylint: disable=broad-except
        log(f'[{n}/{len(todo)}] {u.name}: FAILED {type(e).__name__}: {e}')
        statuses.update({p.name: 'failed' for p in u.points
                         if not is_done(run_dir(workdir, p))})
        continue
      statuses.update(res)
      log(f'[{n}/{len(todo)}] {u.name}: '
          f'{_summary(res)} ({time.time() - t:.1f}s)')
  else:
    statuses.update(_run_workers(sweep_arg, workdir, todo, parallel,
                                 extra_overrides, pin_cpus, log))
  log(f'sweep: finished in {time.time() - t0:.1f}s: '
      f'{_summary(statuses)}')
  return statuses


def _summary(statuses: dict[str, str]) -> str:
  counts: dict[str, int] = {}
  for s in statuses.values():
    counts[s] = counts.get(s, 0) + 1
  return ', '.join(f'{v} {k}' for k, v in sorted(counts.items()))


def _run_workers(sweep_arg, workdir, todo, parallel, extra_overrides,
                 pin_cpus, log) -> dict[str, str]:
  """At most ``parallel`` worker processes, one per unit."""
  slots = cpu_slots(parallel)
  free = list(range(parallel))
  running: dict[int, tuple] = {}  # slot -> (proc, unit, t0, logfile)
  queue = list(todo)
  statuses: dict[str, str] = {}
  log_dir = os.path.join(workdir, 'logs')
  os.makedirs(log_dir, exist_ok=True)
  done_count = 0

  def on_sigterm(signum, frame):
    del signum, frame
    raise _Terminated()
  previous = signal.signal(signal.SIGTERM, on_sigterm)
  try:
    while queue or running:
      while queue and free:
        slot = free.pop(0)
        u = queue.pop(0)
        cpus = slots[slot]
        cmd = [sys.executable, '-m', 'gan_stability.sweep.worker',
               f'--sweep={sweep_arg}', f'--workdir={workdir}',
               f'--unit={u.name}']
        cmd += [f'--override={o}' for o in extra_overrides]
        if pin_cpus:
          cmd.append(f'--cpus={",".join(map(str, cpus))}')
        logfile = open(os.path.join(log_dir, f'{u.name}.log'), 'a')
        proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT,
                                env=worker_env(cpus) if pin_cpus else None)
        running[slot] = (proc, u, time.time(), logfile)
      time.sleep(0.2)
      for slot, (proc, u, t, logfile) in list(running.items()):
        rc = proc.poll()
        if rc is None:
          continue
        logfile.close()
        del running[slot]
        free.append(slot)
        done_count += 1
        res = {}
        for p in u.points:
          path = os.path.join(run_dir(workdir, p), DONE)
          if os.path.exists(path):
            with open(path) as f:
              res[p.name] = json.load(f)['status']
          else:
            res[p.name] = BUSY if rc == EXIT_BUSY else 'failed'
        statuses.update(res)
        extra = '' if rc == 0 else (f' exit code {rc}, see '
                                    f'{os.path.join(log_dir, u.name)}.log')
        log(f'[{done_count}/{len(todo)}] {u.name}: {_summary(res)}{extra} '
            f'({time.time() - t:.1f}s)')
  except _Terminated:
    raise Preempted(-1) from None
  finally:
    signal.signal(signal.SIGTERM, previous)
    # Interrupted: SIGTERM the workers (each checkpoints, then exits).
    for proc, _, _, logfile in running.values():
      proc.terminate()
    for proc, _, _, logfile in running.values():
      proc.wait()
      logfile.close()
  return statuses


class _Terminated(Exception):
  """SIGTERM reached the parent of the workers."""


def load(sweep_arg: str, overrides: Sequence[str] = ()):
  """``(sweep, points, units, extra_overrides)`` of a ``--sweep`` argument,
  every point validated (raises :class:`~gan_stability.sweep.spec.SweepError`)."""
  sweep = spec_lib.load_sweep(sweep_arg)
  extra = dict(spec_lib.parse_override(o) for o in overrides)
  points = spec_lib.expand(sweep, extra)
  return sweep, points, spec_lib.units(sweep, points), extra
