r"""2-D ring (8 modes) and grid (25 modes): the PacGAN mode-collapse table.

    python -m experiments.reproduce.mixtures --workdir=/tmp/repro_mixtures \
        [--archs=ours,pacgan] [--seeds=ours=10,pacgan=10] [--datasets=ring,grid] \
        [--parallel=2] \
        [--out=docs/reproduce/mixtures]
    python -m experiments.reproduce.mixtures --quick --workdir=/tmp/q  # a check

Protocol (Lin et al., "PacGAN", NeurIPS 2018, Sec. 5.1 / Table 1, after
VEEGAN): the ring of 8 Gaussians (radius 1, sigma 0.01) and the 5 x 5 grid
(spacing 2, sigma 0.05) of ``gan_stability/data/mixtures.py``; after training,
2,500 samples; a mode is *captured* when it holds a sample within 3 sigma, a
sample is *high quality* when it lies within 3 sigma of some mode, and the
*reverse KL* is KL(histogram of the samples' nearest modes || uniform)
(``gan_stability/metrics/mixtures.py``); 10 seeds, mean +- standard error.

Methods (one sweep axis, ``variant`` of ``experiments/configs/mog.py`` zipped
with ``model.packing``): GAN (minimax), non-saturating GAN, WGAN-GP (its
authors' toy-data lambda 0.1; lambda 10 on this data: docs/reproductions.md),
SN-GAN, hinge + R1 and PacGAN2 (the non-saturating GAN with a discriminator
that sees pairs of samples). Architectures (``--archs``):

* ``ours`` - the library's default MLPs (3 x 128; ReLU G, leaky-ReLU D);
* ``pacgan`` - the VEEGAN / PacGAN 2-D networks: G with four hidden layers of
  400 ReLU units and batch norm, D with three hidden layers of 200 maxout
  units of 5 pieces.

Every method runs on the same CPU budget (:data:`BUDGET`): Adam at lr 1e-3
for both players (the papers' 1e-4 needs about 10x the steps), batch 64,
3,000 generator updates (each after the recipe's n_critic D updates); the
losses, penalties, n_critic and Adam betas are the recipes'. The published
runs were longer, so ours is a CPU-budget version of the protocol, not the
papers' training length. Each (method, dataset, architecture) trains its 10
seeds as one vmapped program (``gan_stability/train/seeds.py``); the
two architectures are two sweeps in ``WORKDIR/<arch>/`` that the sweep runner
resumes and skips like any other (rerun the command after an interruption).

Writes ``mixtures.md`` (our rows beside the published ones), ``mixtures.csv``
(one row per run), ``summary.csv`` and ``mixtures.png`` (the final samples of
seed 0 of every method) to ``--out`` (default ``WORKDIR``).
"""

from __future__ import annotations

import os
import sys

import numpy as np
from absl import flags, logging

from experiments import entry
from experiments.reproduce import common
from gan_stability.sweep import spec as sw

FLAGS = flags.FLAGS
SPEC = 'experiments/reproduce/mixtures.py'

# (label, mog.py variant, model.packing)
METHODS = (
    ('GAN (minimax)', 'vanilla', 1),
    ('NS-GAN', 'nonsaturating', 1),
    ('WGAN-GP (λ 0.1)', 'wgan_gp_toy', 1),
    ('SN-GAN', 'sngan', 1),
    ('hinge + R1 (γ 0.2)', 'hinge_r1', 1),
    ('PacGAN2 (NS)', 'nonsaturating', 2),
)
DATASETS = ('ring', 'grid')
NUM_MODES = {'ring': 8, 'grid': 25}

ARCHS = {
    'ours': {'model.g_hidden': 128, 'model.g_layers': 3, 'model.g_norm': 'none',
             'model.d_hidden': 128, 'model.d_layers': 3, 'model.d_maxout': 1},
    'pacgan': {'model.g_hidden': 400, 'model.g_layers': 4,
               'model.g_norm': 'batch', 'model.d_hidden': 200,
               'model.d_layers': 3, 'model.d_maxout': 5},
}

