"""What the reproduction scripts share: running their sweep, reading a
run's records, and writing tables.

Each script under ``experiments/reproduce/`` is a sweep spec (its
``get_sweep(arg)`` is what the sweep workers import) plus a driver that
trains every point with :func:`run_sweep`, evaluates the finished runs and
writes Markdown + CSV with :func:`pm` and :func:`write_csv`.
"""

from __future__ import annotations

import csv
import json
import os
import time

import numpy as np

from gan_stability.sweep import spec as sw


def run_sweep(spec: str, arg: str, workdir: str, sweep: sw.Sweep, *,
              parallel: int = 1, tag: str = '') -> float:
  """Trains (or resumes, or skips) every point of ``sweep`` with the sweep
  runner, the workers rebuilding it from ``spec:arg``; returns wall seconds.
  Raises RuntimeError naming the failed runs."""
  from gan_stability.sweep import runner  # pylint: disable=g-import-not-at-top
  points = sw.expand(sweep)
  units = sw.units(sweep, points)
  runner.write_sweep_file(workdir, sweep, points, {})
  t = time.time()
  statuses = runner.run(f'{spec}:{arg}', workdir, units, parallel=parallel,
                        log=lambda s: print(f'[{tag}] {s}', flush=True))
  failed = sorted(n for n, s in statuses.items() if s == 'failed')
  if failed:
    raise RuntimeError(f'{tag}: {len(failed)} runs failed: {failed}')
  return time.time() - t


def read_records(run_dir: str) -> list[dict]:
  """The records of a run's ``metrics.jsonl`` ([] when there is none)."""
  path = os.path.join(run_dir, 'metrics.jsonl')
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def final_train_step(records: list[dict]) -> int | None:
  """The last training step logged (evaluation-only records excluded)."""
  return max((int(r['step']) for r in records if not r.get('evaluate_only')),
             default=None)


def final_evaluation(run_dir: str, *, required: tuple[str, ...] = (),
                     **fields) -> dict | None:
  """The latest evaluation-only record of the run's final training step
  whose ``fields`` equal the given values and which holds every key in
  ``required``; None when there is none (then evaluate, and append it)."""
  records = read_records(run_dir)
  final = final_train_step(records)
  for r in reversed(records):
    if (r.get('evaluate_only') and int(r['step']) == final and
        all(r.get(k) == v for k, v in fields.items()) and
        all(k in r for k in required)):
      return r
  return None


def pm(mean: float, se: float, digits: int, kind: str = 'f') -> str:
  """``mean ± se`` formatted with ``digits`` (``'n/a'`` for a non-finite
  mean, the mean alone for a non-finite standard error)."""
  if not np.isfinite(mean):
    return 'n/a'
  if not np.isfinite(se):
    return f'{mean:.{digits}{kind}}'
  return f'{mean:.{digits}{kind}} ± {se:.{digits}{kind}}'


def seeds_label(seeds: int, ok: int) -> str:
  """'3 seeds', or '2/3 seeds finite' when some seed did not finish well."""
  if ok == seeds:
    return f"{seeds} seed{'s' if seeds != 1 else ''}"
  return f'{ok}/{seeds} seeds finite'


def write_csv(path: str, rows: list[dict]) -> None:
  """``rows`` (dicts with the same keys) as CSV, header from the first."""
  with open(path, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator='\n')
    w.writeheader()
    w.writerows(rows)


def write_outputs(out: str, stem: str, text: str, rows: list[dict],
                  summary: list[dict]) -> None:
  """Writes ``OUT/STEM.md`` (``text``), ``OUT/STEM.csv`` (one row per run)
  and ``OUT/summary.csv`` (one row per table row), and prints the table."""
  with open(os.path.join(out, f'{stem}.md'), 'w') as f:
    f.write(text)
  write_csv(os.path.join(out, f'{stem}.csv'), rows)
  write_csv(os.path.join(out, 'summary.csv'), summary)
  print('\n' + text, flush=True)
  print(f'wrote {out}/{stem}.md, {stem}.csv, summary.csv', flush=True)


def define_sweep_flags(flag_values, *, workdir: str) -> None:
  """The flags every reproduction script has: ``--workdir``,
  ``--parallel``, ``--out`` (the compilation cache is every CLI's
  ``--compile_cache``, experiments/entry.py)."""
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('workdir', workdir, 'Directory of the sweep.',
                      flag_values=flag_values)
  flags.DEFINE_integer('parallel', 1, 'Sweep worker processes.',
                       flag_values=flag_values)
  flags.DEFINE_string('out', '', 'Output directory (default: --workdir).',
                      flag_values=flag_values)

