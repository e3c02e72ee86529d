r"""Benchmark: a penalty-weight axis run as one program vs point by point.

    python -m experiments.bench.hparam_axes [--points=8] [--steps=3000] \
        [--penalty=r1] [--out=docs/bench/hparam_axes.md]

A sweep of ``--points`` R1 weights (log-spaced, 0.01 to 30) on the MoG ring
with the budget of ``experiments/ablations/mog_grid.py`` (MLPs 3x64, batch
64, Adam 1e-3, 100 steps per dispatch, evaluation of 2,500 samples every 500
steps and at the end), ``--steps`` generator updates each, run both ways
end to end, in this process, through the sweep runner
(:func:`gan_stability.sweep.runner.run`, as ``python -m experiments.sweep``
runs them with ``--parallel=1``):

* *point by point*: ``sw.axis('penalty_weight', ...)``: one
  ``train_and_evaluate`` per point (its own compilation, run directory,
  evaluations and checkpoints);
* *one program*: ``sw.axis('penalty_weight', ..., in_one_program=True)``:
  one vmapped program of all points (one compilation; each point still
  writes its own run directory).

Everything is timed: building the sweep, compilation, training, evaluation,
metrics files, checkpoints (sample images are off, as in
``experiments.bench.vmap_seeds``). The persistent compilation cache is
turned off, so that neither way reuses the other's (or an earlier run's)
programs.

Both ways train the same runs up to float rounding (vmapped matmuls sum in
another order): ``tests/test_hparam_axes.py`` checks short runs to rtol
1e-5. Over hundreds of steps GAN dynamics amplify that rounding, as they do
for vmapped seeds (``docs/sweeps.md``), so the two ways' final metrics are
not compared here.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
import time

import numpy as np
from absl import flags, logging

from experiments import entry

flags.DEFINE_integer('points', 8, 'Penalty weights (points of the axis).')
flags.DEFINE_integer('steps', 3000, 'Generator updates per point (the '
                     "mog_grid sweep's).")
flags.DEFINE_enum('penalty', 'r1', ['r1', 'gp', 'r2'], 'The penalty.')
flags.DEFINE_string('out', '', 'Also write the output to this file.')
FLAGS = flags.FLAGS

BASE = 'experiments/configs/mog.py:nonsaturating'


def make_sweep(points: int, steps: int, penalty: str, in_one_program: bool):
  # pylint: disable=g-import-not-at-top
  from experiments.ablations import mog_grid
  from gan_stability.sweep import spec as sw
  weights = [float(f'{w:.3g}') for w in np.logspace(-2, np.log10(30), points)]
  return sw.Sweep(
      base=BASE,
      overrides={**mog_grid.BUDGET, 'num_steps': steps,
                 'write_samples': False,
                 'penalty': penalty},
      axes=sw.axis('penalty_weight', weights, in_one_program=in_one_program))


def run_sweep(sweep, workdir: str) -> tuple[float, int]:
  """Seconds to expand and run ``sweep`` in ``workdir``, and the number of
  programs (units)."""
  # pylint: disable-next=g-import-not-at-top
  from gan_stability.sweep import runner, spec as sw
  t = time.perf_counter()
  with contextlib.redirect_stdout(io.StringIO()):
    points = sw.expand(sweep)
    units = sw.units(sweep, points)
    statuses = runner.run('(in process)', workdir, units,
                          log=lambda *a: None)
  seconds = time.perf_counter() - t
  bad = {k: v for k, v in statuses.items() if v != 'ok'}
  if bad:
    raise RuntimeError(f'points not ok: {bad}')
  return seconds, len(units)


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'points', 'steps')
  logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update('jax_enable_compilation_cache', False)
  head = (f'jax {jax.__version__}, {jax.devices()[0].device_kind}, '
          f'{len(os.sched_getaffinity(0))} CPUs, load average '
          f'{os.getloadavg()[0]:.1f} at start; {FLAGS.points} '
          f'{FLAGS.penalty} weights x {FLAGS.steps} steps, {BASE} with the '
          'mog_grid budget; persistent compilation cache off')
  print(head, flush=True)
  root = tempfile.mkdtemp(prefix='bench_hparam_axes_')
  rows = {}
  try:
    for way, one in (('point by point', False), ('one program', True)):
      sweep = make_sweep(FLAGS.points, FLAGS.steps, FLAGS.penalty, one)
      seconds, programs = run_sweep(
          sweep, os.path.join(root, 'one' if one else 'sep'))
      rows[way] = (seconds, programs)
      print(f'{way}: {seconds:.1f} s ({programs} programs)', flush=True)
  finally:
    shutil.rmtree(root, ignore_errors=True)
  sep, one = rows['point by point'][0], rows['one program'][0]
  point_steps = FLAGS.points * FLAGS.steps
  lines = [
      '| way | programs | end-to-end s | point-steps/s | speed-up |',
      '|---|---|---|---|---|']
  for way, (seconds, programs) in rows.items():
    lines.append(f'| {way} | {programs} | {seconds:.1f} | '
                 f'{point_steps / seconds:.0f} | {sep / seconds:.2f}x |')
  text = '\n'.join([
      head, f'load average {os.getloadavg()[0]:.1f} at end', '',
      '\n'.join(lines), '',
      f'One program / point by point: {sep / one:.2f}x faster end to end '
      '(sweep expansion, compilation, training, evaluation, metrics files '
      'and checkpoints included).', ''])
  print('\n' + text)
  if FLAGS.out:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, 'w') as f:
      f.write(f'`python -m experiments.bench.hparam_axes '
              f'--points={FLAGS.points} --steps={FLAGS.steps} '
              f'--penalty={FLAGS.penalty} --out={FLAGS.out}`\n\n' + text)


if __name__ == '__main__':
  entry.main(main)