BUDGET = {
    'num_steps': 3000, 'batch_size': 64, 'steps_per_dispatch': 100,
    'optimizer.g_lr': 1e-3, 'optimizer.d_lr': 1e-3,
    'log_every': 500, 'eval_every': 1500, 'checkpoint_every': 1500,
    'eval_samples': 2500, 'write_tensorboard': False, 'write_samples': False,
}
QUICK = {
    'num_steps': 20, 'steps_per_dispatch': 10, 'log_every': 10,
    'eval_every': 20, 'checkpoint_every': 20, 'eval_samples': 500,
    'batch_size': 32,
    'model.g_hidden': 16, 'model.d_hidden': 8,
}


def make_arg(arch: str, *, quick: bool = False, seeds: int = 10,
             datasets=DATASETS) -> str:
  """The sweep argument ``ARCH[,quick][,seeds=N][,datasets=a+b]`` (the
  sweep workers rebuild the same sweep from it)."""
  parts = [arch] + (['quick'] if quick else [])
  if seeds != 10:
    parts.append(f'seeds={seeds}')
  if tuple(datasets) != DATASETS:
    parts.append('datasets=' + '+'.join(datasets))
  return ','.join(parts)


def parse_arg(arg: str | None) -> tuple[str, bool, int, tuple[str, ...]]:
  """Inverse of :func:`make_arg`: ``(arch, quick, seeds, datasets)``."""
  arch, *rest = (arg or 'ours').split(',')
  quick, seeds, datasets = False, 10, DATASETS
  error = ValueError(f'reproduce/mixtures: sweep argument {arg!r}; allowed: '
                     'ARCH[,quick][,seeds=N][,datasets=ring+grid] with ARCH in '
                     f'{sorted(ARCHS)}')
  if arch not in ARCHS:
    raise error
  for part in rest:
    key, _, value = part.partition('=')
    if part == 'quick':
      quick = True
    elif key == 'seeds' and value.isdigit() and int(value) >= 1:
      seeds = int(value)
    elif key == 'datasets' and value and all(
        d in DATASETS for d in value.split('+')):
      datasets = tuple(value.split('+'))
    else:
      raise error
  return arch, quick, seeds, datasets


def get_sweep(arg: str | None = None) -> sw.Sweep:
  """The sweep of one architecture (``--sweep=...mixtures.py:pacgan``)."""
  arch, quick, seeds, datasets = parse_arg(arg)
  overrides = {**BUDGET, **ARCHS[arch], **(QUICK if quick else {})}
  return sw.Sweep(
      base='experiments/configs/mog.py:nonsaturating',
      overrides=overrides,
      axes=sw.product(
          sw.zip(sw.axis('variant', [m[1] for m in METHODS]),
                 sw.axis('model.packing', [m[2] for m in METHODS])),
          sw.axis('dataset', list(datasets)),
          sw.axis('seed', range(seeds))),
      seeds_in_one_program=True,
      description=f'PacGAN 2-D protocol, {arch} architecture.')


def method_label(values: dict) -> str:
  for label, variant, packing in METHODS:
    if values['variant'] == variant and values['model.packing'] == packing:
      return label
  raise KeyError(values)


# ------------------------------------------------------------------ runs ---


def run_arch(workdir: str, arch: str, *, quick: bool, seeds: int,
             datasets, parallel: int) -> float:
  """Trains (or resumes, or skips) one architecture's sweep; wall seconds."""
  arg = make_arg(arch, quick=quick, seeds=seeds, datasets=datasets)
  return common.run_sweep(SPEC, arg, os.path.join(workdir, arch),
                          get_sweep(arg), parallel=parallel, tag=arch)


def collect_rows(workdir: str, arch: str) -> list[dict]:
  """One row per finished run of ``arch``: method, dataset, seed, metrics."""
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  _, runs, unfinished = report.collect(os.path.join(workdir, arch))
  if unfinished:
    raise RuntimeError(f'{arch}: {unfinished} runs not finished; rerun the command')
  rows = []
  for r in runs:
    rows.append({
        'arch': arch, 'dataset': r.values['dataset'],
        'method': method_label(r.values), 'variant': r.values['variant'],
        'packing': r.values['model.packing'], 'seed': r.values['seed'],
        'status': r.status,
        'modes': report.final_value(r, 'modes'),
        'high_quality': report.final_value(r, 'high_quality'),
        'kl': report.final_value(r, 'kl'),
        'step': max((int(x['step']) for x in r.records), default=0),
    })
  return rows


