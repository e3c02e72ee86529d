r"""Runs an ablation sweep: ``python -m experiments.sweep --sweep=SPEC.py --workdir=DIR``.

Every point of the spec (``experiments/ablations/*.py``; see
:mod:`gan_stability.sweep.spec`) is trained in ``DIR/runs/<point name>/``.
Rerunning the same command skips finished points (their ``DONE`` marker) and
resumes interrupted ones from their checkpoints; after a SIGTERM the runs in
progress are checkpointed and the sweep exits with status 143; a failed write
(a full disk) stops the sweep with one line and status 4.

    --parallel=K     K worker processes, each pinned to its share of the CPUs
    --shard=i/n      only this shard of the points (i = 0..n-1; the shards
                     partition the sweep; a vmapped seed group stays whole)
    --dry_run        list the points and their status, train nothing
    --override=f=v   set a config field on every point (repeatable)
    --max_units=N    run at most N units now (then stop; rerun to continue)

Aggregate with ``python -m experiments.report --workdir=DIR``.
"""

from __future__ import annotations

import os
import sys

from absl import flags, logging

from experiments import entry

flags.DEFINE_string('sweep', None, 'Sweep spec, as path.py[:arg].')
flags.DEFINE_string('workdir', None, 'Sweep directory (runs/, logs/, sweep.json).')
flags.DEFINE_integer('parallel', 1, 'Worker processes (1: run in this process).')
flags.DEFINE_string('shard', None, 'Run only shard i of n, as "i/n".')
flags.DEFINE_bool('dry_run', False, 'List the points and their status; train nothing.')
flags.DEFINE_multi_string('override', [], 'field=value applied to every point.')
flags.DEFINE_integer('max_units', 0, 'Run at most this many units now (0: all).')
flags.DEFINE_bool('pin_cpus', True, 'Pin each worker to its own CPUs (--parallel>1).')
flags.mark_flags_as_required(['sweep', 'workdir'])
FLAGS = flags.FLAGS


def check_flags() -> None:
  """Refuses bad values of the flags (one line naming the flag, status 2)
  before anything is loaded."""
  if not FLAGS.workdir.strip():
    entry.fail('--workdir: empty; give the sweep directory')
  if os.path.exists(FLAGS.workdir) and not os.path.isdir(FLAGS.workdir):
    entry.fail(f'--workdir: {FLAGS.workdir} is a file, not a directory')
  if FLAGS.parallel < 1:
    entry.fail(f'--parallel: expected >= 1, got {FLAGS.parallel}')
  if FLAGS.max_units < 0:
    entry.fail(f'--max_units: expected >= 0 (0: all), got {FLAGS.max_units}')


def main(argv):
  entry.no_arguments(argv)
  check_flags()
  from gan_stability.sweep import runner, spec  # pylint: disable=g-import-not-at-top
  if not FLAGS['verbosity'].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  try:
    shard = spec.parse_shard(FLAGS.shard)
    sweep, points, units, extra = runner.load(FLAGS.sweep, FLAGS.override)
  except spec.SweepError as e:
    entry.fail(str(e))
  mine = runner.plan(FLAGS.workdir, units, shard)
  print(f'{FLAGS.sweep}: {len(points)} points in {len(units)} units'
        f'{" (seeds vmapped per group)" if sweep.seeds_in_one_program else ""}'
        f'; shard {shard[0]}/{shard[1]}: {len(mine.units)} units', flush=True)
  if FLAGS.dry_run:
    print('\n'.join(runner.dry_run_lines(FLAGS.workdir, mine,
                                         sweep.seeds_in_one_program)))
    return
  from gan_stability import errors, train  # pylint: disable=g-import-not-at-top
  from gan_stability.train import workdir  # pylint: disable=g-import-not-at-top
  try:
    runner.write_sweep_file(FLAGS.workdir, sweep, points, extra)
    statuses = runner.run(FLAGS.sweep, FLAGS.workdir, mine.units,
                          parallel=FLAGS.parallel,
                          extra_overrides=FLAGS.override,
                          pin_cpus=FLAGS.pin_cpus, max_units=FLAGS.max_units,
                          log=lambda s: print(s, flush=True))
  except train.Preempted:
    print('sweep preempted (SIGTERM): runs in progress are checkpointed; '
          'rerun the same command to resume', flush=True)
    sys.exit(train.EXIT_PREEMPTED)
  except errors.WriteFailed as e:  # a full disk stops the whole sweep
    entry.fail(str(e), workdir.EXIT_WRITE_FAILED)
  failed = sorted(n for n, s in statuses.items() if s == 'failed')
  if failed:
    entry.fail(f'{len(failed)} points failed: {failed}', 1)


if __name__ == '__main__':
  entry.main(main)
