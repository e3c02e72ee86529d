"""Every image config trains a few steps on CPU (fake IDX files, mock TFDS):
losses finite, sample grids written; plus the sample-grid layout."""

import json
import os

import numpy as np
import pytest

from experiments.configs import cifar10, mnist, stacked_mnist
from gan_stability import config as config_lib
from gan_stability import plotting
from gan_stability.train import train_and_evaluate

from conftest import write_fake_idx

TINY = dict(g_width=8, d_width=8, z_dim=16)


def _tiny(c, idx_dir=None, **extra):
  c.model.update(TINY)
  if c.model.name == 'sngan_cnn':
    c.model.g_width = 16
  c.update(batch_size=8, num_steps=2, steps_per_dispatch=1, log_every=1,
           eval_every=2, checkpoint_every=2, eval_samples=8,
           write_tensorboard=False)
  c.data.samples_per_row = 2
  c.data.stacked_num_examples = 64
  if idx_dir is not None:
    c.data.dir = str(idx_dir)
  for k, v in extra.items():
    c[k] = v
  return c


def _check_run(wd, c):
  recs = [json.loads(l) for l in open(os.path.join(wd, 'metrics.jsonl'))]
  assert [r['step'] for r in recs] == [1, 2]
  for r in recs:
    for k in ('d_loss', 'g_loss', 'penalty', 'd_grad_norm', 'g_grad_norm'):
      assert np.isfinite(r[k]), (k, r)
  assert recs[-1]['samples_finite'] is True
  png = os.path.join(wd, 'samples', 'step_0000002.png')
  grid = plotting.plt.imread(png)
  h, w = c.data.pad_to or 28, c.data.pad_to or 28
  if c.dataset.startswith('tfds:'):
    h = w = 32
  assert grid.shape[:2] == (2 * (h + 1) + 1, 2 * (w + 1) + 1)


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  return write_fake_idx(str(tmp_path_factory.mktemp('idx')), num_train=64)


@pytest.mark.parametrize('module,variant', [
    (mnist, 'smoke'), (mnist, 'vanilla'), (mnist, 'nonsaturating'),
    (mnist, 'wgan_gp'), (mnist, 'sngan'), (mnist, 'hinge_r1'),
    (stacked_mnist, 'smoke'), (stacked_mnist, 'wgan_gp'),
])
def test_idx_configs_train(module, variant, idx_dir, tmp_path):
  c = _tiny(module.get_config(variant), idx_dir)
  config_lib.validate(c)
  wd = str(tmp_path / 'run')
  train_and_evaluate(c, wd)
  _check_run(wd, c)


@pytest.mark.parametrize('variant,model', [('sngan', 'sngan_cnn'),
                                           ('wgan_gp', 'resnet'),
                                           ('vanilla', 'sngan_cnn')])
def test_cifar10_configs_train_on_mock_tfds(variant, model, tmp_path):
  import tensorflow_datasets as tfds
  c = _tiny(cifar10.get_config(variant))
  c.model.name = model
  with tfds.testing.mock_data(num_examples=16,
                              policy=tfds.testing.MockPolicy.USE_CODE):
    wd = str(tmp_path / 'run')
    train_and_evaluate(c, wd)
  _check_run(wd, c)


def test_padding_to_32_and_ema(idx_dir, tmp_path):
  c = _tiny(mnist.get_config('nonsaturating'), idx_dir)
  c.data.pad_to = 32
  c.ema_decay = 0.5
  wd = str(tmp_path / 'run')
  train_and_evaluate(c, wd)
  _check_run(wd, c)


def test_image_grid_layout():
  imgs = np.stack([np.full((2, 3, 1), v, np.float32) for v in (-1.0, 0.0, 1.0)])
  grid = plotting.image_grid(imgs, ncols=2)
  assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 3)
  assert np.all(grid[1:3, 1:4] == 0)        # -1 -> black
  assert np.all(grid[1:3, 5:8] == 128)      # 0 -> mid grey (127.5 rounds to 128)
  assert np.all(grid[4:6, 1:4] == 255)      # 1 -> white
  assert np.all(grid[4:6, 5:8] == 255)      # empty cell stays white
  assert np.all(grid[0] == 255) and np.all(grid[:, 4] == 255)  # gaps


def test_image_config_errors():
  c = mnist.get_config('wgan_gp')
  with pytest.raises(config_lib.ConfigError, match=r'^config\.data\.dir'):
    config_lib.validate(c, num_devices=1)
  c.data.dir = '/x'
  c.model.d_norm = 'batch'
  with pytest.raises(config_lib.ConfigError, match=r'^config\.model\.d_norm'):
    config_lib.validate(c, num_devices=1)
  c = cifar10.get_config('sngan')
  c.data.source = 'idx'
  with pytest.raises(config_lib.ConfigError, match=r'^config\.data\.source'):
    config_lib.validate(c, num_devices=1)
  c = mnist.get_config('sngan')
  c.model.name = 'mlp'
  with pytest.raises(config_lib.ConfigError, match=r'^config\.model\.name'):
    config_lib.validate(c, num_devices=1)