def summarise(rows: list[dict]) -> list[dict]:
  """Mean and standard error over seeds per (dataset, method, arch)."""
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  out = []
  for dataset in DATASETS:
    for label, _, _ in METHODS:
      for arch in ARCHS:
        sel = [r for r in rows if (r['dataset'], r['method'], r['arch']) ==
               (dataset, label, arch)]
        if not sel:
          continue
        row = {'dataset': dataset, 'method': label, 'arch': arch,
               'seeds': len(sel), 'ok': sum(r['status'] == 'ok' for r in sel)}
        for m in ('modes', 'high_quality', 'kl'):
          row[m], row[m + '_se'], _ = report.mean_se([r[m] for r in sel])
        row['modes_per_seed'] = ' '.join(
            'x' if not np.isfinite(r['modes']) else str(int(r['modes']))
            for r in sel)
        out.append(row)
  return out


def markdown(summary: list[dict], note: str) -> str:
  from experiments.reproduce import published  # pylint: disable=g-import-not-at-top
  lines = []
  for dataset in DATASETS:
    if not any(r['dataset'] == dataset for r in summary):
      continue
    lines += [f'### {dataset} ({NUM_MODES[dataset]} modes)', '',
              '| method | architecture | modes | % high quality | reverse KL | '
              'modes per seed | source |',
              '|---|---|---|---|---|---|---|']
    for r in summary:
      if r['dataset'] != dataset:
        continue
      seeds = common.seeds_label(r['seeds'], r['ok'])
      lines.append(
          f"| {r['method']} | {r['arch']} | "
          f"{common.pm(r['modes'], r['modes_se'], 1)} | "
          f"{common.pm(r['high_quality'], r['high_quality_se'], 1)} | "
          f"{common.pm(r['kl'], r['kl_se'], 2)} | {r['modes_per_seed']} | "
          f'ours, {seeds} |')
    for d, method, modes, hq, kl, src in published.MIXTURES:
      if d == dataset:
        lines.append(f'| {method} | theirs | {modes} | {hq} | {kl} | | {src} |')
    lines.append('')
  return '\n'.join(lines + [note]) + '\n'


def figure(path: str, workdir: str, archs, quick: bool, datasets) -> None:
  """Final samples of seed 0: one row per (architecture, dataset)."""
  from gan_stability import plotting  # pylint: disable=g-import-not-at-top
  from gan_stability.data import mixtures  # pylint: disable=g-import-not-at-top
  from gan_stability.train.tasks import final_samples  # pylint: disable=g-import-not-at-top
  panels, centers, titles = [], [], []
  for arch in archs:
    points = {p.name: p for p in sw.expand(
        get_sweep(make_arg(arch, quick=quick, seeds=1, datasets=datasets)))}
    for dataset in datasets:
      for label, variant, packing in METHODS:
        p = next(q for q in points.values() if (
            q.values['variant'], q.values['model.packing'],
            q.values['dataset']) == (variant, packing, dataset))
        run_dir = os.path.join(workdir, arch, 'runs', p.name)
        try:
          panels.append(final_samples(p.config, run_dir))
        except Exception:  # pylint: disable=broad-except
          panels.append(np.zeros((0, 2), np.float32))  # diverged: no samples
        centers.append(mixtures.from_config(p.config).centers)
        titles.append(f'{arch} {dataset}: {label}')
  plotting.save_grid(path, panels, centers, titles, ncols=len(METHODS))


