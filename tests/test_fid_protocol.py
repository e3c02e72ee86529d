"""The FID protocol: resize modes against independent references,
quantisation, features per mode (deterministic, batch-size and device-count
independent), the evaluator's config fields and records, packaged
reference statistics.

``tf1`` is checked against a per-pixel NumPy implementation of TF 1.x's
legacy ``ResizeBilinear`` written here from its definition, ``clean``
against Pillow itself (float32 channel images, ``Image.BICUBIC``).
"""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_stability import config as config_lib
from gan_stability.config import schema
from gan_stability.errors import DamagedFile
from gan_stability.eval import evaluators, reference
from gan_stability.metrics import fid_kid, inception

from conftest import run_python  # pylint: disable=g-bad-import-order
from test_inception import MNIST_TEST, WEIGHTS  # pylint: disable=g-bad-import-order


# ------------------------------------------------------------ references ---


def tf1_bilinear_reference(image: np.ndarray, out_h: int, out_w: int
                           ) -> np.ndarray:
  """TF 1.x ``resize_bilinear(align_corners=False)``, one pixel at a time:
  ``src = dst * in / out``, neighbours ``floor(src)`` and
  ``min(floor(src) + 1, in - 1)``, interpolated horizontally then
  vertically. The scale ``in / out`` and ``src`` are float32, as TF computes
  them (in float64 the fractions, hence the values, move by up to ~5e-4 on
  the 0-255 scale)."""
  in_h, in_w, c = image.shape
  out = np.zeros((out_h, out_w, c))
  f32 = np.float32
  for y in range(out_h):
    sy = float(f32(y) * (f32(in_h) / f32(out_h)))
    y0 = int(np.floor(sy))
    y1 = min(y0 + 1, in_h - 1)
    fy = sy - y0
    for x in range(out_w):
      sx = float(f32(x) * (f32(in_w) / f32(out_w)))
      x0 = int(np.floor(sx))
      x1 = min(x0 + 1, in_w - 1)
      fx = sx - x0
      top = image[y0, x0] + (image[y0, x1] - image[y0, x0]) * fx
      bottom = image[y1, x0] + (image[y1, x1] - image[y1, x0]) * fx
      out[y, x] = top + (bottom - top) * fy
  return out


