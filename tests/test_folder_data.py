"""Training on one's own images: dataset 'custom' read from a folder of image
files (data.source=folder) or an .npz file (data.source=npz). Exact pixels
and labels, modes, resizing, unreadable files, the decoded-image cache,
splits, errors, and tiny training runs (exact resume, 1 vs 2 devices)."""

import json
import logging
import os

import numpy as np
import pytest
from PIL import Image

from experiments.configs import folder as folder_cfg
from experiments.configs import mnist
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability.data import folder
from gan_stability.errors import ConfigError

from conftest import run_python

PALETTE = [1, 2, 3, 40, 50, 60, 200, 100, 0, 9, 9, 9]


def _save(path, array, mode=None):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  Image.fromarray(array, mode).save(path)


def _classes_folder(root):
  """Two class folders, four modes; returns the expected uint8 RGB array
  (sorted paths: a/1_rgb, a/2_rgba, b/1_grey, b/2_palette)."""
  rng = np.random.default_rng(0)
  rgb = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
  rgba = rng.integers(0, 256, (4, 5, 4), dtype=np.uint8)
  grey = rng.integers(0, 256, (4, 5), dtype=np.uint8)
  index = rng.integers(0, 4, (4, 5), dtype=np.uint8)
  _save(f'{root}/a/1_rgb.png', rgb)
  _save(f'{root}/a/2_rgba.png', rgba)
  _save(f'{root}/b/1_grey.png', grey)
  p = Image.fromarray(index, 'P')
  p.putpalette(PALETTE)
  p.save(f'{root}/b/2_palette.png')
  palette = np.array(PALETTE, np.uint8).reshape(4, 3)
  return np.stack([rgb, rgba[..., :3], np.repeat(grey[..., None], 3, -1),
                   palette[index]])


def _config(directory, cache, **data):
  c = folder_cfg.get_config('smoke')
  c.data.update(dir=str(directory), cache_dir=str(cache), image_size=0,
                **data)
  return c


def test_class_subfolders_modes_and_labels(tmp_path, caplog):
  want = _classes_folder(tmp_path / 'f')
  c = _config(tmp_path / 'f', tmp_path / 'cache')
  c.model.num_classes = 2
  config_lib.validate(c, num_devices=1)
  with caplog.at_level(logging.INFO, logger='absl'):
    got = data_lib.load_images(c)
  np.testing.assert_array_equal(got, want)
  assert got.dtype == np.uint8
  np.testing.assert_array_equal(data_lib.load_labels(c), [0, 0, 1, 1])
  assert data_lib.custom(c).classes == ('a', 'b')
  line, = [r.getMessage() for r in caplog.records if 'files per mode' in
           r.getMessage()]
  assert 'L 1, P 1, RGB 1, RGBA 1' in line and 'alpha dropped' in line
  assert 'grey copied to 3 channels' in line
  # The batches are these pixels scaled by x / 127.5 - 1.
  c.batch_size = 4
  it = data_lib.make_iterator(c, seed=0)
  batch = next(it)
  rows = it.global_indices(0)
  np.testing.assert_array_equal(batch['label'], np.array([0, 0, 1, 1])[rows])
  np.testing.assert_allclose(batch['x'], want[rows] / 127.5 - 1, atol=1e-6)


def test_all_grey_folder_stays_one_channel(tmp_path):
  rng = np.random.default_rng(1)
  l8 = rng.integers(0, 256, (3, 4), dtype=np.uint8)
  bits = rng.integers(0, 2, (3, 4)).astype(bool)
  i16 = rng.integers(0, 65536, (3, 4)).astype(np.uint16)
  la = rng.integers(0, 256, (3, 4, 2), dtype=np.uint8)
  t = tmp_path / 'g'
  _save(f'{t}/1.png', l8)
  _save(f'{t}/2.png', bits)                    # mode 1
  Image.fromarray(i16).save(f'{t}/3.png')      # mode I;16
  _save(f'{t}/4.png', la, 'LA')
  d = folder.load_folder(str(t), cache_dir=str(tmp_path / 'cache'))
  assert sorted(d.modes) == ['1', 'I;16', 'L', 'LA'], d.modes
  want = np.stack([l8, bits.astype(np.uint8) * 255,
                   np.round(i16 / 257.0).astype(np.uint8), la[..., 0]])
  np.testing.assert_array_equal(d.images, want[..., None])
  assert d.labels is None and d.top_file == '1.png'