def run(workdir: str, *, archs=('ours', 'pacgan'), seeds=10,
        datasets=DATASETS, quick: bool = False, parallel: int = 1,
        out: str = '') -> str:
  """Runs the protocol, writes the outputs; returns the Markdown table.

  ``seeds``: an int for every architecture, or ``{arch: seeds}``.
  """
  out = out or workdir
  os.makedirs(out, exist_ok=True)
  per_arch = seeds if isinstance(seeds, dict) else {a: seeds for a in archs}
  seconds, rows = {}, []
  for arch in archs:
    seconds[arch] = run_arch(workdir, arch, quick=quick, seeds=per_arch[arch],
                             datasets=datasets, parallel=parallel)
    rows += collect_rows(workdir, arch)
  summary = summarise(rows)
  steps = max(r['step'] for r in rows)
  budget = {**BUDGET, **(QUICK if quick else {})}
  note = (
      f'Ours: {steps:,} generator updates per run (after n_critic D updates '
      f"each: 5 for WGAN-GP and SN-GAN, else 1), batch {budget['batch_size']}, "
      f"Adam lr {budget['optimizer.g_lr']:g} for every method (betas the "
      f"recipes'), {budget['eval_samples']:,} samples per evaluation, "
      'mean ± standard error over seeds ("x": a diverged seed, left out of '
      'the means). Architectures: ' + '; '.join(
          f'{a}: {per_arch[a]} seeds per row, {seconds[a]:.0f} s wall for its '
          f'{len(METHODS) * len(datasets) * per_arch[a]} runs this time'
          for a in archs) +
      '. Published: their training lengths and learning rates differ from '
      'ours (the rows as printed in the authors\' tables: '
      'experiments/reproduce/published.py). Command: `python -m '
      'experiments.reproduce.mixtures '
      f"--workdir=WORKDIR --archs={','.join(archs)} --seeds="
      + ','.join(f'{a}={per_arch[a]}' for a in archs)
      + f"{' --quick' if quick else ''}`.")
  table = markdown(summary, note)
  with open(os.path.join(out, 'mixtures.md'), 'w') as f:
    f.write(table)
  common.write_csv(os.path.join(out, 'mixtures.csv'), rows)
  common.write_csv(os.path.join(out, 'summary.csv'), summary)
  figure(os.path.join(out, 'mixtures.png'), workdir, archs, quick, datasets)
  print('\n' + table, flush=True)
  print(f'wrote {out}/mixtures.md, mixtures.csv, summary.csv, mixtures.png',
        flush=True)
  return table


def parse_seeds(items, archs) -> dict:
  """``['10']`` or ``['ours=10', 'pacgan=5']`` -> ``{arch: seeds}``."""
  error = ValueError(f'--seeds: {",".join(items)!r}; allowed: N, or ARCH=N for '
                     f'every architecture of --archs ({",".join(archs)}), N >= 1')
  if len(items) == 1 and items[0].isdigit():
    out = {a: int(items[0]) for a in archs}
  else:
    out = {}
    for item in items:
      arch, _, n = item.partition('=')
      if arch not in ARCHS or not n.isdigit():
        raise error
      out[arch] = int(n)
  if set(out) != set(archs) or min(out.values()) < 1:
    raise error
  return out


def define_flags(flag_values=FLAGS):
  """Command-line flags (defined only when run as a script: the sweep
  workers import this file for :func:`get_sweep`)."""
  common.define_sweep_flags(flag_values, workdir='/tmp/gan_stability_mixtures')
  flags.DEFINE_list('archs', ['ours', 'pacgan'],
                    f'Architectures, of {sorted(ARCHS)}.', flag_values=flag_values)
  flags.DEFINE_list('seeds', ['10'], 'Seeds per row: N for every '
                    'architecture, or ARCH=N,... (e.g. ours=10,pacgan=5).',
                    flag_values=flag_values)
  flags.DEFINE_list('datasets', list(DATASETS), f'Of {list(DATASETS)}.',
                    flag_values=flag_values)
  flags.DEFINE_bool('quick', False, 'Tiny networks, 20 steps: a check.',
                    flag_values=flag_values)


def main(argv):
  entry.no_arguments(argv)
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  bad = [a for a in FLAGS.archs if a not in ARCHS]
  if bad or not FLAGS.archs:
    print(f'error: --archs: unknown {bad}; allowed: {sorted(ARCHS)}',
          file=sys.stderr)
    sys.exit(2)
  if not FLAGS.datasets or any(d not in DATASETS for d in FLAGS.datasets):
    print(f'error: --datasets: {FLAGS.datasets}; allowed: {list(DATASETS)}',
          file=sys.stderr)
    sys.exit(2)
  try:
    seeds = parse_seeds(FLAGS.seeds, FLAGS.archs)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  run(FLAGS.workdir, archs=tuple(FLAGS.archs), seeds=seeds,
      datasets=tuple(FLAGS.datasets), quick=FLAGS.quick, parallel=FLAGS.parallel, out=FLAGS.out)


if __name__ == '__main__':
  define_flags()
  entry.main(main)
