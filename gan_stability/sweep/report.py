"""Aggregates a sweep's runs: tables over seeds, rankings, curves and heat-maps.

:func:`make_report` reads every finished run (``runs/*/DONE``) of a sweep
directory: its axis values (``point.json``) and ``metrics.jsonl``. For each
metric it takes the *final* value (the last record holding it) and the
*best* one over all evaluations, and per configuration (the point without
its seed) the mean and standard error over seeds (s.e. = sample std / sqrt(n),
blank for one seed). Diverged runs (non-finite loss) are counted per
configuration and left out of the means. Written to ``out_dir``:

* ``runs.csv`` - one row per run: axis values, status, final and best metrics;
* ``summary.csv`` - one row per configuration, ranked by the chosen metric;
* ``report.md`` - the ranked Markdown table;
* ``curves_<metric>.png`` - metric vs step, mean +- s.e. band over seeds,
  one panel per value of the first axis;
* ``heatmap_<metric>.png`` - final metric (mean over seeds) over two axes,
  one panel per combination of the other axes.

Everything is a deterministic function of the runs' files (no timings), so
two sweeps that trained identically give identical CSV files.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from typing import Any, Sequence

import numpy as np

from gan_stability.errors import ConfigError

from gan_stability.sweep import runner, spec as spec_lib

# Direction of known metrics (True: higher is better).
HIGHER_IS_BETTER = {'modes': True, 'high_quality': True, 'kl': False,
                    'fid': False, 'kid': False, 'inception_score': True,
                    'cfid': False, 'ckid': False,
                    'd_loss': False, 'g_loss': False}
DEFAULT_METRICS = ('modes', 'high_quality', 'kl', 'fid', 'kid',
                   'inception_score', 'cfid', 'ckid')


@dataclasses.dataclass
class Run:
  """One finished point: its axis values, status and metric records."""
  name: str
  group: str
  values: dict
  status: str
  records: list

  @property
  def ok(self) -> bool:
    return self.status == 'ok'


def _read_json(path):
  with open(path) as f:
    return json.load(f)


def collect(workdir: str) -> tuple[list[str], list[Run], int]:
  """``(axes, finished runs, number of the sweep's points not finished)``.

  Runs are in the sweep's point order when ``sweep.json`` is present, else
  sorted by name; ``axes`` is the spec's axis order.
  """
  runs_dir = os.path.join(workdir, 'runs')
  names = sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) else []
  sweep_file = os.path.join(workdir, runner.SWEEP_FILE)
  axes: list[str] = []
  if os.path.exists(sweep_file):
    meta = _read_json(sweep_file)
    axes = list(meta['axes'])
    order = {n: i for i, n in enumerate(meta['points'])}
    names.sort(key=lambda n: (order.get(n, len(order)), n))
  runs = []
  for name in names:
    d = os.path.join(runs_dir, name)
    if not (os.path.exists(os.path.join(d, runner.POINT_FILE)) and
            runner.is_done(d)):
      continue
    point = _read_json(os.path.join(d, runner.POINT_FILE))
    done = _read_json(os.path.join(d, runner.DONE))
    path = os.path.join(d, 'metrics.jsonl')
    records = []
    if os.path.exists(path):
      with open(path) as f:
        records = [json.loads(l) for l in f if l.strip()]
    runs.append(Run(point['name'], point['group'], point['values'],
                    done['status'], records))
    for k in point['values']:
      if k not in axes:
        axes.append(k)
  expected = set(meta['points']) if os.path.exists(sweep_file) else set()
  unfinished = len(expected - {r.name for r in runs})
  return axes, runs, unfinished


def _number(v) -> float | None:
  if isinstance(v, bool) or not isinstance(v, (int, float)):
    return None
  return float(v)


def series(run: Run, metric: str) -> list[tuple[int, float]]:
  """``(step, value)`` of every record holding a finite ``metric``."""
  out = []
  for r in run.records:
    if r.get('diverged'):
      continue
    v = _number(r.get(metric))
    if v is not None and math.isfinite(v):
      out.append((int(r['step']), v))
  return out


def final_value(run: Run, metric: str) -> float:
  """The last value of ``metric`` (NaN for diverged runs)."""
  s = series(run, metric) if run.ok else []
  return s[-1][1] if s else float('nan')


def best_value(run: Run, metric: str, higher: bool) -> float:
  """The best value of ``metric`` over the run (NaN for diverged runs)."""
  s = series(run, metric) if run.ok else []
  if not s:
    return float('nan')
  vals = [v for _, v in s]
  return max(vals) if higher else min(vals)


def mean_se(values: Sequence[float]) -> tuple[float, float, int]:
  """Mean, standard error and count of the finite values (NaN if too few)."""
  v = np.asarray([x for x in values if math.isfinite(x)], np.float64)
  if len(v) == 0:
    return float('nan'), float('nan'), 0
  se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else float('nan')
  return float(v.mean()), se, len(v)


def default_metrics(runs: Sequence[Run]) -> list[str]:
  """The known evaluation metrics present, else every numeric final metric."""
  keys: list[str] = []
  for run in runs:
    for r in run.records:
      for k in r:
        if k not in keys:
          keys.append(k)
  known = [m for m in DEFAULT_METRICS if m in keys]
  if known:
    return known
  def numeric(v):  # the metric writer stores NaN / Inf as strings
    return _number(v) is not None or v in ('nan', 'inf', '-inf')
  return [k for k in keys if k not in ('step', 'diverged') and any(
      numeric(r.get(k)) for run in runs for r in run.records)]


def direction(metric: str, higher_is_better: bool | None = None) -> bool:
  if higher_is_better is not None:
    return higher_is_better
  return HIGHER_IS_BETTER.get(metric, True)


def group_axes(axes: Sequence[str]) -> list[str]:
  return [a for a in axes if a != spec_lib.SEED]


def summarise(axes: Sequence[str], runs: Sequence[Run], metrics: Sequence[str],
              rank_metric: str, higher: bool) -> list[dict]:
  """One row per configuration (seed collapsed), ranked by ``rank_metric``
  (ties broken by the other metrics, each in its own direction).

  Row keys: ``rank``, ``group``, the non-seed axes, ``seeds``, ``ok``,
  ``diverged``, then per metric ``<m>_final_mean``, ``<m>_final_se``,
  ``<m>_best_mean``, ``<m>_best_se``, and ``<rank_metric>_per_seed``.
  """
  gaxes = group_axes(axes)
  groups: dict[str, list[Run]] = {}
  for run in runs:
    groups.setdefault(run.group, []).append(run)
  rows = []
  for group, members in groups.items():
    row: dict[str, Any] = {'group': group}
    for a in gaxes:
      row[a] = members[0].values.get(a, '')
    row['seeds'] = len(members)
    row['ok'] = sum(r.ok for r in members)
    row['diverged'] = sum(r.status == 'diverged' for r in members)
    for m in metrics:
      hi = direction(m, higher if m == rank_metric else None)
      for kind, fn in (('final', lambda r, m=m: final_value(r, m)),
                       ('best', lambda r, m=m, hi=hi: best_value(r, m, hi))):
        mean, se, _ = mean_se([fn(r) for r in members])
        row[f'{m}_{kind}_mean'], row[f'{m}_{kind}_se'] = mean, se
    row[f'{rank_metric}_per_seed'] = ' '.join(
        _short(final_value(r, rank_metric)) if r.ok else 'div'
        for r in members)
    rows.append(row)
  order = [(rank_metric, higher)] + [(m, direction(m)) for m in metrics
                                      if m != rank_metric]

  def sort_key(row):
    key = []
    for m, hi in order:  # ties on the ranking metric: the other metrics
      v = row[f'{m}_final_mean']
      key.append(math.inf if not math.isfinite(v) else (-v if hi else v))
    return key
  rows.sort(key=sort_key)  # stable: full ties keep the sweep's order
  for i, row in enumerate(rows, 1):
    row['rank'] = i
  return [{'rank': r.pop('rank'), **r} for r in rows]


def _short(v: float) -> str:
  if not math.isfinite(v):
    return 'nan'
  return f'{v:.0f}' if float(v).is_integer() else f'{v:.3g}'


def _csv_value(v):
  return repr(v) if isinstance(v, float) else v


def write_csv(path: str, rows: Sequence[dict]) -> None:
  if not rows:
    open(path, 'w').close()
    return
  fields = list(rows[0])
  with open(path, 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=fields, lineterminator='\n')
    w.writeheader()
    for r in rows:
      w.writerow({k: _csv_value(r.get(k, '')) for k in fields})


def run_rows(axes: Sequence[str], runs: Sequence[Run], metrics: Sequence[str],
             rank_metric: str, higher: bool) -> list[dict]:
  """One row per run: name, group, axis values, status, steps, final/best."""
  rows = []
  for run in runs:
    row: dict[str, Any] = {'name': run.name, 'group': run.group}
    for a in axes:
      row[a] = run.values.get(a, '')
    row['status'] = run.status
    row['steps'] = max((int(r['step']) for r in run.records), default=0)
    for m in metrics:
      hi = direction(m, higher if m == rank_metric else None)
      row[f'{m}_final'] = final_value(run, m)
      row[f'{m}_best'] = best_value(run, m, hi)
    rows.append(row)
  return rows


# Decimals of known metrics in the tables (others: by the column's magnitude).
DIGITS = {'modes': 1, 'high_quality': 1, 'kl': 3}


def _digits(metric: str, values: Sequence[float]) -> int:
  if metric in DIGITS:
    return DIGITS[metric]
  mag = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
  return 1 if mag >= 10 else 2 if mag >= 1 else 3


def _fmt(mean: float, se: float, digits: int | None = None) -> str:
  if not math.isfinite(mean):
    return '—'
  if digits is None:
    digits = _digits('', [mean])
  if not math.isfinite(se):
    return f'{mean:.{digits}f}'
  return f'{mean:.{digits}f} ± {se:.{digits}f}'


def markdown(axes: Sequence[str], rows: Sequence[dict], metrics: Sequence[str],
             rank_metric: str, higher: bool, note: str = '') -> str:
  """The ranked table: mean ± s.e. over seeds of each final metric."""
  gaxes = group_axes(axes)
  head = (['rank'] + gaxes + ['seeds ok'] + [f'{m} (final)' for m in metrics]
          + [f'{rank_metric} (best)', f'{rank_metric} per seed'])
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  digits = {m: _digits(m, [r[f'{m}_final_mean'] for r in rows]) for m in metrics}
  for r in rows:
    seeds = f"{r['ok']}/{r['seeds']}" + (f" ({r['diverged']} diverged)"
                                         if r['diverged'] else '')
    cells = ([str(r['rank'])] + [spec_lib.format_value(r[a]) for a in gaxes]
             + [seeds]
             + [_fmt(r[f'{m}_final_mean'], r[f'{m}_final_se'], digits[m])
                for m in metrics]
             + [_fmt(r[f'{rank_metric}_best_mean'],
                     r[f'{rank_metric}_best_se'], digits[rank_metric]),
                r[f'{rank_metric}_per_seed']])
    lines.append('| ' + ' | '.join(cells) + ' |')
  order = 'higher' if higher else 'lower'
  text = '\n'.join(lines) + '\n\n'
  others = ', '.join(m for m in metrics if m != rank_metric)
  text += (f'Ranked by final {rank_metric} ({order} is better'
           + (f'; ties by {others}' if others else '') + '); mean ± '
           'standard error over seeds; "best" is the best evaluation during '
           'training; diverged seeds are left out of the means.\n')
  if note:
    text += '\n' + note + '\n'
  return text


def varying_axes(axes: Sequence[str], rows: Sequence[dict]) -> list[str]:
  """Non-seed axes that take more than one value."""
  return [a for a in group_axes(axes)
          if len({json.dumps(r[a]) for r in rows}) > 1]


def _determined_by(axis: str, by: Sequence[str], rows: Sequence[dict]) -> bool:
  """Whether ``axis`` is a function of the ``by`` axes (e.g. zipped with them)."""
  seen: dict[str, str] = {}
  for r in rows:
    k = json.dumps([r[b] for b in by])
    v = json.dumps(r[axis])
    if seen.setdefault(k, v) != v:
      return False
  return True


def _label(values: dict) -> str:
  return ','.join(f'{k}={spec_lib.format_value(v)}' for k, v in values.items()) or 'all'


def plot_curves(path: str, axes: Sequence[str], runs: Sequence[Run],
                rows: Sequence[dict], metric: str) -> None:
  """Metric vs step, mean ± s.e. over seeds; one panel per first-axis value."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  vary = varying_axes(axes, rows)
  facet = vary[0] if len(vary) >= 2 else None
  rest = [a for a in vary if a != facet]
  rest = [a for a in rest  # drop zipped companions (e.g. a penalty's weight)
          if not _determined_by(a, [b for b in rest if b != a], rows)
          or len(rest) == 1]
  by_group: dict[str, list[Run]] = {}
  for run in runs:
    if run.ok:
      by_group.setdefault(run.group, []).append(run)
  panel_values = ([None] if facet is None else
                  list(dict.fromkeys(json.dumps(r[facet]) for r in rows)))
  ncols = len(panel_values)
  fig, axs = plt.subplots(1, ncols, figsize=(4.6 * ncols, 3.6), dpi=90,
                          squeeze=False, sharey=True)
  for ax, pv in zip(axs[0], panel_values):
    members = [r for r in rows if pv is None or json.dumps(r[facet]) == pv]
    cmap = plt.get_cmap('tab10' if len(members) <= 10 else 'tab20')
    for i, row in enumerate(members):
      group_runs = by_group.get(row['group'], [])
      per_step: dict[int, list[float]] = {}
      for run in group_runs:
        for s, v in series(run, metric):
          per_step.setdefault(s, []).append(v)
      if not per_step:
        continue
      steps = sorted(per_step)
      stats = [mean_se(per_step[s]) for s in steps]
      mean = np.array([m for m, _, _ in stats])
      se = np.nan_to_num(np.array([e for _, e, _ in stats]))
      color = cmap(i % cmap.N)
      ax.plot(steps, mean, color=color, lw=1.3, marker='o', ms=2.5,
              label=_label({a: row[a] for a in rest}) + f' (n={len(group_runs)})')
      ax.fill_between(steps, mean - se, mean + se, color=color, alpha=0.2,
                      linewidth=0)
    ax.set_xlabel('step')
    ax.set_title('all' if pv is None else f'{facet}={spec_lib.format_value(json.loads(pv))}',
                 fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc='best')
  axs[0][0].set_ylabel(f'{metric} (mean ± s.e. over seeds)')
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def plot_heatmap(path: str, axes: Sequence[str], rows: Sequence[dict],
                 metric: str, pair: Sequence[str], higher: bool) -> None:
  """Final ``metric`` (mean over seeds) over the axes ``pair`` (rows, cols);
  one panel per combination of the other varying axes that are not
  determined by the pair (zipped axes such as a penalty's weight are)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  ra, ca = pair
  others = [a for a in varying_axes(axes, rows) if a not in pair and
            not _determined_by(a, pair, rows)]
  row_vals = list(dict.fromkeys(json.dumps(r[ra]) for r in rows))
  col_vals = list(dict.fromkeys(json.dumps(r[ca]) for r in rows))
  panels = list(dict.fromkeys(json.dumps([r[o] for o in others]) for r in rows))
  key = f'{metric}_final_mean'
  finite = [r[key] for r in rows if math.isfinite(r[key])]
  digits = _digits(metric, finite)
  vmin, vmax = (min(finite), max(finite)) if finite else (0.0, 1.0)
  fig, axs = plt.subplots(1, len(panels), dpi=90, squeeze=False,
                          figsize=(1.3 * len(col_vals) * len(panels) + 1.6,
                                   0.8 * len(row_vals) + 1.4))
  cmap = plt.get_cmap('viridis' if higher else 'viridis_r').copy()
  cmap.set_bad('lightgrey')
  image = None
  for ax, pv in zip(axs[0], panels):
    grid = np.full((len(row_vals), len(col_vals)), np.nan)
    text = [[''] * len(col_vals) for _ in row_vals]
    for r in rows:
      if json.dumps([r[o] for o in others]) != pv:
        continue
      i, j = row_vals.index(json.dumps(r[ra])), col_vals.index(json.dumps(r[ca]))
      grid[i, j] = r[key]
      text[i][j] = (_fmt(r[key], r[f'{metric}_final_se'], digits)
                    .replace(' ± ', '\n±')
                    if math.isfinite(r[key]) else 'diverged')
    image = ax.imshow(np.ma.masked_invalid(grid), cmap=cmap, vmin=vmin,
                      vmax=vmax, aspect='auto')
    for i in range(len(row_vals)):
      for j in range(len(col_vals)):
        if text[i][j]:
          ax.text(j, i, text[i][j], ha='center', va='center', fontsize=7,
                  color='white' if np.isfinite(grid[i, j]) and (
                      (grid[i, j] - vmin) / ((vmax - vmin) or 1) < 0.5) == higher
                  else 'black')
    ax.set_xticks(range(len(col_vals)),
                  [spec_lib.format_value(json.loads(v)) for v in col_vals],
                  fontsize=8)
    ax.set_yticks(range(len(row_vals)),
                  [spec_lib.format_value(json.loads(v)) for v in row_vals],
                  fontsize=8)
    ax.set_xlabel(ca)
    if ax is axs[0][0]:
      ax.set_ylabel(ra)
    else:
      ax.set_yticks([])
    ax.set_title(_label(dict(zip(others, json.loads(pv)))), fontsize=9)
  if image is not None:
    fig.colorbar(image, ax=list(axs[0]), shrink=0.9,
                 label=f'final {metric} (mean over seeds)')
  fig.savefig(path, bbox_inches='tight')
  plt.close(fig)


def make_report(workdir: str, out_dir: str | None = None, *,
                metrics: Sequence[str] | None = None,
                rank_metric: str | None = None,
                higher_is_better: bool | None = None,
                heatmap_axes: Sequence[str] | None = None,
                plots: bool = True, note: str = '') -> dict:
  """Writes the report of the sweep in ``workdir`` to ``out_dir``.

  Args:
    workdir: the sweep directory.
    out_dir: defaults to ``workdir/report``.
    metrics: metrics to tabulate (default: the evaluation metrics present).
    rank_metric: the metric to rank and plot by (default: the first metric).
    higher_is_better: its direction (default: known per metric, else True).
    heatmap_axes: the two axes of the heat-map (default: the first two axes
      that vary).
    plots: write the PNG figures.
    note: text appended to ``report.md``.

  Returns:
    ``{'markdown': text, 'files': [paths], 'runs': n, 'unfinished': n}``.
  """
  axes, runs, unfinished = collect(workdir)
  if not runs:
    raise FileNotFoundError(f'no finished runs (runs/*/DONE) in {workdir}')
  metrics = list(metrics or default_metrics(runs))
  if not metrics and not rank_metric:
    raise ConfigError(f'no numeric metrics in the runs of {workdir}; name '
                     'them with --metrics')
  rank_metric = rank_metric or metrics[0]
  if rank_metric not in metrics:
    metrics.append(rank_metric)
  higher = direction(rank_metric, higher_is_better)
  out_dir = out_dir or os.path.join(workdir, 'report')
  os.makedirs(out_dir, exist_ok=True)
  rows = summarise(axes, runs, metrics, rank_metric, higher)
  first = {}
  for i, run in enumerate(runs):
    first.setdefault(run.group, i)
  in_sweep_order = sorted(rows, key=lambda r: first[r['group']])
  files = [os.path.join(out_dir, 'runs.csv'),
           os.path.join(out_dir, 'summary.csv'),
           os.path.join(out_dir, 'report.md')]
  write_csv(files[0], run_rows(axes, runs, metrics, rank_metric, higher))
  write_csv(files[1], rows)
  if unfinished:
    note = (note + '\n\n' if note else '') + (
        f'{unfinished} runs of this sweep are unfinished and not included.')
  text = markdown(axes, rows, metrics, rank_metric, higher, note)
  with open(files[2], 'w') as f:
    f.write(text)
  if plots:
    curves = os.path.join(out_dir, f'curves_{rank_metric}.png')
    plot_curves(curves, axes, runs, in_sweep_order, rank_metric)
    files.append(curves)
    vary = varying_axes(axes, rows)
    pair = list(heatmap_axes or vary[:2])
    for a in pair:
      if a not in group_axes(axes):
        raise ConfigError(f'--heatmap: {a!r} is not a (non-seed) axis of the '
                         f'sweep; axes: {group_axes(axes)}')
    if len(pair) == 2:
      heat = os.path.join(out_dir, f'heatmap_{rank_metric}.png')
      plot_heatmap(heat, axes, in_sweep_order, rank_metric, pair, higher)
      files.append(heat)
  return {'markdown': text, 'files': files, 'runs': len(runs),
          'unfinished': unfinished}


__all__ = ['Run', 'collect', 'make_report', 'markdown', 'mean_se',
           'plot_curves', 'plot_heatmap', 'summarise']
