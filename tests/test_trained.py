"""gan_stability.load / trained.py and the sampler CLI (experiments/sample.py).

A tiny run of each kind (GAN, conditional GAN with EMA, VAE, 2-D GAN) is
trained once; the samples its training loop evaluated at the last step are
recorded (the evaluator is wrapped) and ``load(workdir).sample`` with the
run's evaluation key must give them again. Exported models round-trip
bitwise, shipped generators match their golden samples. (A run of 2
devices, and one of 2 processes, loading on 1 device: tests/test_multihost.py.)
"""

import json
import os

import jax
import numpy as np
import pytest

import gan_stability
from gan_stability import trained
from gan_stability.errors import ConfigError, DamagedFile
from gan_stability.eval import evaluators
from gan_stability.metrics import inception
from gan_stability.train import tasks
from gan_stability.train import task as task_lib
from tests.conftest import run_python, write_fake_idx


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('idx')
  write_fake_idx(str(d), num_train=64, num_test=16)
  return str(d)


def _config(kind, idx_dir):
  if kind == 'mixture':
    from experiments.configs import mog
    c = mog.get_config('smoke')
    c.batch_size, c.num_steps, c.eval_samples = 16, 3, 32
    c.log_every = c.eval_every = c.checkpoint_every = 3
    c.steps_per_dispatch = 1
  elif kind == 'vae':
    from experiments.configs import vae
    c = vae.get_config('smoke_cond')
    c.data.dir = idx_dir
  else:
    from experiments.configs import mnist
    c = mnist.get_config('smoke_cond' if kind == 'cond' else 'smoke')
    c.data.dir = idx_dir
    if kind == 'cond':
      c.ema_decay = 0.5  # EMA kept: sample(ema=False) differs
  c.write_tensorboard = False
  c.num_steps = max(c.num_steps, 3)
  c.log_every = c.eval_every = c.checkpoint_every = c.num_steps
  return c


def _train_recording(config, workdir, monkeypatch):
  """Trains; returns the float samples the loop evaluated last."""
  seen = []
  make = evaluators.make_evaluator

  def recording(config, *, workdir=None):
    inner = make(config, workdir=workdir)

    def evaluate(samples, step, **kw):
      seen.append(np.array(samples))
      return inner(samples, step, **kw)
    return evaluate

  monkeypatch.setattr(evaluators, 'make_evaluator', recording)
  tasks.train_and_evaluate(config, workdir)
  monkeypatch.setattr(evaluators, 'make_evaluator', make)
  return seen[-1]


RUNS = {}


@pytest.fixture(scope='module')
def runs(idx_dir, tmp_path_factory):
  """kind -> (workdir, config, the loop's last evaluation samples)."""
  mp = pytest.MonkeyPatch()
  out = {}
  try:
    for kind in ('gan', 'cond', 'vae', 'mixture'):
      c = _config(kind, idx_dir)
      wd = str(tmp_path_factory.mktemp(kind))
      out[kind] = (wd, c, _train_recording(c, wd, mp))
  finally:
    mp.undo()
  return out


def _eval_key(config):
  return jax.random.split(jax.random.key(config.seed), 3)[2]


@pytest.mark.parametrize('kind', ['gan', 'cond', 'vae', 'mixture'])
def test_load_gives_the_loops_evaluation_samples(runs, kind):
  wd, c, loop_samples = runs[kind]
  model = gan_stability.load(wd)
  assert model.step == c.num_steps
  assert model.family == ('vae' if kind == 'vae' else 'gan')
  n = c.eval_samples
  np.testing.assert_array_equal(jax.random.key_data(model.eval_key),
                                jax.random.key_data(_eval_key(c)))
  raw = model.sample(n, key=model.eval_key, raw=True)
  np.testing.assert_allclose(raw, loop_samples, rtol=1e-6, atol=1e-6)
  if kind == 'mixture':
    assert raw.dtype == np.float32 and raw.shape == (n, 2)
    return
  pixels = model.sample(n, key=_eval_key(c))
  assert pixels.dtype == np.uint8 and pixels.shape == loop_samples.shape
  np.testing.assert_array_equal(pixels, inception.quantize(raw))
  # The default labels are the loop's grid labels.
  if kind in ('cond', 'vae'):
    np.testing.assert_array_equal(
        model.labels(n), task_lib.sample_labels(c, n))


