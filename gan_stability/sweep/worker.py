"""Worker process of a parallel sweep: runs one unit, then exits.

    python -m gan_stability.sweep.worker --sweep=SPEC --workdir=DIR --unit=NAME
        [--override=field=value ...] [--cpus=0,1]

Started by :func:`gan_stability.sweep.runner.run` with ``parallel > 1``
(CPU affinity and XLA thread flags are set by the parent). Exit status 0
when every point of the unit finished (``ok`` or ``diverged``), 75 when
another process holds a run directory of the unit.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument('--sweep', required=True)
  parser.add_argument('--workdir', required=True)
  parser.add_argument('--unit', required=True)
  parser.add_argument('--override', action='append', default=[])
  parser.add_argument('--cpus', default='',
                      help='Comma-separated CPUs to pin this process to.')
  args = parser.parse_args(argv)
  if args.cpus:  # before JAX starts, so its thread pool fits the CPUs
    os.sched_setaffinity(0, [int(c) for c in args.cpus.split(',')])
  from absl import logging  # pylint: disable=g-import-not-at-top
  logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
  from gan_stability import train  # pylint: disable=g-import-not-at-top
  from gan_stability.sweep import runner  # pylint: disable=g-import-not-at-top
  _, _, units, _ = runner.load(args.sweep, args.override)
  unit = next((u for u in units if u.name == args.unit), None)
  if unit is None:
    print(f'--unit: {args.unit!r} is not a unit of {args.sweep}', file=sys.stderr)
    return 2
  try:
    result = runner.run_unit(args.workdir, unit)
  except train.Preempted as e:  # SIGTERM from the parent: checkpointed
    print(str(e), flush=True)
    return train.EXIT_PREEMPTED
  except train.WorkdirInUse as e:  # another process trains this unit now
    print(f'busy: {e}', flush=True)
    return runner.EXIT_BUSY
  print('statuses:', result, flush=True)
  return 0


if __name__ == '__main__':
  sys.exit(main())
