r"""Checks the ``'tf1'`` resize against TensorFlow itself::

  python -m experiments.bench.resize_vs_tf --tf_python=/path/to/venv/bin/python

TensorFlow is not a dependency: ``--tf_python`` is an interpreter that has
``tensorflow`` (e.g. a venv with ``pip install tensorflow-cpu``). It runs
``tf.compat.v1.image.resize_bilinear(align_corners=False,
half_pixel_centers=False)`` (TF 1.x's legacy mapping, the 2015 FID graph's
op) on random float32 images of several shapes; this process runs
``gan_stability.metrics.inception.resize(..., 'tf1')`` on the same images
and prints the largest absolute difference per shape (0-255 scale).
``--golden_out`` keeps the small cases' inputs and TensorFlow outputs for
``tests/test_fid_protocol.py``.
"""

import os
import subprocess
import tempfile

from absl import flags
import numpy as np

from experiments import entry

flags.DEFINE_string('tf_python', None, 'A Python interpreter with tensorflow.')
flags.DEFINE_string('golden_out', None, 'Also write the inputs and '
                    "TensorFlow's outputs of the cases up to 64x64 to this "
                    '.npz (tests/golden/tf1_resize.npz).')
flags.mark_flags_as_required(['tf_python'])
FLAGS = flags.FLAGS

CASES = [(28, 28, 1, 299), (32, 32, 3, 299), (28, 28, 1, 37), (7, 13, 3, 29),
         (64, 45, 3, 17), (5, 5, 1, 2), (300, 301, 3, 299)]
GOLDEN_MAX_SIZE = 64  # the cases written by --golden_out (a few KB)

_TF = r'''
import sys
import numpy as np
import tensorflow as tf
z = np.load(sys.argv[1])
out = {k: tf.compat.v1.image.resize_bilinear(
    z[k], [int(k.split('_')[1])] * 2, align_corners=False,
    half_pixel_centers=False).numpy() for k in z.files}
np.savez(sys.argv[2], **out)
print('tensorflow', tf.__version__)
'''


def main(argv):
  entry.no_arguments(argv)
  from gan_stability.metrics import inception  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  images = {f'{i}_{s}': rng.uniform(0, 255, (2, h, w, c)).astype(np.float32)
            for i, (h, w, c, s) in enumerate(CASES)}
  with tempfile.TemporaryDirectory() as tmp:
    src, dst = os.path.join(tmp, 'in.npz'), os.path.join(tmp, 'out.npz')
    np.savez(src, **images)
    subprocess.run([FLAGS.tf_python, '-c', _TF, src, dst], check=True)
    with np.load(dst) as ref:
      if FLAGS.golden_out:
        small = [k for k in images if int(k.split('_')[1]) <= GOLDEN_MAX_SIZE]
        np.savez_compressed(
            FLAGS.golden_out, **{f'in_{k}': images[k] for k in small},
            **{f'tf_{k}': ref[k] for k in small})
      for k, x in images.items():
        size = int(k.split('_')[1])
        got = np.asarray(inception.resize(x, 'tf1', size=size))
        print(f'{x.shape[1]}x{x.shape[2]}x{x.shape[3]} -> {size}x{size}: '
              f'max |ours - TF| = {np.abs(got - ref[k]).max():.2e}')


if __name__ == '__main__':
  entry.main(main)
