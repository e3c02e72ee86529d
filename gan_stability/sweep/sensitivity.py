"""Sensitivity curves: a metric against one hyper-parameter axis of a sweep.

:func:`sensitivity` reads a finished sweep (:func:`gan_stability.sweep.report.collect`)
and, for one non-seed axis ``axis``, gives the metric's final (or best)
value per configuration as mean ± standard error over its seeds
(:func:`gan_stability.sweep.report.summarise`, so the numbers are those of
the sweep's report), arranged as curves: x = the axis' values, one panel
per value of the first other axis that varies (e.g. ``dataset``), one line
per combination of the remaining ones. Written to ``out_dir``:

* ``sensitivity_<axis>_<metric>.csv`` - one row per point of a curve
  (panel and line values, x, mean, s.e., seeds used, seeds diverged);
* ``sensitivity_<axis>_<metric>.md`` - the same as a table, one row per
  (panel, line), one column per x;
* ``sensitivity_<axis>_<metric>.png`` - the curves with s.e. error bars (log
  x when every x is positive and they span more than a factor 100, or when
  asked).

Diverged seeds are left out of the means and counted (as in the report).
"""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from gan_stability.errors import ConfigError
from gan_stability.sweep import report
from gan_stability.sweep import spec as spec_lib


def curves(axes: Sequence[str], rows: Sequence[dict], axis: str,
           metric: str, which: str = 'final') -> list[dict]:
  """The curve points of ``axis`` from :func:`report.summarise` rows."""
  others = [a for a in report.varying_axes(axes, rows) if a != axis]
  # An axis zipped with ``axis`` (a function of it) is not a line of its own.
  others = [a for a in others if not report._determined_by(a, [axis], rows)]  # pylint: disable=protected-access
  panel = others[0] if others else None
  lines = others[1:]
  out = []
  for r in rows:
    out.append({
        'panel': '' if panel is None else
                 f'{panel}={spec_lib.format_value(r[panel])}',
        'line': report._label({a: r[a] for a in lines}),  # pylint: disable=protected-access
        'x': r[axis],
        'mean': r[f'{metric}_{which}_mean'],
        'se': r[f'{metric}_{which}_se'],
        'seeds': r['ok'], 'diverged': r['diverged'],
    })
  # Panels and lines in the sweep's order; x ascending when numeric, else
  # in the sweep's order (categories, e.g. named cases).
  first = {}
  for i, p in enumerate(out):
    first.setdefault((p['panel'], p['line']), i)
  numeric = all(_is_number(p['x']) for p in out)
  return sorted(out, key=lambda p: (first[(p['panel'], p['line'])],
                                    float(p['x']) if numeric else 0))


def _is_number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def markdown(points: Sequence[dict], axis: str, metric: str,
             which: str) -> str:
  xs = list(dict.fromkeys(json.dumps(p['x']) for p in points))
  if all(_is_number(p['x']) for p in points):
    xs.sort(key=lambda s: float(json.loads(s)))
  head = ['panel', 'line'] + [f'{axis}={spec_lib.format_value(json.loads(x))}'
                              for x in xs]
  lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  keys = list(dict.fromkeys((p['panel'], p['line']) for p in points))
  digits = report._digits(metric, [p['mean'] for p in points])  # pylint: disable=protected-access
  for panel, line in keys:
    cells = []
    for x in xs:
      hit = [p for p in points if (p['panel'], p['line']) == (panel, line)
             and json.dumps(p['x']) == x]
      if not hit:
        cells.append('')
        continue
      p = hit[0]
      cell = report._fmt(p['mean'], p['se'], digits)  # pylint: disable=protected-access
      if p['diverged']:
        cell += f' ({p["diverged"]} div.)'
      cells.append(cell)
    lines.append('| ' + ' | '.join([panel or 'all', line] + cells) + ' |')
  lines.append('')
  lines.append(f'{which} {metric}, mean ± standard error over seeds '
               '(diverged seeds left out and counted).')
  return '\n'.join(lines) + '\n'