def test_image_size_crop_and_resize(tmp_path):
  rng = np.random.default_rng(2)
  tall = rng.integers(0, 256, (48, 32, 3), dtype=np.uint8)  # H=48, W=32
  _save(f'{tmp_path}/crop/x.png', tall)
  d = folder.load_folder(f'{tmp_path}/crop', image_size=32,
                         cache_dir=str(tmp_path / 'cache'))
  np.testing.assert_array_equal(d.images[0], tall[8:40])  # no resampling
  # A constant colour stays that colour through any resize; 40x60 -> 20x30,
  # the middle 20 columns.
  _save(f'{tmp_path}/const/x.png', np.full((40, 60, 3), (10, 200, 30),
                                           np.uint8))
  d = folder.load_folder(f'{tmp_path}/const', image_size=20,
                         cache_dir=str(tmp_path / 'cache'))
  np.testing.assert_array_equal(d.images, np.full((1, 20, 20, 3),
                                                  (10, 200, 30), np.uint8))
  # Left half A, right half B, 64x128 -> 32x64 (bicubic support: 2 output
  # pixels either side of the edge at 32) -> columns 16..47: the edge is at
  # crop column 16; columns < 12 are A and >= 20 are B exactly.
  halves = np.zeros((64, 128), np.uint8)
  halves[:, :64], halves[:, 64:] = 30, 220
  _save(f'{tmp_path}/halves/x.png', halves)
  d = folder.load_folder(f'{tmp_path}/halves', image_size=32,
                         cache_dir=str(tmp_path / 'cache'))
  assert d.images.shape == (1, 32, 32, 1)
  assert np.all(d.images[0, :, :12] == 30)
  assert np.all(d.images[0, :, 20:] == 220)
  # The filter is symmetric: column i and its mirror 31 - i about the edge
  # sum to A + B (bicubic's over- and undershoot included: 28 + 222).
  row = d.images[0, 0, :, 0].astype(int)
  np.testing.assert_array_equal(row + row[::-1], 250)
  assert row.min() < 30 and row.max() > 220


