"""The standalone scorer (``gan_stability.eval.score``, CLI
``experiments.score``): every input kind, the numbers against the library
functions, statistics files, and bad input.

The Inception network is the ``fake_inception`` fixture (conftest): the
scorer's plumbing is checked here; the network itself in test_inception.py
and test_fid_protocol.py.
"""

import io
import json
import os

import jax
import numpy as np
import pytest

from conftest import REPO, run_python, write_fake_idx  # pylint: disable=g-bad-import-order
from gan_stability.errors import ConfigError, DamagedFile
from gan_stability.eval import score
from gan_stability.metrics import fid_kid, inception, manifold


def _images(n, seed, size=28, channels=1):
  rng = np.random.default_rng(seed)
  return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def _write_folder(root, images, *, subfolders=True):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(root, exist_ok=True)
  for i, x in enumerate(images):
    d = os.path.join(root, f'class{i % 2}') if subfolders else root
    os.makedirs(d, exist_ok=True)
    img = x[..., 0] if x.shape[-1] == 1 else x
    Image.fromarray(img).save(os.path.join(d, f'{i:04d}.png'))
  return root


def _run(inputs, **kw):
  out = io.StringIO()
  kw.setdefault('inception_path', 'weights.npz')
  kw.setdefault('progress_every_s', 0.0)
  record = score.run(inputs, out=out, **kw)
  return record, out.getvalue()


@pytest.fixture
def weights(tmp_path, monkeypatch):
  """--inception_path must name an existing file (the fake network ignores
  it)."""
  monkeypatch.chdir(tmp_path)
  (tmp_path / 'weights.npz').write_bytes(b'')
  return 'weights.npz'


def test_folder_and_array_inputs(fake_inception, weights, tmp_path):
  a = _images(12, 0)
  b = _images(10, 1)
  folder = _write_folder(str(tmp_path / 'a'), a)
  np.savez(tmp_path / 'b.npz', images=b, labels=np.arange(10))
  np.save(tmp_path / 'b.npy', b[..., 0])  # [N, H, W] grey
  np.save(tmp_path / 'c.npy', b)
  os.rename(tmp_path / 'c.npy', tmp_path / 'c.npz')  # .npy bytes, .npz name
  np.testing.assert_array_equal(
      score.read_input(str(tmp_path / 'c.npz'), what='B').images, b)
  side = score.read_input(folder, what='A')
  assert side.kind == 'folder'
  # Sorted path order: class0/0000, 0002, ..., class1/0001, ...
  order = list(range(0, 12, 2)) + list(range(1, 12, 2))
  np.testing.assert_array_equal(side.images, a[order])
  rec, text = _run([folder, str(tmp_path / 'b.npz')],
                   metrics='fid,kid,pr,dc')
  rec2, _ = _run([folder, str(tmp_path / 'b.npy')], metrics='fid,kid,pr,dc')
  for k in ('fid', 'kid', 'precision', 'recall', 'density', 'coverage'):
    assert rec[k] == rec2[k]
  # The numbers are the library's on the same features.
  fa = inception.features({}, a[order], resize='tf1', batch_size=50)
  fb = inception.features({}, b, resize='tf1', batch_size=50)
  assert rec['fid'] == pytest.approx(fid_kid.fid(fa, fb), rel=1e-9)
  assert rec['kid'] == pytest.approx(1e3 * fid_kid.kid(
      fa, fb, key=jax.random.key(0), subset_size=10), rel=1e-9)
  assert (rec['precision'], rec['recall']) == manifold.precision_recall(
      fa, fb, k=3)
  assert (rec['density'], rec['coverage']) == manifold.density_coverage(
      fa, fb, k=5)
  # A table, then one JSON line holding every number.
  assert json.loads(text.strip().splitlines()[-1]) == rec
  assert rec['num_a'] == 12 and rec['num_b'] == 10 and rec['resize'] == 'tf1'


