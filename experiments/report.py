r"""Aggregates a sweep: ``python -m experiments.report --workdir=DIR``.

Reads every finished run of the sweep in ``DIR`` (``python -m
experiments.sweep``) and writes ``DIR/report/`` (or ``--out``): ``runs.csv``,
``summary.csv`` (mean ± s.e. over seeds per configuration, ranked),
``report.md``, ``curves_<metric>.png`` and ``heatmap_<metric>.png``.

    --metric=modes            rank and plot by this metric
    --higher_is_better=false  its direction (default: known per metric)
    --metrics=modes,kl        the metrics to tabulate
    --heatmap=loss,penalty    the heat-map's two axes
"""

from __future__ import annotations

from absl import flags

from experiments import entry

flags.DEFINE_string('workdir', None, 'Sweep directory.')
flags.DEFINE_string('out', None, 'Output directory (default: WORKDIR/report).')
flags.DEFINE_string('metric', None, 'Metric to rank and plot by.')
flags.DEFINE_bool('higher_is_better', None, 'Direction of --metric.')
flags.DEFINE_list('metrics', None, 'Metrics to tabulate.')
flags.DEFINE_list('heatmap', None, 'Two axes for the heat-map.')
flags.DEFINE_bool('plots', True, 'Write the PNG figures.')
flags.DEFINE_string('note', '', 'Text appended to report.md.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  entry.no_arguments(argv)
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  if FLAGS.heatmap is not None and len(FLAGS.heatmap) != 2:
    entry.fail(f'--heatmap: give two axes, e.g. --heatmap=loss,penalty; '
               f'got {FLAGS.heatmap}')
  from gan_stability.errors import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    out = report.make_report(
        FLAGS.workdir, FLAGS.out, metrics=FLAGS.metrics,
        rank_metric=FLAGS.metric, higher_is_better=FLAGS.higher_is_better,
        heatmap_axes=FLAGS.heatmap, plots=FLAGS.plots, note=FLAGS.note)
  except FileNotFoundError as e:  # no finished runs
    entry.fail(f'--workdir: {e}')
  except ConfigError as e:
    entry.fail(str(e))
  print(out['markdown'])
  print('wrote', ', '.join(out['files']), flush=True)


if __name__ == '__main__':
  entry.main(main)