def _truncated_png(path, array):
  _save(path, array)
  data = open(path, 'rb').read()
  with open(path, 'wb') as f:
    f.write(data[:len(data) // 2])  # the header parses, the pixels do not


def test_unreadable_files(tmp_path, caplog):
  rng = np.random.default_rng(3)
  good = rng.integers(0, 256, (2, 6, 6), dtype=np.uint8)
  t = str(tmp_path / 'u')
  _save(f'{t}/a.png', good[0])
  _save(f'{t}/c.png', good[1])
  with open(f'{t}/b.png', 'wb') as f:
    f.write(b'\x89PNG not really')
  _truncated_png(f'{t}/d.png', rng.integers(0, 256, (6, 6, 3), np.uint8))
  cache = str(tmp_path / 'cache')
  with pytest.raises(ConfigError, match=r'^config\.data\.dir: cannot read '
                     r'image .*/u/b\.png .*data\.skip_unreadable=True'):
    folder.load_folder(t, cache_dir=cache)
  with caplog.at_level(logging.WARNING, logger='absl'):
    d = folder.load_folder(t, cache_dir=cache, skip_unreadable=True)
  # The colour file d.png is skipped: the rest is all grey, 1 channel.
  np.testing.assert_array_equal(d.images, good[..., None])
  assert d.files == ('a.png', 'c.png') and d.skipped == ('b.png', 'd.png')
  warning, = [r.getMessage() for r in caplog.records if 'skipped' in
              r.getMessage()]
  assert 'skipped 2 unreadable image files' in warning and 'b.png' in warning
  # Read back from the cache: the same.
  again = folder.load_folder(t, cache_dir=cache, skip_unreadable=True)
  assert isinstance(again.images, np.memmap) and again.skipped == d.skipped
  np.testing.assert_array_equal(again.images, good[..., None])


def test_folder_errors(tmp_path):
  cache = str(tmp_path / 'cache')
  os.makedirs(tmp_path / 'empty' / 'sub')
  with pytest.raises(ConfigError, match=r'no image files .*empty'):
    folder.load_folder(str(tmp_path / 'empty'), cache_dir=cache)
  _save(f'{tmp_path}/sizes/a.png', np.zeros((4, 5), np.uint8))
  _save(f'{tmp_path}/sizes/b.png', np.zeros((6, 5), np.uint8))
  with pytest.raises(ConfigError, match=r'different sizes: .*a\.png is 5x4, '
                     r'.*b\.png is 5x6'):
    folder.load_folder(f'{tmp_path}/sizes', cache_dir=cache)
  # image_size makes them one size.
  d = folder.load_folder(f'{tmp_path}/sizes', image_size=4, cache_dir=cache)
  assert d.images.shape == (2, 4, 4, 1)
  c = _config(tmp_path / 'missing', cache)
  with pytest.raises(ConfigError, match=r"^config\.data\.dir: .*missing' is "
                     'not a folder'):
    data_lib.load_images(c)


def test_class_count_must_match(tmp_path):
  _classes_folder(tmp_path / 'f')
  c = _config(tmp_path / 'f', tmp_path / 'cache')
  c.model.num_classes = 3
  config_lib.validate(c, num_devices=1)  # known only when read
  with pytest.raises(ConfigError, match=r"^config\.model\.num_classes: 3, but "
                     r"the class subfolders of .*/f are 2 classes \['a', "
                     r"'b'\]"):
    data_lib.load_labels(c)
  _save(f'{tmp_path}/f/top.png', np.zeros((4, 5), np.uint8))
  c = _config(tmp_path / 'f', tmp_path / 'cache')
  c.model.num_classes = 2
  with pytest.raises(ConfigError, match=r'^config\.model\.num_classes: 2 asks '
                     r'.*top\.png lies directly in'):
    data_lib.load_labels(c)


def test_numbered_class_folders_keep_their_numbers(tmp_path):
  for k in range(12):  # 0/ ... 11/ (string order would put 10/ after 1/)
    _save(f'{tmp_path}/n/{k}/x.png', np.full((2, 2), k, np.uint8))
  d = folder.load_folder(f'{tmp_path}/n', cache_dir=str(tmp_path / 'cache'))
  assert d.classes == tuple(str(k) for k in range(12))
  # Files in sorted path order (0, 1, 10, 11, 2, ...), each labelled with
  # its folder's number, which is also its pixel value.
  order = sorted(range(12), key=str)
  np.testing.assert_array_equal(d.labels, order)
  np.testing.assert_array_equal(d.images[:, 0, 0, 0], order)


def test_cache_is_reused_and_a_changed_file_invalidates_it(tmp_path,
                                                          monkeypatch):
  want = _classes_folder(tmp_path / 'f')
  f, cache = str(tmp_path / 'f'), str(tmp_path / 'cache')
  first = folder.load_folder(f, cache_dir=cache)
  assert first.cache.startswith(cache) and os.path.isfile(first.cache)
  meta = json.load(open(first.cache[:-len('.npy')] + '.json'))
  assert meta['labels'] == [0, 0, 1, 1] and meta['classes'] == ['a', 'b']

  def fail(path):
    raise AssertionError(f'decoded {path}')

  monkeypatch.setattr(folder, 'decode', fail)
  second = folder.load_folder(f, cache_dir=cache)  # no decoding
  assert isinstance(second.images, np.memmap)
  np.testing.assert_array_equal(second.images, want)
  assert second.cache == first.cache and second.modes == first.modes
  # A rewritten file (new content and mtime) is a new key: decoded again.
  _save(f'{f}/a/1_rgb.png', np.full((4, 5, 3), 7, np.uint8))
  st = os.stat(f'{f}/a/1_rgb.png')
  os.utime(f'{f}/a/1_rgb.png', ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
  with pytest.raises(ConfigError, match=r'decoded .*1_rgb\.png'):
    folder.load_folder(f, cache_dir=cache)
  monkeypatch.undo()
  third = folder.load_folder(f, cache_dir=cache)
  assert third.cache != first.cache
  want[0] = 7
  np.testing.assert_array_equal(third.images, want)
  assert sorted(os.listdir(cache)) == sorted(
      os.path.basename(p)[:-4] + e for p in (first.cache, third.cache)
      for e in ('.json', '.npy'))


def test_unwritable_cache_decodes_into_memory(tmp_path, caplog):
  want = _classes_folder(tmp_path / 'f')
  (tmp_path / 'file').write_text('not a folder')
  with caplog.at_level(logging.WARNING, logger='absl'):
    d = folder.load_folder(str(tmp_path / 'f'),
                           cache_dir=str(tmp_path / 'file' / 'cache'))
  assert d.cache == '' and not isinstance(d.images, np.memmap)
  np.testing.assert_array_equal(d.images, want)
  assert any('cannot write the decoded-image cache' in r.getMessage()
             for r in caplog.records)


def test_splits(tmp_path):
  rng = np.random.default_rng(4)
  train = rng.integers(0, 256, (2, 4, 4), dtype=np.uint8)
  test = rng.integers(0, 256, (1, 4, 4), dtype=np.uint8)
  for i, a in enumerate(train):
    _save(f'{tmp_path}/s/train/{i}.png', a)
  _save(f'{tmp_path}/s/test/0.png', test[0])
  c = _config(tmp_path / 's', tmp_path / 'cache')
  np.testing.assert_array_equal(data_lib.load_images(c), train[..., None])
  np.testing.assert_array_equal(data_lib.load_split(c, 'test'),
                                test[..., None])
  with pytest.raises(ConfigError, match=r"split 'val' needs the folder "
                     r'.*/s/val'):
    data_lib.load_split(c, 'val')
  # Without train/: all of data.dir is 'train', nothing else.
  c = _config(tmp_path / 's' / 'test', tmp_path / 'cache')
  np.testing.assert_array_equal(data_lib.load_images(c), test[..., None])
  with pytest.raises(ConfigError, match=r"split 'test' needs the folder "
                     r".*/s/test/test; .* no train/ subfolder"):
    data_lib.load_split(c, 'test')


def _npz_config(path, **model):
  c = folder_cfg.get_config('smoke')
  c.data.update(source='npz', dir=str(path), image_size=0)
  c.model.update(model)
  config_lib.validate(c, num_devices=1)
  return c


def test_npz_source(tmp_path):
  rng = np.random.default_rng(5)
  x = rng.integers(0, 256, (6, 4, 4), dtype=np.uint8)
  x_test = rng.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
  labels = np.array([0, 1, 2, 0, 1, 2])
  np.savez(tmp_path / 'd.npz', x=x, label=labels, x_test=x_test)
  c = _npz_config(tmp_path / 'd.npz', num_classes=3)
  np.testing.assert_array_equal(data_lib.load_images(c), x[..., None])
  np.testing.assert_array_equal(data_lib.load_labels(c), labels)
  np.testing.assert_array_equal(data_lib.load_split(c, 'test'), x_test)
  c.batch_size = 2
  it = data_lib.make_iterator(c, seed=0)
  batch, rows = next(it), it.global_indices(0)
  np.testing.assert_array_equal(batch['label'], labels[rows])
  np.testing.assert_allclose(batch['x'], x[rows, ..., None] / 127.5 - 1,
                             atol=1e-6)


def test_npz_errors(tmp_path):
  t = tmp_path
  x = np.zeros((4, 3, 3), np.uint8)
  np.savez(t / 'nox.npz', images=x)
  np.savez(t / 'float.npz', x=x.astype(np.float32))
  np.savez(t / 'rank.npz', x=np.zeros((4, 3), np.uint8))
  np.savez(t / 'len.npz', x=x, label=np.zeros(3, np.int64))
  np.savez(t / 'nolabel.npz', x=x)
  np.savez(t / 'range.npz', x=x, label=np.array([0, 1, 2, 5]))
  (t / 'junk.npz').write_bytes(b'not a zip')
  cases = [
      ('missing.npz', 0, 'train', r"config\.data\.dir: .*missing\.npz' is "
       'not a file'),
      ('junk.npz', 0, 'train', r'cannot read .*junk\.npz as \.npz'),
      ('nox.npz', 0, 'train', r"nox\.npz has no key 'x' .*keys: \['images'\]"),
      ('nolabel.npz', 0, 'test', r"nolabel\.npz has no key 'x_test' .*keys: "
       r"\['x'\]"),
      ('float.npz', 0, 'train', r"float\.npz key 'x': expected uint8 .*"
       'float32'),
      ('rank.npz', 0, 'train', r"rank\.npz key 'x': expected images .*"
       r'\(4, 3\)'),
      ('len.npz', 0, 'train', r"len\.npz key 'label': expected integer "
       r'labels of shape \(4,\)'),
      ('nolabel.npz', 2, 'train', r'config\.model\.num_classes: 2 asks .*'
       r"nolabel\.npz has no key 'label'"),
      ('range.npz', 3, 'train', r"config\.model\.num_classes: 3, but .*"
       r"range\.npz key 'label' holds labels in \[0, 5\]"),
  ]
  for name, k, split, pattern in cases:
    c = _npz_config(t / name, num_classes=k)
    with pytest.raises(ConfigError, match=pattern):
      data_lib.load_split(c, split) if split != 'train' else (
          data_lib.load_labels(c) if k else data_lib.load_images(c))


@pytest.mark.parametrize('change,field', [
    (dict(source='idx'), 'data.source'),               # custom with idx
    (dict(source='tfds'), 'data.source'),
    (dict(dir=''), 'data.dir'),
    (dict(source='npz', image_size=32), 'data.image_size'),
    (dict(source='npz', image_size=0, skip_unreadable=True),
     'data.skip_unreadable'),
    (dict(image_size=-1), 'data.image_size'),
])
def test_custom_config_errors(change, field):
  c = folder_cfg.get_config('wgan_gp')
  c.data.dir = '/x'
  c.data.update(change)
  with pytest.raises(ConfigError, match=rf'^config\.{field}\b'):
    config_lib.validate(c, num_devices=1)


def test_other_datasets_refuse_folder_options():
  c = mnist.get_config('wgan_gp')
  c.data.update(dir='/x', source='folder')
  with pytest.raises(ConfigError, match=r"^config\.data\.source: 'folder' "
                     r"reads dataset 'custom' only; dataset 'mnist' allows "
                     r"\['idx', 'tfds'\]"):
    config_lib.validate(c, num_devices=1)
  c = mnist.get_config('wgan_gp')
  c.data.update(dir='/x', image_size=32)
  with pytest.raises(ConfigError, match=r'^config\.data\.image_size: 32 '
                     "applies only to data.source='folder'"):
    config_lib.validate(c, num_devices=1)
  c = folder_cfg.get_config('wgan_gp')
  c.data.dir = '/x'
  c.eval.metrics = 'digits'
  with pytest.raises(ConfigError, match=r"^config\.eval\.metrics: 'digits' "
                     "uses the MNIST classifier.*'custom'"):
    config_lib.validate(c, num_devices=1)
  c.eval.metrics = 'pr'
  with pytest.raises(ConfigError, match=r'^config\.eval\.features'):
    config_lib.validate(c, num_devices=1)
  with pytest.raises(ValueError, match=r"'wgan_gp_cond'.*--config\.model\."
                     'num_classes=K'):
    folder_cfg.get_config('wgan_gp_cond')
  for v in ('vanilla', 'nonsaturating', 'wgan_gp', 'sngan', 'hinge_r1',
            'smoke'):
    c = folder_cfg.get_config(v)
    c.data.dir = '/x'
    config_lib.validate(c, num_devices=1)


# ------------------------------------------------------------- training ---


def _image_folder(root, n=8, seed=0):
  """Two classes of ``n`` RGB 20x24 images each (image_size 16 crops them)."""
  rng = np.random.default_rng(seed)
  for k in ('cats', 'dogs'):
    for i in range(n):
      _save(f'{root}/{k}/{i}.png', rng.integers(0, 256, (20, 24, 3),
                                                 dtype=np.uint8))
  return str(root)


def _train_config(directory, cache, **kw):
  c = folder_cfg.get_config('smoke')  # data.image_size=16
  c.data.update(dir=directory, cache_dir=cache)
  c.model.num_classes = 2
  c.update(num_steps=4, checkpoint_every=2, eval_every=2, log_every=1,
           write_tensorboard=False, write_samples=False)
  c.update(kw)
  return c


# Runs in one subprocess with 2 fake devices (one process compiles the
# 1-device program once for three runs, then the 2-device one): 'full' (4
# steps, its cache unwritable: decoded into memory), 'part' (stopped at step
# 2, run again to 4; the memory-mapped cache), 'two' (4 steps on 2 devices).
RUNS = r'''
import json, os, sys
import jax, numpy as np
from experiments.configs import folder
from gan_stability import checkpoint
from gan_stability.train import tasks, train_and_evaluate
assert jax.device_count() == 2
images, tmp = sys.argv[1], sys.argv[2]
open(tmp + '/file', 'w').close()

def config(devices, steps, cache):
  c = folder.get_config('smoke')  # data.image_size=16
  c.data.update(dir=images, cache_dir=cache)
  c.model.num_classes = 2
  c.update(num_steps=steps, checkpoint_every=2, eval_every=2, log_every=1,
           num_devices=devices, write_tensorboard=False, write_samples=False)
  return c

runs = [('full', 1, 4, tmp + '/file/cache'), ('part', 1, 2, tmp + '/cache'),
        ('part', 1, 4, tmp + '/cache'), ('two', 2, 4, tmp + '/cache')]
out = {}
for name, devices, steps, cache in runs:
  c = config(devices, steps, cache)
  out[name] = train_and_evaluate(c, f'{tmp}/{name}')
  if name == 'full':
    assert not os.path.exists(tmp + '/cache')
assert os.listdir(tmp + '/cache')
template = tasks.make_task(c).init_state(jax.random.key(0))
states = {w: checkpoint.restore_run_state(f'{tmp}/{w}', template, None)
          for w in ('full', 'part', 'two')}
assert states['full'][1] == states['part'][1] == 4
for x, y in zip(jax.tree.leaves(states['full'][0]),
                jax.tree.leaves(states['part'][0])):
  np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
assert out['full'] == out['part']
assert (open(tmp + '/full/metrics.jsonl').read() ==
        open(tmp + '/part/metrics.jsonl').read())
keys = ['d_loss', 'g_loss', 'd_grad_norm', 'g_grad_norm', 'sample_mean',
        'sample_std']
np.testing.assert_allclose([out['two'][k] for k in keys],
                           [out['full'][k] for k in keys], rtol=2e-4,
                           atol=1e-6)
print('OK', json.dumps({k: out['full'][k] for k in keys}))
'''


def test_training_resumes_exactly_and_two_devices_agree(tmp_path):
  """A folder run stopped at step 2 and run again to 4 equals an
  uninterrupted one bit for bit (parameters, optimiser state, metrics);
  on 2 devices it agrees within the tolerance of the other 1-vs-2-device
  tests."""
  d = _image_folder(tmp_path / 'imgs')
  proc = run_python(['-c', RUNS, d, str(tmp_path)], devices=2, timeout=300)
  assert 'OK' in proc.stdout
  record = json.loads(proc.stdout.split('OK', 1)[1])
  assert all(np.isfinite(v) for v in record.values())
  assert record['d_grad_norm'] > 0 and record['sample_std'] > 0


def test_evaluation_reads_the_folder(tmp_path, fake_inception):
  """FID / KID of a 'custom' run: the real side is the folder's first
  eval.num_real images (cached under a name of the folder's contents);
  samples equal to them have FID 0."""
  from gan_stability.data import images as images_lib
  from gan_stability.eval import evaluators
  d = _image_folder(tmp_path / 'imgs')
  c = _train_config(d, str(tmp_path / 'cache'), eval_samples=8)
  c.eval.update(metrics='fid,kid', inception_path='fake.npz', num_real=16)
  config_lib.validate(c, num_devices=1)
  real = data_lib.load_images(c)
  assert real.shape == (16, 16, 16, 3)
  ev = evaluators.make_evaluator(c, workdir=str(tmp_path / 'run'))
  r = ev(images_lib.scale_images(np.asarray(real)), 4, sample_dir=None)
  # FID of a set against itself is 0; KID's unbiased estimate leaves out
  # the diagonal k(x, x) within a set but not between them: < 0 here.
  assert abs(r['fid']) < 1e-3 and r['kid'] < 0, r
  name = data_lib.stats_name(c, 'train')
  assert name.startswith('custom_') and os.listdir(
      tmp_path / 'run' / 'eval_cache') == [f'{name}-train-16-inception-tf1.npz']
  # The network saw the real images (uint8 -> its input) and the samples.
  assert len(fake_inception) == 2


def test_each_process_reads_its_half_of_every_batch(tmp_path, monkeypatch):
  """Under multi-host each process's iterator yields its rows of the global
  batch: the two halves of what one process reads, same labels."""
  root = tmp_path / 'imgs'
  rng = np.random.default_rng(1)
  for i in range(20):
    _save(f'{root}/c{i % 2}/{i:02d}.png',
          rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
  c = _config(root, tmp_path / 'cache')
  c.model.num_classes = 2
  c.batch_size = 8
  import jax
  one = data_lib.make_iterator(c, seed=3)
  want = [next(one) for _ in range(4)]  # crosses an epoch (20 // 8 = 2)
  for index in (0, 1):
    monkeypatch.setattr(jax, 'process_index', lambda index=index: index)
    monkeypatch.setattr(jax, 'process_count', lambda: 2)
    it = data_lib.make_iterator(c, seed=3)
    for w in want:
      got = next(it)
      half = slice(4 * index, 4 * index + 4)
      np.testing.assert_array_equal(got['x'], w['x'][half])
      np.testing.assert_array_equal(got['label'], w['label'][half])


def test_too_few_images_and_a_size_the_model_cannot_take(tmp_path):
  from gan_stability.train import tasks
  root = tmp_path / 'few'
  for i in range(4):
    _save(f'{root}/{i}.png', np.full((20, 20, 3), i, np.uint8))
  c = _config(root, tmp_path / 'cache')
  with pytest.raises(ConfigError, match=r'^config\.batch_size: 8 exceeds '
                     'the 4 examples'):
    tasks.make_task(c)
  c.batch_size = 4
  with pytest.raises(ConfigError, match=r"^config\.model\.name: 'dcgan' "
                     r'supports .* got data shape \(20, 20, 3\) .*'
                     r'data\.image_size'):
    tasks.make_task(c)