def test_model_json_written_and_data_not_needed(runs, idx_dir, tmp_path):
  wd, c, _ = runs['gan']
  with open(os.path.join(wd, 'model.json')) as f:
    assert json.load(f) == {'data_shape': [28, 28, 1]}
  # Without model.json (a run from before 0.2.0) the data gives the shape.
  import shutil
  old = str(tmp_path / 'old')
  shutil.copytree(wd, old)
  os.remove(os.path.join(old, 'model.json'))
  a = trained.load(old).sample(4)
  np.testing.assert_array_equal(a, trained.load(wd).sample(4))
  cfg = json.load(open(os.path.join(old, 'config.json')))
  cfg['data']['dir'] = str(tmp_path / 'missing')
  json.dump(cfg, open(os.path.join(old, 'config.json'), 'w'))
  with pytest.raises(FileNotFoundError, match='no model.json'):
    trained.load(old)


def test_sample_is_independent_of_batch_size_and_seeded(runs):
  model = trained.load(runs['cond'][0])
  a = model.sample(23, seed=3, batch_size=5)
  b = model.sample(23, seed=3, batch_size=100)
  np.testing.assert_array_equal(a, b)
  assert not np.array_equal(a, model.sample(23, seed=4))
  # Latents are normal(key(seed), [n, z_dim]).
  np.testing.assert_array_equal(
      model.latents(23, seed=3),
      jax.random.normal(jax.random.key(3), (23, model.z_dim)))


def test_conditional_labels_and_ema(runs):
  model = trained.load(runs['cond'][0])
  assert model.num_classes == 10
  z = model.latents(10)
  x3 = model.generate(z, 3)
  x7 = model.generate(z, np.full(10, 7))
  assert not np.allclose(x3, x7)
  np.testing.assert_array_equal(x3, model.generate(z, np.full(10, 3)))
  # EMA weights by default, the live ones on request.
  assert model.live_generator_variables is not None
  live = model.generate(z, 3, ema=False)
  assert not np.allclose(live, x3)
  np.testing.assert_allclose(
      live, model.generator(model.live_generator_variables, z,
                            np.full(10, 3, np.int32)), rtol=1e-6, atol=1e-6)
  with pytest.raises(ConfigError, match=r'class 10 is not in \[0, 10\)'):
    model.sample(4, labels=10)
  with pytest.raises(ConfigError, match='expected 4 integer class labels'):
    model.sample(4, labels=[1, 2])
  with pytest.raises(ConfigError, match='labels: required'):
    model.generate(z)
  plain = trained.load(runs['gan'][0])
  with pytest.raises(ConfigError, match='unconditional'):
    plain.sample(4, labels=1)


def test_networks_are_pure_functions_under_jit(runs):
  wd, c, _ = runs['gan']
  model = trained.load(wd)
  z = model.latents(6, seed=1)
  x = jax.jit(model.generator)(model.generator_variables, z)
  np.testing.assert_allclose(x, model.generate(z), rtol=1e-6, atol=1e-6)
  logits = jax.jit(model.discriminator)(model.discriminator_variables, x)
  assert logits.shape == (6,) and np.all(np.isfinite(logits))
  # The gradient of D's mean logit with respect to z flows through G.
  g = jax.grad(lambda z: model.discriminator(
      model.discriminator_variables,
      model.generator(model.generator_variables, z)).mean())(z)
  assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0
  assert trained.load(runs['vae'][0]).discriminator is None