def plot(path: str, points: Sequence[dict], axis: str, metric: str,
         which: str, log_x: bool | None = None) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  panels = list(dict.fromkeys(p['panel'] for p in points))
  numeric = all(_is_number(p['x']) for p in points)
  if log_x is None:
    pos = [p['x'] for p in points if numeric and p['x'] > 0]
    log_x = bool(numeric and len(pos) == len(points) and pos and
                 max(pos) / min(pos) > 100)
  fig, axs = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.6),
                          dpi=90, squeeze=False)
  for ax, panel in zip(axs[0], panels):
    mine = [p for p in points if p['panel'] == panel]
    for line in dict.fromkeys(p['line'] for p in mine):
      pts = [p for p in mine if p['line'] == line]
      xs = ([p['x'] for p in pts] if numeric else
            list(range(len(pts))))
      ax.errorbar(xs, [p['mean'] for p in pts],
                  yerr=np.nan_to_num([p['se'] for p in pts]), marker='o',
                  ms=3, capsize=3, lw=1.2 if numeric else 0,
                  elinewidth=1.2,
                  label=line if line != 'all' else None)
      if not numeric:
        ax.set_xticks(xs)
        ax.set_xticklabels([str(p['x']) for p in pts], rotation=45,
                           fontsize=7)
    if log_x:
      ax.set_xscale('log')
    ax.set_xlabel(axis)
    ax.set_title(panel or 'all', fontsize=9)
    ax.grid(alpha=0.3)
    if any(p['line'] != 'all' for p in mine):
      ax.legend(fontsize=6, loc='best')
  axs[0][0].set_ylabel(f'{which} {metric} (mean ± s.e.)')
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def sensitivity(workdir: str, axis: str, metric: str, *,
                out_dir: str | None = None,
                higher_is_better: bool | None = None, which: str = 'final',
                log_x: bool | None = None, plots: bool = True) -> dict:
  """Writes the sensitivity curves of ``metric`` over ``axis``.

  Returns ``{'markdown', 'points', 'files'}``.

  Raises:
    FileNotFoundError: no finished runs in ``workdir``.
    ConfigError: ``axis`` is not a non-seed axis of the sweep, ``metric``
      is in no run's records, or ``which`` is not final / best.
  """
  if which not in ('final', 'best'):
    raise ConfigError(f"--which: expected 'final' or 'best', got {which!r}")
  axes, runs, _ = report.collect(workdir)
  if not runs:
    raise FileNotFoundError(f'no finished runs (runs/*/DONE) in {workdir}')
  gaxes = report.group_axes(axes)
  if axis not in gaxes:
    raise ConfigError(f'--axis: {axis!r} is not a (non-seed) axis of the '
                      f'sweep in {workdir}; axes: {gaxes}')
  if not any(metric in r for run in runs for r in run.records):
    raise ConfigError(f'--metric: no run of {workdir} records {metric!r}')
  higher = report.direction(metric, higher_is_better)
  rows = report.summarise(axes, runs, [metric], metric, higher)
  first = {}
  for i, run in enumerate(runs):
    first.setdefault(run.group, i)
  rows.sort(key=lambda r: first[r['group']])  # the sweep's order
  points = curves(axes, rows, axis, metric, which)
  out_dir = out_dir or os.path.join(workdir, 'report')
  os.makedirs(out_dir, exist_ok=True)
  stem = os.path.join(out_dir, f'sensitivity_{axis}_{metric}')
  text = markdown(points, axis, metric, which)
  files = [stem + '.csv', stem + '.md']
  report.write_csv(files[0], points)
  with open(files[1], 'w') as f:
    f.write(text)
  if plots:
    plot(stem + '.png', points, axis, metric, which, log_x)
    files.append(stem + '.png')
  return {'markdown': text, 'points': points, 'files': files}
