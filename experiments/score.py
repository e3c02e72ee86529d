r"""Scores image set B against reference set A (FID and friends), outside
any training run::

  python -m experiments.score A B [--metrics=fid,kid,pr,dc]
      [--resize=tf1|clean|bilinear] [--num=N] --inception_path=FILE
  python -m experiments.score A --save_stats=FILE.npz --inception_path=FILE

A and B are each a folder of images, an ``.npy`` / ``.npz`` image array, a
statistics file (``mu`` / ``sigma``, e.g. TTUR's precomputed ones), a data
set of the library (``data:mnist/test``, IDX files in ``--data_dir``), a
TFDS split (``tfds:cifar10/train``, from ``--data_dir``) or a training
run's directory (``--num`` samples of its generator). See
``gan_stability/eval/score.py`` and docs/metrics.md ("Which FID?").

Prints progress (images/s, ETA) to stderr, one table, and a final JSON line
with every number. ``--save_stats`` writes A's statistics in the TTUR
layout (``mu``, ``sigma``, float64; ``--packed`` for the packaged layout).
Bad input: one line ``error: ...`` and status 2.
"""

from absl import flags

from experiments import cli

flags.DEFINE_string('metrics', 'fid', 'Comma-separated: fid, kid, pr, dc.')
flags.DEFINE_string('resize', 'tf1', 'How images reach 299x299: tf1 '
                    '(TTUR / StyleGAN), clean (clean-fid), bilinear '
                    '(gan_stability before 0.2.0); inception.RESIZE_MODES.')
flags.DEFINE_integer('num', None, 'Use the first N images of each side '
                     '(samples to draw from a run; default: all images, '
                     "a run's eval_samples).")
flags.DEFINE_string('inception_path', None, 'The FID Inception weights '
                    '(fid_inception_v3_2015.npz).')
flags.DEFINE_string('save_stats', None, "Write A's statistics to this .npz.")
flags.DEFINE_bool('packed', False, 'With --save_stats: the packaged layout '
                  '(sigma as a float32 upper triangle, compressed).')
flags.DEFINE_integer('batch_size', 50, 'Images per Inception call (sharded '
                     'over the local devices).')
flags.DEFINE_string('data_dir', None, 'IDX directory for data: inputs, TFDS '
                    'data_dir for tfds: inputs.')
flags.DEFINE_integer('step', None, 'Checkpoint step of run inputs '
                     '(default: the latest).')
flags.DEFINE_integer('seed', 0, 'Seed of run samples and KID subsets.')
flags.DEFINE_bool('quantize', True, 'Round run samples to uint8 before '
                  'features, as saved images are.')
flags.DEFINE_float('progress_every_s', 10.0, 'Seconds between progress '
                   'lines.')
FLAGS = flags.FLAGS


def main(argv):
  inputs = argv[1:]
  cli.run(lambda: _score(inputs))


def _score(inputs):
  from gan_stability.eval import score  # pylint: disable=g-import-not-at-top
  score.run(inputs, metrics=FLAGS.metrics, resize=FLAGS.resize,
            num=FLAGS.num, inception_path=FLAGS.inception_path,
            save_stats=FLAGS.save_stats, packed=FLAGS.packed,
            batch_size=FLAGS.batch_size, data_dir=FLAGS.data_dir,
            step=FLAGS.step, seed=FLAGS.seed, quantize=FLAGS.quantize,
            progress_every_s=FLAGS.progress_every_s)


if __name__ == '__main__':
  cli.main(main)