def test_export_round_trip(runs, tmp_path):
  for kind in ('cond', 'mixture'):
    wd, c, _ = runs[kind]
    model = trained.load(wd)
    out = str(tmp_path / kind)
    info = trained.export(model, out, about={'command': 'test'})
    again = trained.load(out)
    assert again.step == model.step and again.info['command'] == 'test'
    np.testing.assert_array_equal(again.sample(40, seed=2),
                                  model.sample(40, seed=2))
    assert info['sample_digest'] == trained.sample_digest(
        again.sample(trained.DIGEST_SAMPLES, seed=0))
    x = again.generate(again.latents(5), again.labels(5))
    np.testing.assert_array_equal(
        again.discriminator(again.discriminator_variables, x,
                            again.labels(5)),
        model.discriminator(model.discriminator_variables, x,
                            model.labels(5)))
    # Only the sampling networks: no optimiser state.
    with np.load(os.path.join(out, trained.VARIABLES_FILE)) as f:
      assert all(k.split('/')[0] in ('generator', 'discriminator')
                 for k in f.files)
  with pytest.raises(ConfigError, match='exported model of one step'):
    trained.load(out, step=3)


def test_damaged_export_is_named(runs, tmp_path):
  out = str(tmp_path / 'e')
  trained.export(trained.load(runs['gan'][0]), out, discriminator=False)
  assert trained.load(out).discriminator is None
  path = os.path.join(out, trained.VARIABLES_FILE)
  with np.load(path) as f:
    arrays = {k: f[k] for k in f.files}
  key = sorted(arrays)[0]
  arrays[key] = arrays[key][..., :1]
  np.savez(path, **arrays)
  with pytest.raises(DamagedFile, match=f'{key} is float32'):
    trained.load(out)
  with open(path, 'wb') as f:
    f.write(b'not a zip')
  with pytest.raises(DamagedFile, match='cannot be read'):
    trained.load(out)
  with open(os.path.join(out, 'model.json'), 'w') as f:
    f.write('{')
  with pytest.raises(DamagedFile, match='model.json: damaged'):
    trained.load(out)


def test_load_errors(runs, tmp_path):
  with pytest.raises(FileNotFoundError, match=r'shipped: \['):
    trained.load(str(tmp_path / 'nothing'))
  with pytest.raises(FileNotFoundError, match='no config.json'):
    trained.load(str(tmp_path))
  with pytest.raises(ConfigError, match='--step=1: no such checkpoint'):
    trained.load(runs['gan'][0], step=1)
  with pytest.raises(ConfigError, match='n: expected a positive integer'):
    trained.load(runs['gan'][0]).sample(0)


GOLDEN_SAMPLES = os.path.join(os.path.dirname(__file__), 'golden',
                              'shipped_samples.npz')


@pytest.mark.parametrize('name', trained.shipped())
def test_shipped_generators_match_their_golden_samples(name):
  """sample(64, seed=0) of each shipped generator against the uint8 samples
  recorded when it was exported (tests/golden/shipped_samples.npz, whose
  digest is the one in its model.json). A different CPU or XLA version may
  round a float output that lies within an ulp of a pixel boundary the
  other way: a few pixels may differ by one level; bitwise on the machine
  that exported them."""
  model = gan_stability.load(name)
  assert model.path == os.path.join(trained.SHIPPED_DIR, name)
  with np.load(GOLDEN_SAMPLES) as f:
    golden = f[name]
  assert trained.sample_digest(golden) == model.info['sample_digest']
  x = model.sample(trained.DIGEST_SAMPLES, seed=0)
  assert x.dtype == np.uint8 and x.shape == golden.shape
  diff = np.abs(x.astype(int) - golden)
  assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3, (
      f'{np.sum(diff > 0)} pixels differ, by up to {diff.max()}')
  assert model.info['command'] and model.info['data_shape'] == [28, 28, 1]


def test_shipped_list():
  assert {'mnist_wgan_gp', 'fashion_mnist_wgan_gp_cond'} <= set(
      trained.shipped())
  assert gan_stability.load('fashion_mnist_wgan_gp_cond').num_classes == 10


