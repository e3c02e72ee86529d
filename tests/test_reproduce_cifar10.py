"""experiments/reproduce/cifar10.py: the sweep (Miyato et al.'s configs on
every point), the time estimate, the missing-data refusal, and --quick end to
end on tfds.testing.mock_data (train, evaluate, table, CSVs)."""

import csv
import math

import pytest

from conftest import IMAGE_RECIPES, assert_mean_se, recipe_of, run_python

from experiments.reproduce import cifar10 as c10

# model.name, g_width, d_width (full size; Miyato et al. Tables 3 and 4).
ARCHS = {'cnn': ('sngan_cnn', 512, 64), 'resnet': ('resnet', 256, 128)}


@pytest.mark.parametrize('quick', [False, True])
def test_sweep_has_every_recipe_architecture_and_seed(quick):
  arg = c10.make_arg(seeds=3, num_steps=c10.QUICK_STEPS if quick
                     else c10.NUM_STEPS, quick=quick, data_dir='/tfds')
  points = c10.sw.expand(c10.get_sweep(arg))
  assert len(points) == 2 * 2 * 3
  seen = set()
  for p in points:
    c, v = p.config, p.values
    arch = c10.arch_of(v['model.name'])
    seen.add((v['variant'], arch, v['seed']))
    assert recipe_of(c) == IMAGE_RECIPES[v['variant']], p.name
    assert (c.dataset, c.data.source, c.data.dir, c.model.name, c.seed) == (
        'tfds:cifar10', 'tfds', '/tfds', ARCHS[arch][0], v['seed'])
    if quick:
      assert (c.num_steps, c.batch_size, c.model.z_dim) == (2, 8, 16)
      assert (c.model.g_width, c.model.d_width) == {
          'cnn': (16, 8), 'resnet': (8, 8)}[arch]
    else:
      assert (c.num_steps, c.batch_size, c.model.z_dim, c.model.packing,
              c.ema_decay) == (100_000, 64, 128, 1, 0.0)
      assert (c.model.name, c.model.g_width, c.model.d_width) == ARCHS[arch]
      assert (c.model.conv_impl, c.loop_impl) == ('auto', 'auto')
  assert len(seen) == 12


def test_sweep_argument_and_flags_are_checked():
  for kw in (dict(), dict(archs=('resnet',), recipes=('wgan_gp',), seeds=4,
                          num_steps=9, quick=True, data_dir='/a,b')):
    arg = c10.make_arg(**kw)
    assert c10.parse_arg(arg) == (
        kw.get('archs', tuple(c10.ARCHS)),
        kw.get('recipes', ('sngan', 'wgan_gp')), kw.get('seeds', 3),
        kw.get('num_steps', c10.NUM_STEPS), kw.get('quick', False),
        kw.get('data_dir', ''))
  for bad in ('cnn,recipes=sngan,seeds=1,steps=1',
              'vgg,recipes=sngan,seeds=1,steps=1,data=',
              'cnn,recipes=hinge,seeds=1,steps=1,data=',
              'cnn,recipes=sngan,seeds=0,steps=1,data='):
    with pytest.raises(ValueError, match='sweep argument'):
      c10.parse_arg(bad)
  checks = dict(archs=['cnn'], recipes=['sngan'], seeds=1, num_steps=None,
                eval_protocol='10k_5k', inception_path='', time_steps=0,
                parallel=1, quick=False)
  c10.check_flags(**checks)
  for change, flag in ((dict(archs=['vgg']), '--archs'),
                       (dict(recipes=['sngan', 'sngan']), '--recipes'),
                       (dict(eval_protocol='5k'), '--eval_protocol'),
                       (dict(seeds=0), '--seeds'),
                       (dict(num_steps=0), '--num_steps'),
                       (dict(time_steps=-1), '--time_steps'),
                       (dict(parallel=2, quick=True), '--parallel'),
                       (dict(inception_path='/no/such.npz'),
                        '--inception_path')):
    with pytest.raises(ValueError, match=f'^{flag}: '):
      c10.check_flags(**{**checks, **change})
  assert c10.PROTOCOLS == {'10k_5k': (10_000, 5_000),
                           '50k_50k': (50_000, 50_000)}


