r"""Draws samples from a trained model and writes them::

  python -m experiments.sample --run=PATH --num=N --out=FILE [--seed=0]
      [--step=S] [--class=K] [--noema] [--interpolate=STEPS]

``--run`` is a training run's directory, a directory written by
``gan_stability.trained.export``, or the name of a shipped generator
(``mnist_wgan_gp``, ``fashion_mnist_wgan_gp_cond``; see
``gan_stability.trained.shipped()``). ``--out`` says what to write, by its
name:

* ``*.png`` - one grid of the samples (a conditional model's default labels
  put class k in row k); 2-D points: a scatter plot;
* ``*.npz`` - ``x`` (uint8 NHWC images, or float32 points), ``z`` (the
  latents), ``label`` (int32, conditional models), ``step``, ``seed``;
* a name without a suffix - a folder of PNG files ``000000.png, ...``; a
  conditional model's go to one subfolder per class (``0/``, ``1/``, ...,
  zero-padded to one width: the layout ``data.source=folder`` reads as
  labels). ``--overwrite`` replaces a folder only when it holds nothing but
  such files.

``--interpolate=STEPS`` draws ``--num`` rows, each ``STEPS`` images along
the great circle (``--interpolation=slerp``) or the line (``lerp``) between
two latent points; a grid has one row per pair, ``.npz`` holds
``x [num, STEPS, ...]``. ``--class=k`` gives every sample class k.

Samples are a pure function of (model, ``--seed``, ``--num``): latents
``normal(key(seed), [num, z_dim])``, computed in batches that do not change
them. Prints progress to stderr. Bad input (an unknown run, a flag value
out of range, an existing output without ``--overwrite``): one line
``error: ...`` and status 2.
"""

from __future__ import annotations

from absl import flags

from experiments import cli
from experiments import entry

flags.DEFINE_string('run', None, 'A run directory, an exported model or a '
                    'shipped generator name.')
flags.DEFINE_integer('num', 64, 'Samples to draw (rows with --interpolate).')
flags.DEFINE_string('out', None, 'Output: FILE.png (grid), FILE.npz '
                    '(arrays) or a folder of PNGs.')
flags.DEFINE_integer('seed', 0, 'Seed of the latents.')
flags.DEFINE_integer('step', None, 'Checkpoint step of a run (default: the '
                     'latest).')
flags.DEFINE_integer('class', None, 'Class of every sample (conditional '
                     'models; default: the sample grid, class k in row k).')
flags.DEFINE_bool('ema', True, "The generator's EMA weights when the run "
                  'kept them (--noema: the live weights).')
flags.DEFINE_integer('interpolate', 0, 'Images per interpolation row '
                     'between two latent points (0: plain samples).')
flags.DEFINE_enum('interpolation', 'slerp', ['slerp', 'lerp'], 'Path '
                  'between two latent points: great circle or line.')
flags.DEFINE_integer('ncols', None, 'Columns of a PNG grid (default: the '
                     "run's grid width, or the interpolation steps).")
flags.DEFINE_integer('batch_size', 500, 'Generator batch (the samples do '
                     'not depend on it).')
flags.DEFINE_bool('overwrite', False, 'Replace an existing --out.')
flags.mark_flags_as_required(['run', 'out'])
FLAGS = flags.FLAGS


def main(argv):
  entry.no_arguments(argv)
  from gan_stability import sampling  # pylint: disable=g-import-not-at-top
  cli.run(lambda: print(sampling.run(
      run_path=FLAGS.run, out=FLAGS.out, num=FLAGS.num, seed=FLAGS.seed,
      step=FLAGS.step, label=FLAGS['class'].value, ema=FLAGS.ema,
      steps=FLAGS.interpolate, how=FLAGS.interpolation, ncols=FLAGS.ncols,
      batch_size=FLAGS.batch_size, overwrite=FLAGS.overwrite), flush=True))


if __name__ == '__main__':
  cli.main(main)
