"""Config validation: every bad value is rejected, naming its field, before compiling."""

import ml_collections
import pytest

from experiments.configs import mnist, mog
from gan_stability import config as config_lib
from gan_stability.config import ConfigError

from conftest import run_python


def _with_overrides(config, overrides):
  # type_safe=False so that wrongly-typed values reach the validator (as they
  # can from a hand-built dict or JSON). ``a__b=v`` sets ``a.b``.
  c = ml_collections.ConfigDict(config.to_dict(), type_safe=False)
  with c.unlocked():
    for dotted, value in overrides.items():
      node = c
      *parents, leaf = dotted.split('__')
      for p in parents:
        node = node[p]
      node[leaf] = value
  return c


def _cfg(**overrides):
  return _with_overrides(mog.get_config('nonsaturating'), overrides)


@pytest.mark.parametrize('variant', mog.VARIANTS)
def test_every_variant_validates(variant):
  config_lib.validate(mog.get_config(variant), num_devices=1)


BAD = [
    # (override, field named in the error)
    (dict(n_critic=0), 'n_critic'),
    (dict(n_critic=1.5), 'n_critic'),
    (dict(penalty_weight=-1.0), 'penalty_weight'),
    (dict(penalty='gp', penalty_weight=float('nan')), 'penalty_weight'),
    (dict(penalty='gradient'), 'penalty'),
    (dict(penalty='gp'), 'penalty_weight'),  # gp with weight 0
    (dict(penalty_weight=10.0), 'penalty_weight'),  # weight without penalty
    (dict(loss='wgan'), 'loss'),
    (dict(dataset='spiral'), 'dataset'),
    (dict(batch_size=0), 'batch_size'),
    (dict(batch_size='64'), 'batch_size'),
    (dict(batch_size=True), 'batch_size'),
    (dict(seed=-1), 'seed'),
    (dict(num_steps=0), 'num_steps'),
    (dict(optimizer__g_lr=0.0), 'optimizer.g_lr'),
    (dict(optimizer__d_lr=-1e-4), 'optimizer.d_lr'),
    (dict(optimizer__b1=1.0), 'optimizer.b1'),
    (dict(optimizer__b2=-0.1), 'optimizer.b2'),
    (dict(optimizer__name='lamb'), 'optimizer.name'),
    (dict(optimizer__lr_schedule='cosine'), 'optimizer.lr_schedule'),
    (dict(model__name='resnet'), 'model.name'),
    (dict(model__z_dim=0), 'model.z_dim'),
    (dict(model__g_activation='gelu'), 'model.g_activation'),
    (dict(model__spectral_norm='yes'), 'model.spectral_norm'),
    (dict(model__sn_steps=0), 'model.sn_steps'),
    (dict(model__packing=3), 'model.packing'),  # 256 % 3 != 0
    (dict(model__packing=2, penalty='r1', penalty_weight=1.0), 'penalty'),
    (dict(data__ring_sigma=0.0), 'data.ring_sigma'),
    (dict(data__grid_size=1), 'data.grid_size'),
    (dict(ema_decay=1.0), 'ema_decay'),
    (dict(ema_start=10**9), 'ema_start'),
    (dict(d_clip=0.01, model__spectral_norm=True), 'd_clip'),
    (dict(log_every=75), 'log_every'),  # not a multiple of steps_per_dispatch
    (dict(eval_samples=0), 'eval_samples'),
    (dict(keep_checkpoints=0), 'keep_checkpoints'),
    (dict(learning_rate=1e-3), 'learning_rate'),  # unknown field
    (dict(model__width=3), 'model.width'),  # unknown nested field
    (dict(model__num_classes=10), 'model.num_classes'),  # mlp: unconditional
]


@pytest.mark.parametrize('overrides,field', BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_config_names_the_field(overrides, field):
  with pytest.raises(ConfigError, match=rf'^config\.{field}\b'):
    config_lib.validate(_cfg(**overrides), num_devices=1)


def _image_cfg(**overrides):
  """The class-conditional MNIST smoke config with ``overrides``."""
  c = mnist.get_config('smoke_cond')
  c.data.dir = '/x'
  return _with_overrides(c, overrides)


IMAGE_BAD = [
    (dict(model__num_classes=-1), 'model.num_classes'),
    (dict(model__num_classes=1.5), 'model.num_classes'),
    (dict(model__num_classes=5), 'model.num_classes'),  # mnist has 10
    (dict(dataset='stacked_mnist'), 'model.num_classes'),  # it has 1000
    (dict(model__packing=2), 'model.packing'),  # conditional + PacGAN
]


def test_conditional_image_config_validates():
  config_lib.validate(_image_cfg(), num_devices=1)
  config_lib.validate(_image_cfg(model__num_classes=0), num_devices=1)


@pytest.mark.parametrize('overrides,field', IMAGE_BAD,
                         ids=[b[1] + str(i) for i, b in enumerate(IMAGE_BAD)])
def test_bad_image_config_names_the_field(overrides, field):
  with pytest.raises(ConfigError, match=rf'^config\.{field}\b'):
    config_lib.validate(_image_cfg(**overrides), num_devices=1)


def test_batch_not_divisible_by_devices():
  with pytest.raises(ConfigError, match=r'^config\.batch_size.*devices \(3\)'):
    config_lib.validate(_cfg(batch_size=256), num_devices=3)
  config_lib.validate(_cfg(batch_size=258), num_devices=3)


def test_too_many_devices_requested():
  with pytest.raises(ConfigError, match=r'^config\.num_devices'):
    config_lib.validate(_cfg(num_devices=64))


def test_unknown_variant():
  with pytest.raises(ValueError, match=r"variant.*'wgan'.*allowed"):
    mog.get_config('wgan')


def test_cli_rejects_bad_input_before_compiling(tmp_path):
  """Unknown override keys, unknown variants and bad values fail fast with the
  field in the message and leave no checkpoint behind."""
  base = ['-m', 'experiments.train', f'--workdir={tmp_path}/w']
  cases = [
      (['--config=experiments/configs/mog.py:smoke', '--config.no_such_key=1'],
       'no_such_key'),
      (['--config=experiments/configs/mog.py:bogus'], 'bogus'),
      (['--config=experiments/configs/mog.py:smoke', '--config.n_critic=0'],
       'config.n_critic'),
      (['--config=experiments/configs/mog.py:smoke', '--config.batch_size=33',
        '--config.num_devices=2'], 'config.batch_size'),
  ]
  for args, needle in cases:
    proc = run_python(base + args, devices=2, check=False, timeout=120)
    assert proc.returncode == 2, (args, proc.stderr[-2000:])
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
    assert needle in lines[0], (args, lines)
    assert 'Compiling' not in proc.stderr
  assert not (tmp_path / 'w' / 'checkpoints').exists()


@pytest.mark.parametrize('module,args,needle', [
    ('experiments.sweep', ['--bogus=1'], "Unknown command line flag 'bogus'"),
    ('experiments.report', ['--workdir=x', '--metric'],
     'Missing value for flag --metric'),
    ('experiments.launch', ['--num_processes=two'],
     'flag --num_processes=two: invalid literal'),
    ('experiments.evaluate', ['--workdir=x', '--step=last'],
     'flag --step=last: invalid literal'),
])
def test_every_cli_reports_a_bad_flag_in_one_line(module, args, needle):
  """experiments.entry: absl's two lines and status 1 become one line
  ``error: ...`` and status 2 in every CLI."""
  proc = run_python(['-m', module] + args, check=False, timeout=120)
  assert proc.returncode == 2, proc.stderr
  lines = proc.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), proc.stderr
  assert needle in lines[0], lines
