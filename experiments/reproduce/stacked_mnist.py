r"""Stacked MNIST (1,000 modes): the mode-collapse table of PacGAN / Unrolled GAN.

    python -m experiments.reproduce.stacked_mnist --workdir=/tmp/repro_stacked \
        --data_dir=/path/to/mnist_idx [--seeds=3] [--num_steps=3000] \
        [--capacities=quarter,half] [--parallel=1] [--out=docs/reproduce/stacked_mnist]
    python -m experiments.reproduce.stacked_mnist --quick --workdir=/tmp/q  # a check

Protocol (Metz et al., "Unrolled Generative Adversarial Networks", ICLR 2017,
sec. 3.3 and Table 2; Srivastava et al., "VEEGAN", NeurIPS 2017, sec. 5.2;
Lin et al., "PacGAN: The power of two samples in generative adversarial
networks", NeurIPS 2018, sec. 4.1, Tables 2 and 3): each training image
stacks three MNIST digits as its R, G and B channels, so the data has 1,000
equally likely modes (``gan_stability/data/stacked_mnist.py``: 128,000
examples, as in PacGAN's released code). After training, 26,000 samples
(PacGAN's ``num_test_sample``) are drawn; each channel is classified by the
project's MNIST classifier (99.55 % on t10k) and the sample's mode is
``100 d_R + 10 d_G + d_B``; the table gives the *modes* covered (of 1,000)
and the *KL* of the mode histogram to the uniform distribution
(``gan_stability/metrics/modes.py``; the ``stacked_modes`` metric of
``gan_stability/train/evaluate.py``), mean +- standard error over seeds.

Methods (one sweep axis: the ``variant`` of ``experiments/configs/
stacked_mnist.py`` zipped with ``model.packing``; recipes and their papers
in ``experiments/configs/recipes.py``):

* ``DCGAN (NS)`` - the non-saturating GAN (Goodfellow et al. 2014) with the
  DCGAN recipe (Radford et al. 2016: batch norm in G and D, Adam(2e-4, 0.5,
  0.999));
* ``WGAN-GP`` - lambda 10, n_critic 5, Adam(1e-4, 0, 0.9) (Gulrajani et al.
  2017), no batch norm in D;
* ``SN-GAN`` - spectral norm on D, n_dis 5, Adam(1e-4, 0.5, 0.9) (Miyato et
  al. 2018, Table 1 setting A);
* ``PacDCGAN2`` - DCGAN (NS) whose discriminator sees pairs of samples
  stacked along channels (``model.packing=2``; Lin et al. 2018).

Discriminator capacity (the second axis, ``--capacities``): the
DCGAN-28 of ``experiments/configs/stacked_mnist.py`` with ``g_width 64`` and
``d_width`` 16 (``quarter``: D = 1/4 G), 32 (``half``: D = 1/2 G) or 64
(``full``: D = G, the VEEGAN / PacGAN Table 2 setting). The ratio is one of
widths. PacGAN's released Table 3 code
(``stacked_MNIST_experiments/unrolled_GAN_experiment/D=0.25G/`` and
``D=0.5G/``: ``model.py``, ``config.py``) uses much smaller networks (G of
3x3 convolutions with 64-32-16-8 channels; D with 2-4-8 channels for 1/4,
4-8-16 for 1/2), 500,000 steps at batch 128 and 50 runs; our rows keep the
project's DCGAN and vary only D's width.

Budget. The target on this project's 2-core CPU is at most 1 hour per run;
``--num_steps`` (default 3,000 generator updates, batch 64, every recipe
with its own learning rates, n_critic and betas) sets it. Measured here with
``cifar10.time_train_step`` on the full-size networks (batch 64, the CPU
shared with other jobs, load average ~5): WGAN-GP 1,056 ms and SN-GAN 671 ms
per generator update at d_width 32 (5 critic updates each), PacDCGAN2
216 ms at d_width 16; ``docs/bench/train_steps.md`` has 697 / 479 / 275 ms
for WGAN-GP / SN-GAN / NS at d_width 64 on a quieter machine. So 3,000
WGAN-GP steps take ~35 min (quiet) to ~53 min (loaded), the other methods
less; the evaluation of
26,000 samples comes on top (not timed here). With the defaults (4 methods x
2 capacities x 3 seeds = 24 runs) that is under a day of this CPU. The rows
are therefore a CPU-budget version of the protocol, far shorter than the
papers' training. The full protocol, for an accelerator, is PacGAN's Table 2
schedule (50 epochs of the 128,000 images at batch 64 = 100,000 generator
updates, 10 runs)::

    python -m experiments.reproduce.stacked_mnist --workdir=DIR \
        --data_dir=/path/to/mnist_idx --num_steps=100000 --seeds=10 \
        --capacities=quarter,half,full --eval_samples=26000

Each (method, capacity, seed) is one training run of the sweep runner (seeds
are *not* vmapped: image models run one run per point), in
``WORKDIR/runs/<point>/``; finished runs are skipped and interrupted ones
resume, so rerun the command after an interruption. Each finished run is
then evaluated once with ``evaluate_checkpoint(run, num_samples=26000,
metrics='stacked_modes')``; the result is appended to the run's
``metrics.jsonl`` (``evaluate_only: true``) and reused by later reruns.

Writes ``stacked_mnist.md`` (our rows beside the published ones),
``stacked_mnist.csv`` (one row per run) and ``summary.csv`` (mean and
standard error per method and capacity) to ``--out`` (default ``WORKDIR``).

``--quick`` runs every method and capacity for 2 steps with tiny networks
(g_width 8, d_width 2 / 4 / 8) on ``--data_dir`` or, without it, on random
"digits" written as IDX files to ``WORKDIR/fake_mnist``, and evaluates 500
samples: a check of the pipeline, not a result.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags, logging

from experiments import entry
from experiments.reproduce import common
from gan_stability.data import idx
from gan_stability.sweep import spec as sw

FLAGS = flags.FLAGS
SPEC = 'experiments/reproduce/stacked_mnist.py'
BASE = 'experiments/configs/stacked_mnist.py:nonsaturating'

# (label, stacked_mnist.py variant, model.packing)
METHODS = (
    ('DCGAN (NS)', 'nonsaturating', 1),
    ('WGAN-GP', 'wgan_gp', 1),
    ('SN-GAN', 'sngan', 1),
    ('PacDCGAN2', 'nonsaturating', 2),
)
# name -> (label, d_width, quick d_width); G has g_width G_WIDTH (QUICK: 8).
CAPACITIES = {
    'quarter': ('D = 1/4 G', 16, 2),
    'half': ('D = 1/2 G', 32, 4),
    'full': ('D = G', 64, 8),
}
DEFAULT_CAPACITIES = ('quarter', 'half')
G_WIDTH = 64
NUM_STEPS = 3000       # the CPU budget (see the module docstring)
EVAL_SAMPLES = 26_000  # PacGAN / VEEGAN evaluation size
QUICK_EVAL_SAMPLES = 500
DEFAULT_SEEDS = 3

BUDGET = {
    'batch_size': 64, 'steps_per_dispatch': 1, 'log_every': 100,
    'checkpoint_every': 500, 'eval_samples': 2600,
    'eval.metrics': 'stacked_modes', 'write_tensorboard': False,
    'model.g_width': G_WIDTH,
}
QUICK = {
    'batch_size': 8, 'log_every': 2, 'checkpoint_every': 2,
    'eval_samples': 8, 'eval.metrics': '', 'write_samples': False,
    'log_sigmas': False, 'model.g_width': 8, 'model.z_dim': 16,
    'data.stacked_num_examples': 256, 'data.samples_per_row': 2,
    # Implementation only (the same functions): XLA's own convolutions and
    # rolled loops compile ~2x faster, which is what a 2-step check pays for.
    'model.conv_impl': 'native', 'loop_impl': 'scan',
}
QUICK_STEPS = 2


# ------------------------------------------------------------- the sweep ---


def make_arg(*, data_dir: str, capacities=DEFAULT_CAPACITIES,
             seeds: int = DEFAULT_SEEDS, num_steps: int = NUM_STEPS,
             quick: bool = False) -> str:
  """The sweep argument ``CAP+CAP,seeds=N,steps=N[,quick],data=DIR`` (the
  sweep workers rebuild the same sweep from it; ``data=`` comes last and
  takes the rest of the text, so the path may hold commas)."""
  parts = ['+'.join(capacities), f'seeds={seeds}', f'steps={num_steps}']
  if quick:
    parts.append('quick')
  return ','.join(parts + [f'data={data_dir}'])


def parse_arg(arg: str | None) -> tuple[tuple[str, ...], int, int, bool, str]:
  """Inverse of :func:`make_arg`: ``(capacities, seeds, steps, quick, dir)``."""
  error = ValueError(
      f'reproduce/stacked_mnist: sweep argument {arg!r}; allowed: '
      'CAP[+CAP...],seeds=N,steps=N[,quick],data=DIR with CAP in '
      f'{list(CAPACITIES)}, N >= 1 and DIR the MNIST IDX directory')
  text = arg or ''
  head, sep, data_dir = text.partition(',data=')
  if not sep or not data_dir:
    raise error
  caps, *rest = head.split(',')
  capacities = tuple(caps.split('+'))
  if not caps or any(c not in CAPACITIES for c in capacities) or len(
      set(capacities)) != len(capacities):
    raise error
  seeds, steps, quick = None, None, False
  for part in rest:
    key, _, value = part.partition('=')
    if part == 'quick':
      quick = True
    elif key in ('seeds', 'steps') and value.isdigit() and int(value) >= 1:
      if key == 'seeds':
        seeds = int(value)
      else:
        steps = int(value)
    else:
      raise error
  if seeds is None or steps is None:
    raise error
  return capacities, seeds, steps, quick, data_dir


def get_sweep(arg: str | None = None) -> sw.Sweep:
  """The sweep (``--sweep=experiments/reproduce/stacked_mnist.py:ARG``)."""
  capacities, seeds, steps, quick, data_dir = parse_arg(arg)
  overrides = {**BUDGET, **(QUICK if quick else {}), 'num_steps': steps,
               'eval_every': steps, 'data.dir': data_dir}
  if not quick:  # ~4 evaluations during training (2,600 samples each); the
    log = BUDGET['log_every']  # loop evaluates only at logging steps
    overrides['eval_every'] = max(log, steps // 4 // log * log)
  widths = [CAPACITIES[c][2 if quick else 1] for c in capacities]
  return sw.Sweep(
      base=BASE,
      overrides=overrides,
      axes=sw.product(
          sw.zip(sw.axis('variant', [m[1] for m in METHODS]),
                 sw.axis('model.packing', [m[2] for m in METHODS])),
          sw.axis('model.d_width', widths),
          sw.axis('seed', range(seeds))),
      seeds_in_one_program=False,
      description='Stacked MNIST mode collapse (PacGAN Tables 2-3).')


def method_label(values: dict) -> str:
  for label, variant, packing in METHODS:
    if values['variant'] == variant and values['model.packing'] == packing:
      return label
  raise KeyError(values)


def capacity_of(d_width: int, quick: bool) -> str:
  for name, (_, width, quick_width) in CAPACITIES.items():
    if d_width == (quick_width if quick else width):
      return name
  raise KeyError(d_width)


# ------------------------------------------------------------------ data ---


def check_data_dir(data_dir: str) -> None:
  """Raises ValueError naming ``--data_dir`` unless it holds MNIST train IDX."""
  names = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte')
  if not os.path.isdir(data_dir):
    raise ValueError(f'--data_dir: {data_dir!r} is not a directory (the '
                     'MNIST IDX files, e.g. train-images-idx3-ubyte.gz)')
  missing = [n for n in names if not any(
      os.path.exists(os.path.join(data_dir, n + ext)) for ext in ('', '.gz'))]
  if missing:
    raise ValueError(f'--data_dir: {data_dir!r} lacks {missing} (.gz or '
                     'uncompressed)')


# ------------------------------------------------------------------ runs ---


def train(workdir: str, arg: str, *, parallel: int = 1) -> float:
  """Trains (or resumes, or skips) every run of the sweep; wall seconds."""
  return common.run_sweep(SPEC, arg, workdir, get_sweep(arg),
                          parallel=parallel, tag='stacked_mnist')


def evaluate_run(run_dir: str, num_samples: int) -> dict:
  """The ``stacked_modes`` evaluation of the run's final checkpoint on
  ``num_samples`` samples: an earlier one from ``metrics.jsonl`` when there
  is one (same step and sample count), else computed and appended."""
  earlier = common.final_evaluation(run_dir, required=('modes',),
                                    eval_num_samples=num_samples)
  if earlier is not None:
    return earlier
  from gan_stability.eval import offline  # pylint: disable=g-import-not-at-top
  return offline.evaluate_checkpoint(
      run_dir, num_samples=num_samples, metrics='stacked_modes')


def collect_rows(workdir: str, *, quick: bool, eval_samples: int) -> list[dict]:
  """One row per run (evaluating finished runs that are not yet evaluated)."""
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  _, runs, unfinished = report.collect(workdir)
  if unfinished:
    raise RuntimeError(f'{unfinished} runs not finished; rerun the command')
  rows = []
  for r in runs:
    row = {
        'capacity': capacity_of(r.values['model.d_width'], quick),
        'd_width': r.values['model.d_width'],
        'method': method_label(r.values), 'variant': r.values['variant'],
        'packing': r.values['model.packing'], 'seed': r.values['seed'],
        'status': r.status,
        'step': max((int(x['step']) for x in r.records
                     if not x.get('evaluate_only')), default=0),
        'modes': float('nan'), 'kl': float('nan'), 'eval_samples': 0,
    }
    if r.ok:
      result = evaluate_run(os.path.join(workdir, 'runs', r.name), eval_samples)
      finite = result.get('samples_finite', True) is not False
      if finite and 'modes' in result:
        row['modes'], row['kl'] = float(result['modes']), float(result['kl'])
      else:
        row['status'] = 'non-finite samples'
      row['eval_samples'] = int(result['eval_num_samples'])
    rows.append(row)
  return rows


def summarise(rows: list[dict], capacities) -> list[dict]:
  """Mean and standard error over seeds per (capacity, method)."""
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  out = []
  for cap in capacities:
    for label, _, _ in METHODS:
      sel = [r for r in rows if (r['capacity'], r['method']) == (cap, label)]
      if not sel:
        continue
      row = {'capacity': cap, 'd_width': sel[0]['d_width'], 'method': label,
             'seeds': len(sel),
             'ok': sum(np.isfinite(r['modes']) for r in sel)}
      for m in ('modes', 'kl'):
        row[m], row[m + '_se'], _ = report.mean_se([r[m] for r in sel])
      row['modes_per_seed'] = ' '.join(
          'x' if not np.isfinite(r['modes']) else str(int(r['modes']))
          for r in sel)
      out.append(row)
  return out


def markdown(summary: list[dict], capacities, note: str, *,
             quick: bool) -> str:
  from experiments.reproduce import published  # pylint: disable=g-import-not-at-top
  lines = []
  for cap in capacities:
    label, width, quick_width = CAPACITIES[cap]
    g = QUICK['model.g_width'] if quick else G_WIDTH
    lines += [f'### {label} (d_width {quick_width if quick else width}, '
              f'g_width {g})', '',
              '| method | modes (of 1000) | KL | modes per seed | source |',
              '|---|---|---|---|---|']
    for r in summary:
      if r['capacity'] != cap:
        continue
      seeds = common.seeds_label(r['seeds'], r['ok'])
      lines.append(f"| {r['method']} | "
                   f"{common.pm(r['modes'], r['modes_se'], 1)} | "
                   f"{common.pm(r['kl'], r['kl_se'], 2)} | "
                   f"{r['modes_per_seed']} | "
                   f'ours, {seeds} |')
    for c, method, modes, kl, src in published.STACKED_MNIST:
      if c == cap:
        lines.append(f'| {method} | {modes} | {kl} | | {src} (theirs) |')
    lines.append('')
  return '\n'.join(lines + [note]) + '\n'


def run(workdir: str, *, data_dir: str = '', capacities=DEFAULT_CAPACITIES,
        seeds: int = DEFAULT_SEEDS, num_steps: int | None = None,
        eval_samples: int | None = None, quick: bool = False,
        parallel: int = 1, out: str = '') -> str:
  """Trains, evaluates and writes the outputs; returns the Markdown table."""
  out = out or workdir
  os.makedirs(out, exist_ok=True)
  if not data_dir:
    if not quick:
      raise ValueError('--data_dir: required (the MNIST IDX directory) '
                       'unless --quick')
    data_dir = idx.write_random_digits(os.path.join(workdir, 'fake_mnist'),
                                       num_train=256, num_test=32)
  check_data_dir(data_dir)
  data_dir = os.path.abspath(data_dir)
  num_steps = num_steps or (QUICK_STEPS if quick else NUM_STEPS)
  eval_samples = eval_samples or (QUICK_EVAL_SAMPLES if quick else EVAL_SAMPLES)
  arg = make_arg(data_dir=data_dir, capacities=capacities, seeds=seeds,
                 num_steps=num_steps, quick=quick)
  t = time.time()
  train_seconds = train(workdir, arg, parallel=parallel)
  rows = collect_rows(workdir, quick=quick, eval_samples=eval_samples)
  total = time.time() - t
  summary = summarise(rows, capacities)
  budget = {**BUDGET, **(QUICK if quick else {})}
  steps = max(r['step'] for r in rows)
  note = (
      f'Ours: DCGAN-28, {steps:,} generator updates per run (after n_critic '
      'D updates each: 5 for WGAN-GP and SN-GAN, else 1), batch '
      f"{budget['batch_size']}, each recipe's own learning rates and betas; "
      f'{eval_samples:,} samples per evaluation, each channel classified by '
      'the project\'s MNIST classifier; mean ± standard error over seeds '
      '("x": a diverged seed, left out of the means). '
      f'{len(rows)} run{"s" if len(rows) != 1 else ""}, '
      f'{train_seconds:.0f} s in the sweep runner (finished runs are '
      f'skipped) and {total:.0f} s in all this time. '
      + ('QUICK CHECK: tiny networks, a few steps and random "digits" unless '
         '--data_dir was given; the numbers are not results. ' if quick else '')
      + 'Published rows: their networks, training lengths and learning rates '
      'differ from ours (see the module docstring); as printed in the '
      'authors\' tables (experiments/reproduce/published.py). '
      'Command: `python -m experiments.reproduce.stacked_mnist '
      f"--workdir=WORKDIR{' --data_dir=DIR' if not quick else ''} "
      f"--capacities={','.join(capacities)} --seeds={seeds} "
      f"--num_steps={num_steps} --eval_samples={eval_samples}"
      f"{' --quick' if quick else ''}`.")
  table = markdown(summary, capacities, note, quick=quick)
  common.write_outputs(out, 'stacked_mnist', table, rows, summary)
  return table


# ------------------------------------------------------------------- CLI ---


def define_flags(flag_values=FLAGS):
  """Command-line flags (defined only when run as a script: the sweep
  workers import this file for :func:`get_sweep`)."""
  common.define_sweep_flags(flag_values,
                            workdir='/tmp/gan_stability_stacked_mnist')
  flags.DEFINE_string('data_dir', '', 'MNIST IDX directory (required unless '
                      '--quick, which then writes random digits).',
                      flag_values=flag_values)
  flags.DEFINE_list('capacities', list(DEFAULT_CAPACITIES),
                    f'D capacities, of {list(CAPACITIES)}.',
                    flag_values=flag_values)
  flags.DEFINE_integer('seeds', DEFAULT_SEEDS, 'Seeds per row (>= 1).',
                       flag_values=flag_values)
  flags.DEFINE_integer('num_steps', None, 'Generator updates per run '
                       f'(default {NUM_STEPS}; --quick: {QUICK_STEPS}).',
                       flag_values=flag_values)
  flags.DEFINE_integer('eval_samples', None, 'Samples of the final '
                       f'evaluation (default {EVAL_SAMPLES}; --quick: '
                       f'{QUICK_EVAL_SAMPLES}).', flag_values=flag_values)
  flags.DEFINE_bool('quick', False, 'Tiny networks, 2 steps: a check.',
                    flag_values=flag_values)


def check_flags(*, capacities, seeds, num_steps, eval_samples, parallel,
                data_dir, quick) -> None:
  """Raises ValueError naming the first bad flag and its allowed values."""
  bad = [c for c in capacities if c not in CAPACITIES]
  if bad or not capacities or len(set(capacities)) != len(capacities):
    raise ValueError(f'--capacities: {",".join(capacities)!r}; allowed: '
                     f'distinct values of {list(CAPACITIES)}')
  if seeds < 1:
    raise ValueError(f'--seeds: {seeds}; allowed: >= 1')
  if num_steps is not None and num_steps < 1:
    raise ValueError(f'--num_steps: {num_steps}; allowed: >= 1')
  if eval_samples is not None and eval_samples < 6:
    raise ValueError(f'--eval_samples: {eval_samples}; allowed: >= 6 '
                     f'({EVAL_SAMPLES} in the papers)')
  if parallel < 1:
    raise ValueError(f'--parallel: {parallel}; allowed: >= 1')
  if not data_dir and not quick:
    raise ValueError('--data_dir: required (the MNIST IDX directory) '
                     'unless --quick')
  if data_dir:
    check_data_dir(data_dir)


def main(argv):
  entry.no_arguments(argv)
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:  # every flag is checked before anything is built or compiled
    check_flags(capacities=FLAGS.capacities, seeds=FLAGS.seeds,
                num_steps=FLAGS.num_steps, eval_samples=FLAGS.eval_samples,
                parallel=FLAGS.parallel, data_dir=FLAGS.data_dir,
                quick=FLAGS.quick)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  run(FLAGS.workdir, data_dir=FLAGS.data_dir,
      capacities=tuple(FLAGS.capacities), seeds=FLAGS.seeds,
      num_steps=FLAGS.num_steps, eval_samples=FLAGS.eval_samples,
      quick=FLAGS.quick, parallel=FLAGS.parallel, out=FLAGS.out)


if __name__ == '__main__':
  define_flags()
  entry.main(main)
