r"""Evaluates a training run's checkpoint and appends the result to its
``metrics.jsonl``::

  python -m experiments.evaluate --workdir=DIR [--step=N] [--num_samples=N]
      [--metrics=stacked_modes] [--seed=0]

``--metrics`` overrides the run's ``config.eval.metrics`` (image runs; see
``gan_stability/eval/registry.py`` for the names), e.g. the Stacked-MNIST
protocol is ``--metrics=stacked_modes --num_samples=26000``.
``--held_out=test`` evaluates real images of that split instead of samples
(the reference values of the same metrics; nothing is written).
``--multihost`` (``experiments/cli.py``) evaluates across the processes of a
multi-host job: samples and features are computed sharded and gathered.
"""

from absl import app, flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'The training run directory.')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
flags.DEFINE_integer('num_samples', None, 'Samples (default: eval_samples).')
flags.DEFINE_string('metrics', None, 'Comma-separated image metrics.')
flags.DEFINE_integer('seed', 0, 'Seed of the evaluation latents.')
flags.DEFINE_string('held_out', None, 'Evaluate real images of this split '
                    '(e.g. test) instead of samples: the reference values.')
flags.mark_flags_as_required(['workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
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
  result = evaluate_checkpoint(FLAGS.workdir, step=FLAGS.step,
                               num_samples=FLAGS.num_samples,
                               metrics=FLAGS.metrics, seed=FLAGS.seed)
  print('evaluate:', {k: round(v, 4) if isinstance(v, float) else v
                      for k, v in result.items()}, flush=True)


if __name__ == '__main__':
  app.run(main)
