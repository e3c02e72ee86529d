r"""Evaluates a training run's checkpoint and appends the result to its
``metrics.jsonl``::

  python -m experiments.evaluate --workdir=DIR [--step=N] [--num_samples=N]
      [--metrics=stacked_modes] [--seed=0]

``--metrics`` overrides the run's ``config.eval.metrics`` (image runs; see
``gan_stability/eval/registry.py`` for the names), e.g. the Stacked-MNIST
protocol is ``--metrics=stacked_modes --num_samples=26000``.
``--inception_path``, ``--real_split`` and ``--fid_resize`` override those
``config.eval`` fields for this evaluation (each is recorded as
``eval_<field>``), e.g. an Inception FID against the test split, whose
statistics are packaged (``gan_stability/assets/fid_stats/``)::

  python -m experiments.evaluate --workdir=DIR --metrics=fid \
      --num_samples=10000 --real_split=test --inception_path=FILE

``--held_out=test`` evaluates real images of that split instead of samples
(the reference values of the same metrics; nothing is written).
``--multihost`` (``experiments/cli.py``) evaluates across the processes of a
multi-host job: samples and features are computed sharded and gathered.
"""

import os

from absl import flags

from experiments import cli
from experiments import entry

flags.DEFINE_string('workdir', None, 'The training run directory.')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
flags.DEFINE_integer('num_samples', None, 'Samples (default: eval_samples).')
flags.DEFINE_string('metrics', None, 'Comma-separated image metrics.')
flags.DEFINE_integer('seed', 0, 'Seed of the evaluation latents.')
flags.DEFINE_string('held_out', None, 'Evaluate real images of this split '
                    '(e.g. test) instead of samples: the reference values.')
flags.DEFINE_string('inception_path', None, 'Overrides config.eval.'
                    'inception_path (the FID Inception weights).')
flags.DEFINE_string('real_split', None, "Overrides config.eval.real_split: "
                    "the real side's split (e.g. test).")
flags.DEFINE_string('fid_resize', None, 'Overrides config.eval.fid_resize '
                    'for this evaluation (tf1, clean or bilinear).')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  entry.no_arguments(argv)
  if not FLAGS.workdir.strip():
    entry.fail('--workdir: empty; give a training run directory')
  if not os.path.isfile(os.path.join(FLAGS.workdir, 'config.json')):
    entry.fail(f'--workdir: {FLAGS.workdir} is not a training run directory '
               '(no config.json; experiments.train writes one)')
  if FLAGS.inception_path and not os.path.isfile(FLAGS.inception_path):
    entry.fail(f'--inception_path: {FLAGS.inception_path} is not a file (the '
               'FID Inception weights .npz)')
  if FLAGS.num_samples is not None and FLAGS.num_samples < 1:
    entry.fail(f'--num_samples: expected >= 1, got {FLAGS.num_samples}')
  cli.run(_evaluate)


def _evaluate():
  from gan_stability.eval.offline import evaluate_checkpoint, evaluate_held_out  # pylint: disable=g-import-not-at-top
  if FLAGS.held_out:
    result = evaluate_held_out(FLAGS.workdir, split=FLAGS.held_out,
                               num_samples=FLAGS.num_samples,
                               metrics=FLAGS.metrics)
    print('held-out reference:', {k: round(v, 4) if isinstance(v, float) else v
                                  for k, v in result.items()}, flush=True)
    return
  overrides = {k: FLAGS[k].value for k in
               ('inception_path', 'real_split', 'fid_resize')
               if FLAGS[k].value is not None}
  result = evaluate_checkpoint(FLAGS.workdir, step=FLAGS.step,
                               num_samples=FLAGS.num_samples,
                               metrics=FLAGS.metrics, seed=FLAGS.seed,
                               eval_overrides=overrides)
  print('evaluate:', {k: round(v, 4) if isinstance(v, float) else v
                      for k, v in result.items()}, flush=True)


if __name__ == '__main__':
  cli.main(main)
