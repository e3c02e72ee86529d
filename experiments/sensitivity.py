r"""Sensitivity curves of a sweep: a metric against one hyper-parameter.

    python -m experiments.sensitivity --workdir=SWEEP_DIR --axis=penalty_weight \
        --metric=modes [--which=final|best] [--out=DIR] [--log_x]

Reads the finished runs of a sweep (``python -m experiments.sweep``) and
writes ``sensitivity_<axis>_<metric>.{csv,md,png}`` to ``--out`` (default
``SWEEP_DIR/report``): the metric's final (or best) value, mean ± standard
error over seeds, against the values of ``--axis``; one panel per value of
the first other axis that varies, one line per combination of the rest
(:mod:`gan_stability.sweep.sensitivity`). The worked examples (WGAN-GP's
lambda and R1's gamma on the ring and the grid) are
``experiments/ablations/sensitivity.py`` and docs/sensitivity.md.
"""

from __future__ import annotations

from absl import flags

from experiments import entry

flags.DEFINE_string('workdir', None, 'Sweep directory.')
flags.DEFINE_string('axis', None, 'The hyper-parameter axis (x).')
flags.DEFINE_string('metric', None, 'The metric (y), e.g. modes, kl, cfid.')
flags.DEFINE_string('which', 'final', "'final' or 'best' value of each run.")
flags.DEFINE_bool('higher_is_better', None, "The metric's direction (for "
                  "'best'; default: known per metric).")
flags.DEFINE_bool('log_x', None, 'Log x axis (default: when the values are '
                  'positive and span more than 100x).')
flags.DEFINE_bool('plots', True, 'Write the PNG figure.')
flags.DEFINE_string('out', None, 'Output directory (default: WORKDIR/report).')
flags.mark_flags_as_required(['workdir', 'axis', 'metric'])
FLAGS = flags.FLAGS


def main(argv):
  entry.no_arguments(argv)
  from gan_stability.errors import ConfigError  # pylint: disable=g-import-not-at-top
  from gan_stability.sweep import sensitivity  # pylint: disable=g-import-not-at-top
  try:
    out = sensitivity.sensitivity(
        FLAGS.workdir, FLAGS.axis, FLAGS.metric, out_dir=FLAGS.out,
        higher_is_better=FLAGS.higher_is_better, which=FLAGS.which,
        log_x=FLAGS.log_x, plots=FLAGS.plots)
  except FileNotFoundError as e:
    entry.fail(f'--workdir: {e}')
  except ConfigError as e:
    entry.fail(str(e))
  print(out['markdown'])
  print('wrote', ', '.join(out['files']), flush=True)


if __name__ == '__main__':
  entry.main(main)