# ------------------------------------------------------------- the CLI ---


def test_interpolate_paths():
  from gan_stability import sampling as sample
  a = np.array([[3.0, 0.0], [1.0, 1.0]], np.float32)
  b = np.array([[0.0, 3.0], [1.0, 1.0]], np.float32)  # 90 degrees; equal
  s = sample.interpolate(a, b, 3, 'slerp')
  np.testing.assert_allclose(s[0, 0], a[0], atol=1e-6)
  np.testing.assert_allclose(s[0, 2], b[0], atol=1e-6)
  # The midpoint of the quarter circle of radius 3.
  np.testing.assert_allclose(s[0, 1], [3 / np.sqrt(2), 3 / np.sqrt(2)],
                             atol=1e-6)
  np.testing.assert_allclose(s[1], np.ones((3, 2)), atol=1e-6)  # w = 0
  line = sample.interpolate(a, b, 3, 'lerp')
  np.testing.assert_allclose(line[0, 1], [1.5, 1.5], atol=1e-6)


def test_sample_cli_outputs(runs, tmp_path):
  from gan_stability import sampling as sample
  from gan_stability.data import folder
  wd, c, _ = runs['cond']
  model = trained.load(wd)
  npz = str(tmp_path / 's.npz')
  print(sample.run(run_path=wd, out=npz, num=20, seed=1))
  with np.load(npz) as f:
    np.testing.assert_array_equal(f['x'], model.sample(20, seed=1))
    np.testing.assert_array_equal(f['label'], model.labels(20))
    assert int(f['step']) == c.num_steps
  # A folder: one subfolder per class, read back as labelled images.
  out = str(tmp_path / 'pngs')
  sample.run(run_path=wd, out=out, num=20, seed=1)
  images, files = folder.read_folder(out)
  np.testing.assert_array_equal(images, model.sample(20, seed=1))
  assert [int(os.path.basename(os.path.dirname(f))) for f in files] == list(
      model.labels(20))
  # --class; the grid PNG of 2 x 4 images with 1-pixel gaps.
  png = str(tmp_path / 'g.png')
  sample.run(run_path=wd, out=png, num=8, label=4, ncols=4)
  from PIL import Image
  grid = np.asarray(Image.open(png))
  assert grid.shape[:2] == (2 * 29 + 1, 4 * 29 + 1)
  with pytest.raises(ConfigError, match='--out: .* exists'):
    sample.run(run_path=wd, out=png, num=8)
  # Interpolation: rows start and end at the plain samples' latents.
  inter = str(tmp_path / 'i.npz')
  sample.run(run_path=wd, out=inter, num=3, steps=5, label=2)
  with np.load(inter) as f:
    assert f['x'].shape == (3, 5, 28, 28, 1)
    ends = np.asarray(model.latents(6))  # n = 3
    np.testing.assert_allclose(f['z'][:, 0], ends[:3], atol=1e-5)
    np.testing.assert_allclose(f['z'][:, -1], ends[3:], atol=1e-5)
    assert np.all(f['label'] == 2)


def test_sample_overwrite_never_deletes_other_files(runs, tmp_path):
  from gan_stability import sampling as sample
  wd = runs['cond'][0]
  out = tmp_path / 'pngs'
  sample.run(run_path=wd, out=str(out), num=12, seed=1)
  before = sorted(p.relative_to(out) for p in out.rglob('*.png'))
  assert len(before) == 12
  with pytest.raises(ConfigError, match='holds samples; add --overwrite'):
    sample.run(run_path=wd, out=str(out), num=4)
  sample.run(run_path=wd, out=str(out), num=4, overwrite=True)
  assert len(list(out.rglob('*.png'))) == 4  # replaced, not merged
  (out / 'thesis.tex').write_text('precious')
  with pytest.raises(ConfigError, match='did not write'):
    sample.run(run_path=wd, out=str(out), num=4, overwrite=True)
  assert (out / 'thesis.tex').read_text() == 'precious'
  with pytest.raises(ConfigError, match='did not write'):  # the run itself
    sample.run(run_path=wd, out=wd, num=4, overwrite=True)
  assert os.path.isdir(os.path.join(wd, 'checkpoints'))
  (tmp_path / 'afile').write_text('x')
  with pytest.raises(ConfigError, match='is a file'):
    sample.run(run_path=wd, out=str(tmp_path / 'afile'), num=4,
               overwrite=True)
  assert not list(tmp_path.glob('*.tmp-*'))  # no temporary left behind