def test_self_is_zero_and_stats_file_equals_images(fake_inception, weights,
                                                   tmp_path):
  a, b = _images(16, 2), _images(16, 3)
  np.save(tmp_path / 'a.npy', a)
  np.save(tmp_path / 'b.npy', b)
  rec, _ = _run([str(tmp_path / 'a.npy'), str(tmp_path / 'a.npy')])
  assert abs(rec['fid']) < 1e-6
  _run([str(tmp_path / 'a.npy')], save_stats=str(tmp_path / 's.npz'))
  with np.load(tmp_path / 's.npz') as z:  # the TTUR layout
    assert set(z.files) >= {'mu', 'sigma'} and z['sigma'].dtype == np.float64
    assert int(z['num_samples']) == 16
  from_images, _ = _run([str(tmp_path / 'a.npy'), str(tmp_path / 'b.npy')])
  from_stats, _ = _run([str(tmp_path / 's.npz'), str(tmp_path / 'b.npy')])
  assert from_stats['fid'] == from_images['fid']
  # Both sides statistics: no features, no weights needed.
  _run([str(tmp_path / 'b.npy')], save_stats=str(tmp_path / 't.npz'),
       packed=True)
  n = len(fake_inception)
  both, _ = _run([str(tmp_path / 's.npz'), str(tmp_path / 't.npz')],
                 inception_path=None)
  assert len(fake_inception) == n
  assert both['fid'] == pytest.approx(from_images['fid'], rel=1e-5)


def test_resize_mode_reaches_the_network(fake_inception, weights, tmp_path):
  a = _images(4, 4)
  np.save(tmp_path / 'a.npy', a)
  for mode in inception.RESIZE_MODES:
    _run([str(tmp_path / 'a.npy')], save_stats=str(tmp_path / 's.npz'),
         resize=mode, batch_size=4)
    np.testing.assert_array_equal(fake_inception[-1],
                                  np.asarray(inception.prepare(a, mode)))
    assert fid_kid.stats_info(str(tmp_path / 's.npz'))[1]['resize'] == mode


def test_data_and_tfds_inputs(fake_inception, weights, tmp_path):
  idx_dir = write_fake_idx(str(tmp_path / 'idx'), num_train=20, num_test=8)
  side = score.read_input('data:mnist/test', what='A', data_dir=idx_dir)
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  want, _ = idx.load_idx_dataset(idx_dir, 'test')
  np.testing.assert_array_equal(side.images, want)
  assert score.read_input('data:mnist/train', what='A', data_dir=idx_dir,
                          num=5).images.shape == (5, 28, 28, 1)
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=8,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    side = score.read_input('tfds:cifar10/train', what='B')
    source = tfds.data_source('cifar10', split='train')
    want = np.stack([source[i]['image'] for i in range(8)])
  assert side.kind == 'tfds'
  np.testing.assert_array_equal(side.images, want)


def test_run_directory_input(fake_inception, weights, tmp_path):
  """A run's samples: the generator of its last checkpoint, quantised."""
  from gan_stability.sweep import spec  # pylint: disable=g-import-not-at-top
  from gan_stability.train import tasks, train_and_evaluate  # pylint: disable=g-import-not-at-top
  idx_dir = write_fake_idx(str(tmp_path / 'idx'))
  config = spec.config_from_args([
      f'--config={REPO}/experiments/configs/mnist.py:wgan_gp',
      f'--config.data.dir={idx_dir}', '--config.model.g_width=8',
      '--config.model.d_width=8', '--config.model.z_dim=8',
      '--config.batch_size=8', '--config.num_steps=2',
      '--config.checkpoint_every=2', '--config.eval_every=100',
      '--config.write_tensorboard=False', '--config.write_samples=False'])
  workdir = str(tmp_path / 'run')
  train_and_evaluate(config, workdir)
  side = score.read_input(workdir, what='B', num=9, seed=3)
  assert side.kind == 'run' and side.images.dtype == np.uint8
  sample_fn, step = tasks.restore_sampler(config, workdir)
  want = sample_fn(jax.random.fold_in(jax.random.key(3), step), 9)
  np.testing.assert_array_equal(side.images, inception.quantize(want))
  floats = score.read_input(workdir, what='B', num=9, seed=3, quantize=False)
  np.testing.assert_allclose(floats.images, (np.clip(want, -1, 1) + 1) * 127.5,
                             rtol=1e-6)
  rec, _ = _run([workdir, workdir], num=9)
  assert rec['quantize'] is True and abs(rec['fid']) < 1e-6


# --------------------------------------------------------------- errors ---


