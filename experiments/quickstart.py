r"""Main job: vanilla, WGAN-GP and SN-GAN on the 2-D ring and grid, several seeds.

    python -m experiments.quickstart [--workdir=/tmp/gan_stability_quickstart] [--seeds=3]

Each run is an ordinary ``train_and_evaluate`` run (its own workdir with
config, metrics, samples and checkpoints; rerunning resumes or skips it).
The recipes are those of ``experiments/configs/mog.py``; only the CPU budget
below (:data:`BUDGET`) is applied on top, the same for every variant. The job
prints one table (mean +- standard error over seeds) beside published
numbers and writes ``results.md``, ``results.csv`` and ``final_samples.png``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import time

import numpy as np
from absl import flags, logging

from experiments import entry
from experiments.configs import mog

from experiments.reproduce import published

flags.DEFINE_string('workdir', '/tmp/gan_stability_quickstart', 'Output directory.')
flags.DEFINE_integer('seeds', 3, 'Seeds per (variant, dataset).')
flags.DEFINE_integer('num_steps', None, 'Override the budget\'s generator updates.')
FLAGS = flags.FLAGS

VARIANTS = ('vanilla', 'wgan_gp', 'wgan_gp_toy', 'sngan')
DATASETS = ('ring', 'grid')

# The CPU budget (network size, batch, steps, learning rate 1e-3), applied to
# every variant alike; losses, penalties, n_critic and Adam betas stay the
# recipes'. Declared in the configs module, which the sensitivity ablation
# shares.
BUDGET = mog.CPU_BUDGET

# Published results (PacGAN / VEEGAN Table 1; their architectures and training
# lengths differ from ours).
PUBLISHED = published.MIXTURES


def make_config(variant: str, dataset: str, seed: int, num_steps: int | None = None):
  c = mog.get_config(variant)
  c.dataset = dataset
  c.seed = seed
  for key, value in BUDGET.items():
    node = c
    *parents, leaf = key.split('.')
    for p in parents:
      node = node[p]
    node[leaf] = value
  if num_steps is not None:
    c.num_steps = num_steps
    c.log_every = c.eval_every = c.checkpoint_every = c.steps_per_dispatch = (
        min(c.steps_per_dispatch, num_steps))
  return c


def mean_se(values) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float('nan')
  return float(v.mean()), float(se)


def summarise(rows: list[dict]) -> list[dict]:
  """One row per (dataset, variant): mean and s.e. over seeds."""
  out = []
  for dataset in DATASETS:
    for variant in VARIANTS:
      sel = [r for r in rows if r['dataset'] == dataset and r['variant'] == variant]
      if not sel:
        continue
      row = {'dataset': dataset, 'variant': variant, 'seeds': len(sel)}
      for m in ('modes', 'high_quality', 'kl', 'seconds'):
        row[m], row[m + '_se'] = mean_se([r[m] for r in sel])
      row['modes_per_seed'] = ' '.join(str(r['modes']) for r in sel)
      out.append(row)
  return out


LABELS = {'wgan_gp': 'wgan_gp, λ=10', 'wgan_gp_toy': 'wgan_gp_toy, λ=0.1'}


def markdown_table(summary: list[dict], budget_note: str) -> str:
  fmt = lambda m, s, d: f'{m:.{d}f} ± {s:.{d}f}'
  num_modes = {'ring': 8, 'grid': 25}
  lines = [
      '| data | method | modes | % high quality | reverse KL | source |',
      '|---|---|---|---|---|---|',
  ]
  for r in summary:
    lines.append(
        f"| {r['dataset']} | {LABELS.get(r['variant'], r['variant'])} "
        f"(ours, {r['seeds']} seeds) | "
        f"{fmt(r['modes'], r['modes_se'], 1)} / {num_modes[r['dataset']]} "
        f"({r['modes_per_seed']}) | {fmt(r['high_quality'], r['high_quality_se'], 1)} | "
        f"{fmt(r['kl'], r['kl_se'], 3)} | this run |")
  for dataset, method, modes, hq, kl, src in PUBLISHED:
    lines.append(f'| {dataset} | {method} | {modes} | {hq} | {kl} | {src} |')
  return '\n'.join(lines) + '\n\n' + budget_note + '\n'


def run(workdir: str, seeds: int, num_steps: int | None = None) -> list[dict]:
  from gan_stability import plotting  # pylint: disable=g-import-not-at-top
  from gan_stability.data import mixtures
  from gan_stability.train import train_and_evaluate
  from gan_stability.train.tasks import final_samples

  os.makedirs(workdir, exist_ok=True)
  rows, panels, centers, titles = [], [], [], []
  t_start = time.time()
  total = len(VARIANTS) * len(DATASETS) * seeds
  for dataset in DATASETS:
    for variant in VARIANTS:
      for seed in range(seeds):
        c = make_config(variant, dataset, seed, num_steps)
        wd = os.path.join(workdir, 'runs', f'{dataset}_{variant}_seed{seed}')
        t0 = time.time()
        with contextlib.redirect_stdout(io.StringIO()):
          result = train_and_evaluate(c, wd)
        secs = time.time() - t0
        rows.append({'dataset': dataset, 'variant': variant, 'seed': seed,
                     'modes': result['modes'], 'high_quality': result['high_quality'],
                     'kl': result['kl'], 'seconds': secs, 'steps': result['step']})
        print(f'[{len(rows)}/{total}] {dataset:4s} {variant:8s} seed {seed}: '
              f"{result['modes']} modes, {result['high_quality']:.1f}% HQ, "
              f"KL {result['kl']:.3f} ({secs:.1f}s)", flush=True)
        panels.append(final_samples(c, wd))
        centers.append(mixtures.from_config(c).centers)
        titles.append(f"{dataset} {variant} s{seed}: {result['modes']} modes, "
                      f"{result['high_quality']:.0f}% HQ")
  elapsed = time.time() - t_start

  summary = summarise(rows)
  steps = rows[0]['steps']
  budget_note = (
      f'Budget: {steps} generator updates per run (each after n_critic D '
      f'updates: 1 vanilla, 5 WGAN-GP and SN-GAN), Adam lr 1e-3, batch {BUDGET["batch_size"]}, '
      f'MLPs of 3x{BUDGET["model.g_hidden"]} units; 2,500 samples per '
      f'evaluation; {len(rows)} runs in {elapsed:.0f} s on this machine. '
      'Recipes: experiments/configs/mog.py.')
  table = markdown_table(summary, budget_note)
  print('\n' + table, flush=True)
  with open(os.path.join(workdir, 'results.md'), 'w') as f:
    f.write(table)
  with open(os.path.join(workdir, 'results.csv'), 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
  with open(os.path.join(workdir, 'summary.csv'), 'w', newline='') as f:
    w = csv.DictWriter(f, fieldnames=list(summary[0]))
    w.writeheader()
    w.writerows(summary)
  plotting.save_grid(os.path.join(workdir, 'final_samples.png'), panels,
                     centers, titles, ncols=seeds)
  print(f'wrote {workdir}/results.md, results.csv, summary.csv, final_samples.png',
        flush=True)
  return rows


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'seeds', 'num_steps')
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  run(FLAGS.workdir, FLAGS.seeds, FLAGS.num_steps)


if __name__ == '__main__':
  entry.main(main)