def test_an_export_has_only_the_ema_weights(runs, tmp_path):
  model = trained.load(runs['cond'][0])  # ema_decay 0.5
  out = str(tmp_path / 'e')
  trained.export(model, out)
  with pytest.raises(ConfigError, match="only the generator's EMA weights"):
    trained.load(out).sample(4, ema=False)


def test_sample_cli_points(runs, tmp_path):
  from gan_stability import sampling as sample
  wd, _, _ = runs['mixture']
  out = str(tmp_path / 'p.npz')
  sample.run(run_path=wd, out=out, num=50)
  with np.load(out) as f:
    np.testing.assert_array_equal(f['x'], trained.load(wd).sample(50))
  sample.run(run_path=wd, out=str(tmp_path / 'p.png'), num=50)
  assert os.path.getsize(tmp_path / 'p.png') > 0
  with pytest.raises(ConfigError, match='folder of PNGs is for image'):
    sample.run(run_path=wd, out=str(tmp_path / 'pts'), num=5)


# ------------------------------------------------- the README's examples ---


def _readme_block(after: str, lang: str) -> str:
  text = open(os.path.join(os.path.dirname(os.path.dirname(__file__)),
                           'README.md')).read()
  start = text.index(f'```{lang}\n', text.index(after)) + len(lang) + 4
  return text[start:text.index('```', start)]


def test_readme_load_example():
  code = _readme_block('**Sample from a trained model**', 'python')
  scope = {}
  exec(code, scope)  # pylint: disable=exec-used
  assert scope['digits'].shape == (16, 28, 28, 1)
  assert scope['digits'].dtype == np.uint8
  np.testing.assert_allclose(
      inception.quantize(np.asarray(scope['x'])), scope['digits'])


def test_readme_folder_example(tmp_path):
  """The tour's two commands, on a tiny folder of PNGs, with the smoke
  recipe in place of wgan_gp."""
  from PIL import Image
  images = tmp_path / 'my_images'
  rng = np.random.default_rng(0)
  for i in range(24):
    (images / f'sub{i % 3}').mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (40, 36, 3), np.uint8)).save(
        images / f'sub{i % 3}' / f'{i}.png')
  block = _readme_block('**Train on your own images**', 'bash')
  block = (block.replace('\\\n', ' ')
           .replace('/path/to/my_images', str(images))
           .replace('/tmp/my_gan', str(tmp_path / 'my_gan'))
           .replace('folder.py:wgan_gp', 'folder.py:smoke'))
  lines = [l.split() for l in block.strip().splitlines()]
  assert [l[:3] for l in lines] == [['python', '-m', 'experiments.train'],
                                    ['python', '-m', 'experiments.sample']]
  for args in lines:
    run_python(args[1:] + ['--config.data.cache_dir=' + str(tmp_path / 'c')]
               if 'experiments.train' in args else args[1:], timeout=300)
  grid = np.asarray(Image.open(tmp_path / 'my_gan.png'))[..., :3]
  model = trained.load(str(tmp_path / 'my_gan'))
  assert model.data_shape == (32, 32, 3)  # the folder's RGB, cropped to 32
  assert model.step == model.config.num_steps
  # The PNG is the 8 x 8 grid (1-pixel gaps) of load(...).sample(64).
  from gan_stability import plotting
  want = plotting.image_grid(model.sample(64).astype(np.float32) / 127.5 - 1,
                             8)
  np.testing.assert_array_equal(grid, want)