def pil_clean_reference(image: np.ndarray, size: int) -> np.ndarray:
  """clean-fid's 'clean' resize: each channel a float32 PIL image, bicubic,
  clipped to [0, 255]."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  return np.stack([
      np.asarray(Image.fromarray(image[:, :, k].astype(np.float32), mode='F')
                 .resize((size, size), Image.BICUBIC)).clip(0, 255)
      for k in range(image.shape[-1])], axis=-1)


SIZES = [(28, 28, 1, 299), (32, 32, 3, 299), (7, 13, 3, 29), (299, 301, 1, 299),
         (64, 45, 3, 17), (5, 5, 1, 2)]


@pytest.mark.parametrize('h,w,c,size', SIZES)
def test_tf1_resize_matches_numpy_reference(h, w, c, size):
  rng = np.random.default_rng(h * w + c)
  x = rng.uniform(0, 255, (2, h, w, c)).astype(np.float32)
  got = np.asarray(inception.resize(x, 'tf1', size=size))
  assert got.shape == (2, size, size, c) and got.dtype == np.float32
  for n in range(2):
    want = tf1_bilinear_reference(x[n].astype(np.float64), size, size)
    np.testing.assert_allclose(got[n], want, rtol=0, atol=1e-4)


@pytest.mark.parametrize('h,w,c,size', SIZES)
def test_clean_resize_matches_pil(h, w, c, size):
  rng = np.random.default_rng(h * w + c)
  x = rng.uniform(0, 255, (2, h, w, c)).astype(np.float32)
  x[0, 0, 0, 0], x[0, -1, -1, -1] = 0.0, 255.0  # overshoot, then clipped
  got = np.asarray(inception.resize(x, 'clean', size=size))
  for n in range(2):
    np.testing.assert_allclose(got[n], pil_clean_reference(x[n], size),
                               rtol=0, atol=1e-3)
  assert got.min() >= 0.0 and got.max() <= 255.0


def test_tf1_hand_values():
  """2 -> 4 pixels: src = 0, 0.5, 1, 1.5 -> a, (a+b)/2, b, b (clamped)."""
  x = np.array([10.0, 30.0], np.float32).reshape(1, 1, 2, 1)
  x = np.repeat(x, 2, axis=1)  # 2x2, rows equal
  got = np.asarray(inception.resize(x, 'tf1', size=4))[0, :, :, 0]
  np.testing.assert_allclose(got, np.tile([10.0, 20.0, 30.0, 30.0], (4, 1)))


def test_tf1_resize_matches_tensorflow_golden():
  """TensorFlow 2.21's ``tf.compat.v1.image.resize_bilinear(
  align_corners=False, half_pixel_centers=False)`` on random images, kept
  by ``experiments.bench.resize_vs_tf --golden_out``."""
  with np.load(os.path.join(os.path.dirname(__file__), 'golden',
                            'tf1_resize.npz')) as z:
    cases = [k[3:] for k in z.files if k.startswith('in_')]
    assert len(cases) >= 4
    for k in cases:
      size = int(k.split('_')[1])
      got = np.asarray(inception.resize(z[f'in_{k}'], 'tf1', size=size))
      np.testing.assert_allclose(got, z[f'tf_{k}'], rtol=0, atol=1e-4)


def test_bilinear_mode_is_jax_image_resize():
  x = np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1))
  got = inception.resize(x, 'bilinear')
  want = jax.image.resize(jnp.asarray(x, jnp.float32), (2, 299, 299, 1),
                          'bilinear')
  np.testing.assert_array_equal(np.asarray(got), np.asarray(want))


@pytest.mark.parametrize('mode', inception.RESIZE_MODES)
def test_no_resize_at_299(mode):
  x = np.random.default_rng(1).uniform(0, 255, (1, 299, 299, 3))
  np.testing.assert_array_equal(np.asarray(inception.resize(x, mode)),
                                x.astype(np.float32))


def test_unknown_resize_mode():
  with pytest.raises(ValueError, match=r"unknown resize mode 'nearest'.*tf1"):
    inception.resize(np.zeros((1, 8, 8, 1)), 'nearest')


def test_quantize_hand_values():
  x = np.array([-1.0, -0.5, 0.0, 0.5, 1.0, -2.0, 3.0, 0.996])
  # floor(x * 127.5 + 128): 0.5, 64.25, 128, 191.75, 255.5, <0, >255, 254.99
  np.testing.assert_array_equal(inception.quantize(x),
                                [0, 64, 128, 191, 255, 0, 255, 254])
  assert inception.quantize(x).dtype == np.uint8
  u = np.arange(256, dtype=np.uint8)
  assert inception.quantize(u) is u
  # A uint8 image mapped to [-1, 1] comes back exactly.
  np.testing.assert_array_equal(
      inception.quantize(u.astype(np.float32) / np.float32(127.5) - 1), u)


# ------------------------------------------------------------ features ---


@pytest.fixture(scope='module')
def params():
  if not os.path.isfile(WEIGHTS):
    pytest.skip(f'FID Inception weights not found at {WEIGHTS}')
  return inception.load_params(WEIGHTS)


@pytest.fixture(scope='module')
def digits():
  if not os.path.isfile(MNIST_TEST):
    pytest.skip(f'MNIST not found at {MNIST_TEST}')
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  return idx.read_idx(MNIST_TEST)[:16][..., None]


def test_features_per_mode_deterministic_and_batch_independent(params,
                                                               digits):
  digits = digits[:8]
  feats = {}
  for mode in inception.RESIZE_MODES:
    a = inception.features(params, digits, resize=mode, batch_size=8)
    small = inception.features(params, digits, resize=mode, batch_size=3)
    np.testing.assert_allclose(small, a, rtol=0,
                               atol=1e-5 * np.abs(a).max())
    feats[mode] = a
  np.testing.assert_array_equal(
      inception.features(params, digits, resize='tf1', batch_size=8),
      feats['tf1'])
  # The features are the network on the mode's resize, done by hand.
  x = np.repeat(np.asarray(inception.resize(digits, 'clean')), 3, -1)
  want = np.asarray(inception.apply(params, x / 128.0 - 1.0))
  np.testing.assert_allclose(feats['clean'], want, rtol=0,
                             atol=1e-5 * np.abs(want).max())
  # The modes are different pipelines: their features differ.
  for m1, m2 in (('tf1', 'clean'), ('tf1', 'bilinear'), ('clean', 'bilinear')):
    rel = np.abs(feats[m1] - feats[m2]).max() / np.abs(feats[m1]).max()
    assert rel > 1e-2, (m1, m2, rel)


_FAKE_APPLY = '''
def fake_apply(params, x, impl='auto'):  # per image: batching cannot change it
  calls.append((x.shape, len(x.sharding.device_set)))
  return jnp.tile(jnp.mean(x, axis=(1, 2)), (1, 683))[:, :2048]
'''
_SHARDED = r'''
import sys
import jax.numpy as jnp
import numpy as np
from gan_stability.metrics import inception
calls = []
''' + _FAKE_APPLY + r'''
inception.apply = fake_apply
images = np.random.default_rng(0).integers(0, 256, (7, 28, 28, 1), np.uint8)
np.save(sys.argv[1], inception.features({}, images, batch_size=3))
print(calls)
'''


def test_features_sharded_over_devices(tmp_path, monkeypatch):
  """Two fake devices: the batch (3) is rounded up to a multiple of them
  (4) and split across both, the padded last batch trimmed: the features of
  one device."""
  proc = run_python(['-c', _SHARDED, str(tmp_path / 'two.npy')], devices=2)
  assert proc.stdout.strip() == str([((4, 299, 299, 3), 2)] * 2), proc.stdout
  scope = {'jnp': jnp, 'calls': []}
  exec(_FAKE_APPLY, scope)  # pylint: disable=exec-used
  monkeypatch.setattr(inception, 'apply', scope['fake_apply'])
  images = np.random.default_rng(0).integers(0, 256, (7, 28, 28, 1), np.uint8)
  one = inception.features({}, images, batch_size=3)
  assert scope['calls'] == [((3, 299, 299, 3), 1)] * 3
  two = np.load(tmp_path / 'two.npy')
  assert two.shape == (7, 2048)
  np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-6)


# -------------------------------------------------------- config fields ---


def test_eval_protocol_fields_default_legacy_and_resume():
  c = schema.defaults(model='dcgan', dataset='mnist')
  assert c.eval.fid_resize == 'tf1' and c.eval.quantize is True
  assert c.eval.real_split == ''
  # A config.json written before 0.2.0 reads as the old protocol.
  old = json.loads(c.to_json())
  for k in ('fid_resize', 'quantize', 'real_split'):
    del old['eval'][k]
  up = config_lib.upgrade(old)
  assert up['eval']['fid_resize'] == 'bilinear'
  assert up['eval']['quantize'] is False
  # A resumed run refuses another protocol.
  new = schema.defaults(model='dcgan', dataset='mnist')
  new.eval.fid_resize = 'clean'
  assert 'eval.fid_resize' in config_lib.resume_changes(c.to_dict(), new)
  new.eval.fid_resize, new.eval.quantize = 'tf1', False
  assert 'eval.quantize' in config_lib.resume_changes(c.to_dict(), new)
  c.eval.fid_resize = 'lanczos'
  with pytest.raises(config_lib.ConfigError,
                     match=r"eval.fid_resize.*'tf1', 'clean', 'bilinear'"):
    config_lib.validate(c)


def _evaluator(tmp_path, **eval_fields):
  """An image evaluator of fake MNIST (12 train images as the real side)."""
  c = schema.defaults(model='dcgan', dataset='mnist')
  c.eval.metrics = 'fid,kid'
  c.eval.inception_path = 'unused'
  c.eval.num_real = 12
  c.data.dir = str(tmp_path / 'idx')
  for k, v in eval_fields.items():
    setattr(c.eval, k, v)
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  idx.write_random_digits(c.data.dir, num_train=24, num_test=12, seed=0)
  return evaluators.ImageEvaluator(c, workdir=str(tmp_path / 'wd'))


def test_evaluator_quantizes_resizes_and_records(fake_inception, tmp_path):
  ev, seen = _evaluator(tmp_path), fake_inception
  samples = np.random.default_rng(0).uniform(-1, 1, (12, 28, 28, 1))
  out = ev.compute_metrics(samples.astype(np.float32), step=3)
  assert out['fid_resize'] == 'tf1' and out['quantized'] is True
  # The samples' features first (then the real side's): quantised and
  # tf1-resized samples went through the network.
  assert len(seen) == 2
  fake_x = seen[0][:12]
  want = np.asarray(inception.prepare(inception.quantize(samples), 'tf1'))
  np.testing.assert_array_equal(fake_x, want)
  assert os.path.exists(os.path.join(
      tmp_path, 'wd', 'eval_cache', 'mnist-train-12-inception-tf1.npz'))


def test_evaluator_old_protocol(fake_inception, tmp_path):
  ev, seen = _evaluator(tmp_path, quantize=False, fid_resize='bilinear'), (
      fake_inception)
  samples = np.random.default_rng(0).uniform(-1, 1, (12, 28, 28, 1))
  out = ev.compute_metrics(samples.astype(np.float32), step=3)
  assert out['fid_resize'] == 'bilinear' and out['quantized'] is False
  want = np.asarray(inception.prepare((samples + 1) * 127.5, 'bilinear'))
  np.testing.assert_allclose(seen[0][:12], want, atol=1e-6)
  # The first release's cache name: its caches are still found.
  assert os.path.exists(os.path.join(
      tmp_path, 'wd', 'eval_cache', 'mnist-train-12-inception.npz'))


def test_evaluator_uses_a_matching_packaged_file(fake_inception, monkeypatch,
                                                tmp_path):
  seen = fake_inception
  rng = np.random.default_rng(1)
  mu, sigma = fid_kid.gaussian_stats(rng.normal(size=(40, 64)))
  assets = tmp_path / 'assets'
  monkeypatch.setattr(reference, 'ASSETS_DIR', str(assets))
  path = str(assets / (reference.Key('mnist', 'test', 12, 'inception',
                                     'tf1').cache_name() + '.npz'))

  def package(weights_digest):
    fid_kid.save_stats(path, mu, sigma, num_samples=12, packed=True,
                       protocol={'weights_sha256': weights_digest})

  package(inception.params_digest({}))  # the (fake) network's weights
  ev = _evaluator(tmp_path / 'a', real_split='test')
  got_mu, got_sigma = ev.real_stats('inception')
  assert seen == []  # no real image went through the network
  np.testing.assert_array_equal(got_mu, mu)
  np.testing.assert_allclose(got_sigma, sigma, rtol=1e-6, atol=1e-7)
  # Another protocol (clean) does not match the key: computed from images.
  _evaluator(tmp_path / 'b', real_split='test',
             fid_resize='clean').real_stats('inception')
  assert len(seen) == 1
  # Made with other weights: not used either.
  package('0' * 64)
  _evaluator(tmp_path / 'c', real_split='test').real_stats('inception')
  assert len(seen) == 2


# ------------------------------------------------------ statistics files ---


def test_stats_files_round_trip_and_damage(tmp_path):
  f = np.random.default_rng(2).normal(size=(30, 6))
  mu, sigma = fid_kid.gaussian_stats(f)
  for packed in (False, True):
    p = str(tmp_path / f'{packed}.npz')
    fid_kid.save_stats(p, mu, sigma, num_samples=30, packed=packed,
                         protocol={'resize': 'tf1'})
    got_mu, got_sigma = fid_kid.load_stats(p)
    np.testing.assert_array_equal(got_mu, mu)
    np.testing.assert_allclose(got_sigma, sigma, rtol=1e-6 if packed else 0)
    assert fid_kid.stats_info(p) == (30, {'resize': 'tf1'})
    assert fid_kid.is_stats_file(p)
  with np.load(str(tmp_path / 'False.npz')) as z:  # the TTUR layout
    assert z['mu'].dtype == z['sigma'].dtype == np.float64
  bad = tmp_path / 'bad.npz'
  np.savez(bad, mu=mu, sigma=sigma[:3])
  with pytest.raises(DamagedFile, match=r'bad.npz: mu has shape \(6,\) and '
                     r'sigma \(3, 6\)'):
    fid_kid.load_stats(str(bad))
  with pytest.raises(DamagedFile, match='6-d features, expected 2048-d'):
    fid_kid.load_stats(str(tmp_path / 'True.npz'), dim=2048)
  (tmp_path / 'cut.npz').write_bytes(
      (tmp_path / 'False.npz').read_bytes()[:100])
  with pytest.raises(DamagedFile, match='cut.npz'):
    fid_kid.load_stats(str(tmp_path / 'cut.npz'))


def test_packaged_statistics():
  """Every packaged file: 2048-d, symmetric PSD sigma, its protocol and the
  number of images stated, named by its key."""
  files = reference.packaged()
  assert files, 'no packaged FID statistics'
  for path in files:
    mu, sigma = fid_kid.load_stats(path, dim=2048)
    n, protocol = fid_kid.stats_info(path)
    assert len(protocol['weights_sha256']) == 64
    assert protocol['resize'] in inception.RESIZE_MODES
    assert protocol['num'] == n
    dataset, split = protocol['source'].split(':')[1].split('/')
    key = reference.Key(dataset, split, n, 'inception', protocol['resize'])
    assert reference.find(key) == path
    assert np.all(mu >= 0)  # ReLU then average pooling
    # Positive semi-definite: a Cholesky factor exists after a tiny ridge.
    np.linalg.cholesky(sigma + 1e-9 * np.trace(sigma) * np.eye(len(mu)))