def _rgb_and_grey_folder(root):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  os.makedirs(root)
  Image.fromarray(_images(1, 0, channels=3)[0]).save(f'{root}/a.png')
  rgba = np.concatenate([_images(1, 1, channels=3)[0],
                         np.full((28, 28, 1), 7, np.uint8)], -1)
  Image.fromarray(rgba, 'RGBA').save(f'{root}/b.png')
  Image.fromarray(_images(1, 2)[0, ..., 0]).save(f'{root}/c.png')
  return np.stack([_images(1, 0, channels=3)[0], rgba[..., :3],
                   np.repeat(_images(1, 2)[0], 3, -1)])


def test_folder_modes_converted_and_links_followed(tmp_path):
  want = _rgb_and_grey_folder(str(tmp_path / 'f'))
  side = score.read_input(str(tmp_path / 'f'), what='A')
  np.testing.assert_array_equal(side.images, want)
  # A linked folder is read; a link back up the tree is read once.
  os.makedirs(tmp_path / 'g')
  os.symlink(tmp_path / 'f', tmp_path / 'g' / 'linked')
  os.symlink(tmp_path / 'g', tmp_path / 'g' / 'loop')
  side = score.read_input(str(tmp_path / 'g'), what='A')
  np.testing.assert_array_equal(side.images, want)