def test_time_estimate():
  assert c10.estimate_hours(5384.5, 100_000, 1) == pytest.approx(149.57, 1e-3)
  text = c10.cost_table(archs=('cnn', 'resnet'), recipes=('sngan', 'wgan_gp'),
                        seeds=2, num_steps=100_000, protocol_name='50k_50k',
                        measured={('sngan', 'cnn'): 36.0}, device='gpu',
                        quick=False)
  lines = text.splitlines()
  cnn_sngan = next(l for l in lines if l.startswith('| SN-GAN | standard CNN'))
  assert cnn_sngan == '| SN-GAN | standard CNN | 3,041 | 169 | 36.0 | 2.00 |'
  resnet_wgan = next(l for l in lines if l.startswith('| WGAN-GP | ResNet'))
  assert 'not measured | — | not measured' in resnet_wgan
  assert '50,000 samples per run and 50,000 real images once' in text


def test_time_train_step_times_a_step():
  from experiments.configs import mog
  config = mog.get_config('nonsaturating')
  config.batch_size = 16
  ms = c10.time_train_step(config, 2, data_shape=(2,))
  assert math.isfinite(ms) and ms > 0


def test_refuses_to_run_without_cifar10(tmp_path):
  empty = tmp_path / 'tfds'
  empty.mkdir()
  proc = run_python(['-m', 'experiments.reproduce.cifar10',
                     f'--workdir={tmp_path / "wd"}', f'--data_dir={empty}',
                     '--seeds=1'], timeout=120, check=False)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'no prepared CIFAR-10 TFDS dataset' in proc.stderr
  assert 'Nothing was trained and no number is claimed' in proc.stderr
  assert not (tmp_path / 'wd' / 'runs').exists()


def test_quick_run_writes_the_table(tmp_path):
  out = tmp_path / 'out'
  proc = run_python(['-m', 'experiments.reproduce.cifar10', '--quick',
                     '--seeds=2', f'--workdir={tmp_path / "wd"}',
                     f'--out={out}'], timeout=300)
  text = (out / 'cifar10.md').read_text()
  assert text in proc.stdout
  assert 'FID/KID skipped: no --inception_path' in proc.stdout
  with open(out / 'cifar10.csv') as f:
    rows = list(csv.DictReader(f))
  assert {(r['variant'], r['arch'], r['seed']) for r in rows} == {
      (v, a, s) for v in ('sngan', 'wgan_gp') for a in ('cnn', 'resnet')
      for s in ('0', '1')}
  for r in rows:
    assert (r['status'], r['step'], r['num_real'], r['num_fake']) == (
        'ok', '2', '16', '16')
    assert math.isnan(float(r['fid'])) and math.isnan(float(r['kid']))
    assert math.isfinite(float(r['diversity'])) and float(r['diversity']) >= 0
  with open(out / 'summary.csv') as f:
    summary = list(csv.DictReader(f))
  assert [(s['arch'], s['recipe']) for s in summary] == [
      (a, m) for a in ('cnn', 'resnet') for m in ('SN-GAN', 'WGAN-GP')]
  for s in summary:  # mean +- s.e. over the two seeds of the per-run rows
    assert_mean_se(s, 'diversity', [
        float(r['diversity']) for r in rows
        if (r['arch'], r['recipe']) == (s['arch'], s['recipe'])], atol=1e-15)
    assert s['seeds'] == s['ok'] == '2'
    section = text.split('### ' + c10.ARCHS[s['arch']][0])[1]
    line = next(l for l in section.splitlines()
                if l.startswith(f"| {s['recipe']} | "))
    assert line.startswith(f"| {s['recipe']} | skipped (no --inception_path) "
                           '| skipped (no --inception_path) | n/a | ')
    assert line.endswith('| ours, 2 seeds |')
  assert '| SN-GANs, hinge (Eq. 17) | 21.7 ± .21 | | 8.22 ± .05 |' in text
  assert '| SN-GAN | standard CNN | 3,041 | 169 | not measured' in text
  assert 'QUICK CHECK' in text and '### Time estimate' in text
