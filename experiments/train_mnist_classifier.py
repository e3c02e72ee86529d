r"""Trains the project's MNIST classifier (:mod:`gan_stability.metrics.classifier`).

  python -m experiments.train_mnist_classifier --data_dir=DIR \
      --out=gan_stability/assets/mnist_classifier.npz [--epochs=N --seed=S]

Trains on the real MNIST train split (60,000 IDX images in ``DIR``) and
evaluates on the t10k split (10,000). Writes the weights to ``--out`` and a
side JSON (same stem, ``.json``) with the test accuracy, this command, the
hyper-parameters, the per-epoch history, the sha256 of the data files and
of the weights.
Refuses to write when the test accuracy is below ``--min_accuracy``.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
import time

from absl import flags

from experiments import entry

flags.DEFINE_string('data_dir', None,
                    'Folder with the MNIST IDX files (train-*, t10k-*).')
flags.DEFINE_string('out', None, 'Output .npz (the side JSON goes next to it).')
flags.DEFINE_integer('epochs', 12, 'Passes over the 60,000 training images.')
flags.DEFINE_integer('seed', 0, 'Initialisation / order / augmentation seed.')
flags.DEFINE_integer('batch_size', 128, 'Examples per Adam step.')
flags.DEFINE_float('learning_rate', 1e-3, 'Peak Adam learning rate (cosine decay).')
flags.DEFINE_integer('max_shift', 2, 'Random translation range in pixels.')
flags.DEFINE_float('min_accuracy', 0.99,
                   'Do not write the artifact below this test accuracy.')
flags.mark_flags_as_required(['data_dir', 'out'])
FLAGS = flags.FLAGS

_DATA_FILES = ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte',
               't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte')


def _sha256(path: str) -> str:
  h = hashlib.sha256()
  with open(path, 'rb') as f:
    for chunk in iter(lambda: f.read(1 << 20), b''):
      h.update(chunk)
  return h.hexdigest()


def _data_hashes(directory: str) -> dict:
  """sha256 of each IDX file the loader reads (``.gz`` preferred)."""
  hashes = {}
  for stem in _DATA_FILES:
    for name in (stem + '.gz', stem):
      if os.path.isfile(os.path.join(directory, name)):
        hashes[name] = _sha256(os.path.join(directory, name))
        break
  return hashes


def check_flags() -> None:
  """Refuses bad flag values (one line naming the flag, status 2) before
  anything is imported or loaded."""
  if not os.path.isdir(FLAGS.data_dir):
    entry.fail(f'--data_dir: {FLAGS.data_dir} is not a directory (the MNIST '
               'IDX files)')
  parent = os.path.dirname(os.path.abspath(FLAGS.out))
  if not os.path.isdir(parent):
    entry.fail(f'--out: the folder {parent} does not exist')
  for name in ('epochs', 'batch_size'):
    if FLAGS[name].value < 1:
      entry.fail(f'--{name}: expected >= 1, got {FLAGS[name].value}')
  if FLAGS.max_shift < 0:
    entry.fail(f'--max_shift: expected >= 0, got {FLAGS.max_shift}')
  if not FLAGS.learning_rate > 0:
    entry.fail(f'--learning_rate: expected > 0, got {FLAGS.learning_rate}')


def main(argv):
  entry.no_arguments(argv)
  check_flags()
  import flax  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  from gan_stability.metrics import classifier  # pylint: disable=g-import-not-at-top

  from gan_stability.errors import DamagedFile  # pylint: disable=g-import-not-at-top
  try:
    train_x, train_y = idx.load_idx_dataset(FLAGS.data_dir, 'train')
    test_x, test_y = idx.load_idx_dataset(FLAGS.data_dir, 'test')
  except (FileNotFoundError, DamagedFile) as e:
    entry.fail(f'--data_dir: {e}')
  print(f'train {train_x.shape}, test {test_x.shape}', flush=True)

  def log(record):
    print(f"epoch {record['epoch']}: train loss {record['train_loss']:.4f}, "
          f"test loss {record['eval_loss']:.4f}, test accuracy "
          f"{record['eval_accuracy']:.4f} ({record['seconds']:.0f}s)",
          flush=True)

  start = time.time()
  params, history = classifier.train_classifier(
      train_x, train_y, epochs=FLAGS.epochs, seed=FLAGS.seed,
      batch_size=FLAGS.batch_size, learning_rate=FLAGS.learning_rate,
      max_shift=FLAGS.max_shift, eval_images=test_x, eval_labels=test_y,
      log_fn=log)
  seconds = time.time() - start
  result = classifier.evaluate(params, test_x, test_y)
  print(f"test accuracy {result['accuracy']:.4f} after {seconds:.0f}s",
        flush=True)
  if result['accuracy'] < FLAGS.min_accuracy:
    raise SystemExit(f"test accuracy {result['accuracy']:.4f} is below "
                     f'--min_accuracy={FLAGS.min_accuracy}; nothing written')

  metadata = {
      'test_accuracy': result['accuracy'],
      'test_loss': result['loss'],
      'test_split': 't10k (10,000 images)',
      'train_split': 'train (60,000 images)',
      'command': 'python -m experiments.train_mnist_classifier ' +
                 ' '.join(shlex.quote(a) for a in sys.argv[1:]),
      'epochs': FLAGS.epochs,
      'seed': FLAGS.seed,
      'batch_size': FLAGS.batch_size,
      'learning_rate': FLAGS.learning_rate,
      'max_shift': FLAGS.max_shift,
      'optimizer': 'adam, cosine decay to 0',
      'architecture': 'conv3x3(32)-relu-maxpool2-conv3x3(64)-relu-maxpool2-'
                      'conv3x3(128)-relu-maxpool2(SAME)-dense(128)-relu-'
                      'dense(10); input 28x28x1 in [-1, 1]',
      'num_params': classifier.num_params(params),
      'history': history,
      'training_seconds': round(seconds, 1),
      'data_sha256': _data_hashes(FLAGS.data_dir),
      'versions': {'jax': jax.__version__, 'flax': flax.__version__,
                   'optax': optax.__version__},
  }
  classifier.save_classifier(FLAGS.out, params, metadata)
  print(f'wrote {FLAGS.out} ({os.path.getsize(FLAGS.out)} bytes) and '
        f'{classifier.metadata_path(FLAGS.out)}', flush=True)


if __name__ == '__main__':
  entry.main(main)