def _bad_inputs(tmp_path):
  """(inputs, run() keywords, the error's type, a regex of its message)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  t = str(tmp_path)
  os.makedirs(f'{t}/empty/sub')
  os.makedirs(f'{t}/mixed')
  Image.fromarray(_images(1, 0)[0, ..., 0]).save(f'{t}/mixed/a.png')
  Image.fromarray(_images(1, 0, size=32)[0, ..., 0]).save(f'{t}/mixed/b.png')
  os.makedirs(f'{t}/broken')
  Image.fromarray(_images(1, 0)[0, ..., 0]).save(f'{t}/broken/a.png')
  with open(f'{t}/broken/b.png', 'wb') as f:
    f.write(b'\x89PNG not really')
  np.save(f'{t}/signed.npy', np.random.default_rng(0).uniform(-1, 1,
                                                              (8, 28, 28, 1)))
  np.save(f'{t}/unit.npy', np.random.default_rng(0).uniform(0, 1,
                                                            (8, 28, 28, 3)))
  np.save(f'{t}/ok.npy', _images(8, 0))
  np.save(f'{t}/rgba.npy', _images(8, 0, channels=4))
  np.savez(f'{t}/two.npz', x=_images(8, 0), y=_images(8, 1))
  np.savez(f'{t}/stats_bad.npz', mu=np.zeros(64), sigma=np.eye(3))
  np.savez(f'{t}/stats_small.npz', mu=np.zeros(4), sigma=np.eye(4))
  np.savez(f'{t}/stats.npz', mu=np.zeros(64), sigma=np.eye(64))
  np.savez(f'{t}/object.npz', images=np.array([None, 1], dtype=object))
  np.save(f'{t}/scalar.npy', np.float32(3))
  np.save(f'{t}/empty_hw.npy', np.zeros((2, 0, 28, 1), np.float32))
  np.savez(f'{t}/stats_n.npz', mu=np.zeros(64), sigma=np.eye(64),
           num_samples=np.array([3, 4]))
  np.save(f'{t}/flags.npy', np.zeros((8, 28, 28, 1), bool))
  ok, stats = f'{t}/ok.npy', f'{t}/stats.npz'
  return [
      ([f'{t}/empty', ok], {}, ConfigError, r'A: no image files.*empty'),
      ([ok, f'{t}/mixed'], {}, ConfigError,
       r'B: images of different sizes: .*a.png is 28x28, .*b.png is 32x32'),
      ([f'{t}/broken', ok], {}, ConfigError, r'A: cannot read image .*b.png'),
      ([ok, f'{t}/signed.npy'], {}, ConfigError,
       r'B: pixel values must lie in \[0, 255\].*\(x \+ 1\) \* 127.5'),
      ([f'{t}/unit.npy', ok], {}, ConfigError, r'A: .*images in \[0, 1\]'),
      ([f'{t}/rgba.npy', ok], {}, ConfigError, r'A: expected images .*C = 1 or 3'),
      ([f'{t}/two.npz', ok], {}, ConfigError, r"A: .*two.npz holds \['x', 'y'\]"),
      ([f'{t}/stats_bad.npz', ok], {}, DamagedFile,
       r'stats_bad.npz: mu has shape \(64,\) and sigma \(3, 3\)'),
      ([f'{t}/stats_small.npz', ok], {}, DamagedFile,
       r'4-d features, expected 64-d'),
      ([stats, ok], {'metrics': 'fid,kid'}, ConfigError,
       r"--metrics: \['kid'\] need the features of both sides; A"),
      ([ok, ok], {'metrics': 'fid,is'}, ConfigError,
       r"--metrics: unknown \['is'\]; allowed: \['fid', 'kid', 'pr', 'dc'\]"),
      ([ok, ok], {'resize': 'nearest'}, ConfigError,
       r"--resize: unknown resize mode 'nearest'"),
      ([ok, ok], {'inception_path': None}, ConfigError,
       r'--inception_path: required'),
      ([ok, ok], {'inception_path': f'{t}/nope.npz'}, FileNotFoundError,
       r'--inception_path: .*nope.npz'),
      ([ok, f'{t}/missing'], {}, FileNotFoundError, r'B: .*missing: no such'),
      ([ok, ok, ok], {}, ConfigError, r'expected inputs A \[B\], got 3'),
      ([ok], {}, ConfigError, r'give two inputs A B to compare, or one with '
       '--save_stats'),
      ([stats], {'save_stats': f'{t}/x.npz'}, ConfigError,
       r'--save_stats: A .* is already a statistics file'),
      ([ok, ok], {'num': 0}, ConfigError, r'--num: must be >= 1'),
      ([ok, ok], {'num': 3, 'metrics': 'dc'}, ConfigError,
       r'A .*: 3 images; --metrics=dc needs at least 6'),
      (['data:cifar11/test', ok], {}, ConfigError,
       r"A: 'data:cifar11/test': expected data:NAME/SPLIT with NAME one of"),
      (['tfds:cifar10', ok], {}, ConfigError, r'A: .*expected tfds:NAME/SPLIT'),
      (['tfds:no_such_set/train', ok], {}, ConfigError,
       r'A: .*no_such_set'),
      ([f'{t}/x.txt', ok], {}, FileNotFoundError, r'A: .*x.txt'),
      ([f'{t}/object.npz', ok], {}, ConfigError,
       r'A: cannot read .*object.npz \(ValueError: Object arrays'),
      ([f'{t}/scalar.npy', ok], {}, ConfigError,
       r'A: expected images .*got shape \(\)'),
      ([f'{t}/empty_hw.npy', ok], {}, ConfigError,
       r'A: expected images .*N, H, W >= 1; got shape \(2, 0, 28, 1\)'),
      ([f'{t}/stats_n.npz', ok], {}, DamagedFile,
       r'stats_n.npz: ValueError: num_samples is .*not a positive integer'),
      ([f'{t}/flags.npy', ok], {}, ConfigError, r'A: expected uint8 or float'),
  ]


def test_bad_input_is_one_clear_error(fake_inception, weights, tmp_path):
  for inputs, kw, kind, pattern in _bad_inputs(tmp_path):
    with pytest.raises(kind, match=pattern) as e:
      _run(inputs, **kw)
    assert '\n' not in str(e.value), str(e.value)
  assert fake_inception == []  # refused before any feature was computed


def test_cli_bad_input_exits_2_with_one_line(tmp_path):
  (tmp_path / 'empty').mkdir()
  np.save(tmp_path / 'signed.npy',
          np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)))
  for args, pattern in [
      ([str(tmp_path / 'signed.npy'), str(tmp_path / 'signed.npy'),
        f'--inception_path={tmp_path / "signed.npy"}'], 'A: pixel values must lie in [0, 255]'),
      ([str(tmp_path / 'empty'), str(tmp_path / 'signed.npy')],
       'A: no image files'),
      (['a', 'b', '--resize=lanczos'],
       "--resize: unknown resize mode 'lanczos'; allowed: ['tf1', 'clean', "
       "'bilinear']"),
      (['a', 'b', '--nmu=3'], "Unknown command line flag 'nmu'"),
  ]:
    proc = run_python(['-m', 'experiments.score'] + args, check=False,
                      timeout=120)
    assert proc.returncode == 2, (args, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert pattern in lines[0], lines[0]
