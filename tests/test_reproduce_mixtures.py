"""experiments/reproduce/mixtures.py --quick: the PacGAN 2-D protocol end to
end (sweep of vmapped seeds, table beside the published rows, CSV, figure)."""

import csv
import math

import pytest

from conftest import assert_mean_se, run_python

from experiments.reproduce import mixtures


def test_sweep_has_every_method_dataset_and_seed():
  points = mixtures.sw.expand(mixtures.get_sweep('pacgan'))
  assert len(points) == 6 * 2 * 10
  c = {(p.values['variant'], p.values['model.packing']): p.config for p in points}
  assert c[('nonsaturating', 2)].model.packing == 2
  assert c[('wgan_gp_toy', 1)].penalty_weight == 0.1
  assert c[('hinge_r1', 1)].loss == 'hinge'
  for config in c.values():
    assert (config.model.g_hidden, config.model.g_layers, config.model.g_norm,
            config.model.d_hidden, config.model.d_layers, config.model.d_maxout) == (
                400, 4, 'batch', 200, 3, 5)
    assert (config.num_steps, config.batch_size, config.eval_samples,
            config.optimizer.g_lr) == (3000, 64, 2500, 1e-3)


def test_sweep_argument_round_trips_and_rejects_bad_values():
  for kw in (dict(), dict(quick=True), dict(seeds=5, datasets=('grid',)),
             dict(quick=True, seeds=2, datasets=('ring', 'grid'))):
    arg = mixtures.make_arg('pacgan', **kw)
    want = ('pacgan', kw.get('quick', False), kw.get('seeds', 10),
            tuple(kw.get('datasets', mixtures.DATASETS)))
    assert mixtures.parse_arg(arg) == want, arg
  assert mixtures.make_arg('ours') == 'ours'
  assert len(mixtures.sw.expand(mixtures.get_sweep('ours,quick,seeds=3,datasets=grid'))) == 18
  for bad in ('veegan', 'ours,fast', 'ours,seeds=0', 'ours,datasets=ring+moon'):
    with pytest.raises(ValueError, match='sweep argument'):
      mixtures.parse_arg(bad)
  assert mixtures.parse_seeds(['7'], ['ours', 'pacgan']) == {'ours': 7, 'pacgan': 7}
  assert mixtures.parse_seeds(['ours=10', 'pacgan=5'], ['ours', 'pacgan']) == {
      'ours': 10, 'pacgan': 5}
  for bad in (['ours=10'], ['0'], ['ours=x', 'pacgan=1']):
    with pytest.raises(ValueError, match='--seeds'):
      mixtures.parse_seeds(bad, ['ours', 'pacgan'])


def test_quick_run_writes_the_table(tmp_path):
  out = tmp_path / 'out'
  proc = run_python(['-m', 'experiments.reproduce.mixtures', '--quick',
                     '--seeds=2', '--archs=pacgan', '--datasets=ring',
                     f'--workdir={tmp_path / "wd"}', f'--out={out}'], timeout=300)
  table = (out / 'mixtures.md').read_text()
  assert table in proc.stdout
  assert (out / 'mixtures.png').stat().st_size > 10_000
  with open(out / 'mixtures.csv') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 6 * 2
  for r in rows:
    assert r['arch'] == 'pacgan' and r['dataset'] == 'ring' and r['status'] == 'ok'
    assert r['step'] == '20'
    modes, hq, kl = float(r['modes']), float(r['high_quality']), float(r['kl'])
    assert modes in range(9) and 0 <= hq <= 100 and kl >= 0 and math.isfinite(kl)
  with open(out / 'summary.csv') as f:
    summary = list(csv.DictReader(f))
  assert [s['method'] for s in summary] == [m[0] for m in mixtures.METHODS]
  for s in summary:  # mean +- s.e. over the two seeds of the per-run rows
    assert_mean_se(s, 'kl', [float(r['kl']) for r in rows
                             if r['method'] == s['method']], rtol=1e-6)
    line = next(l for l in table.splitlines() if l.startswith(f"| {s['method']} | pacgan"))
    assert f"{float(s['kl']):.2f} ± {float(s['kl_se']):.2f}" in line
  assert '| PacGAN2 | theirs | 7.9 ± 0.1 |' in table
  assert '### grid' not in table
