"""experiments/reproduce/stacked_mnist.py: the sweep (recipes on every point,
the D-capacity axis) and --quick end to end (train, evaluate with the MNIST
classifier, table beside the published rows, CSVs, rerun skips)."""

import csv
import math

import pytest

from conftest import (IMAGE_RECIPES, assert_mean_se, recipe_of, run_python,
                      write_fake_idx)

from experiments.reproduce import stacked_mnist as sm


@pytest.mark.parametrize('quick', [False, True])
def test_sweep_has_every_method_capacity_and_seed(tmp_path, quick):
  data = write_fake_idx(str(tmp_path / 'idx'))
  arg = sm.make_arg(data_dir=data, seeds=2, num_steps=7, quick=quick)
  points = sm.sw.expand(sm.get_sweep(arg))
  assert len(points) == 4 * 2 * 2
  assert sm.get_sweep(arg).seeds_in_one_program is False
  seen = set()
  for p in points:
    c, v = p.config, p.values
    seen.add((sm.method_label(v), sm.capacity_of(v['model.d_width'], quick),
              v['seed']))
    assert recipe_of(c) == IMAGE_RECIPES[v['variant']], p.name
    assert c.model.packing == v['model.packing'] == (
        2 if sm.method_label(v) == 'PacDCGAN2' else 1)
    assert (c.dataset, c.model.name, c.data.dir, c.num_steps, c.seed) == (
        'stacked_mnist', 'dcgan', data, 7, v['seed'])
    if quick:
      assert (c.model.g_width, c.batch_size, c.eval.metrics) == (8, 8, '')
      assert c.model.d_width in (2, 4)
    else:
      assert (c.model.g_width, c.model.z_dim, c.batch_size, c.eval.metrics,
              c.data.stacked_num_examples) == (64, 100, 64, 'stacked_modes',
                                               128_000)
      assert c.model.d_width in (16, 32)
  assert len(seen) == 16


def test_sweep_argument_round_trips_and_rejects_bad_values(tmp_path):
  for kw in (dict(), dict(quick=True, seeds=5, num_steps=9),
             dict(capacities=('full', 'quarter'))):
    arg = sm.make_arg(data_dir='/d,with:odd=chars', **kw)
    assert sm.parse_arg(arg) == (
        tuple(kw.get('capacities', sm.DEFAULT_CAPACITIES)),
        kw.get('seeds', sm.DEFAULT_SEEDS), kw.get('num_steps', sm.NUM_STEPS),
        kw.get('quick', False), '/d,with:odd=chars')
  for bad in ('quarter,seeds=1,steps=1', 'tiny,seeds=1,steps=1,data=/d',
              'half+half,seeds=1,steps=1,data=/d', 'half,seeds=0,steps=1,data=/d',
              'half,steps=1,data=/d', 'half,seeds=1,steps=1,fast,data=/d'):
    with pytest.raises(ValueError, match='sweep argument'):
      sm.parse_arg(bad)
  checks = dict(capacities=['quarter'], seeds=1, num_steps=None,
                eval_samples=None, parallel=1, data_dir='', quick=True)
  sm.check_flags(**checks)
  for change, flag in ((dict(capacities=['eighth']), '--capacities'),
                       (dict(seeds=0), '--seeds'), (dict(num_steps=0), '--num_steps'),
                       (dict(eval_samples=5), '--eval_samples'),
                       (dict(parallel=0), '--parallel'),
                       (dict(quick=False), '--data_dir'),
                       (dict(data_dir=str(tmp_path)), '--data_dir')):
    with pytest.raises(ValueError, match=f'^{flag}: '):
      sm.check_flags(**{**checks, **change})


def test_quick_run_writes_the_table(tmp_path):
  out, wd = tmp_path / 'out', tmp_path / 'wd'
  args = ['-m', 'experiments.reproduce.stacked_mnist', '--quick', '--seeds=2',
          f'--workdir={wd}', f'--out={out}']
  proc = run_python(args, timeout=300)
  table = (out / 'stacked_mnist.md').read_text()
  assert table in proc.stdout
  with open(out / 'stacked_mnist.csv') as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 4 * 2 * 2
  assert {(r['method'], r['capacity'], r['seed']) for r in rows} == {
      (m[0], c, s) for m in sm.METHODS for c in ('quarter', 'half')
      for s in ('0', '1')}
  for r in rows:
    assert (r['status'], r['step'], r['eval_samples']) == ('ok', '2', '500')
    modes, kl = float(r['modes']), float(r['kl'])
    assert modes.is_integer() and 1 <= modes <= 1000
    assert 0 <= kl <= math.log(1000) + 1e-9
  with open(out / 'summary.csv') as f:
    summary = list(csv.DictReader(f))
  assert [(s['capacity'], s['method']) for s in summary] == [
      (c, m[0]) for c in ('quarter', 'half') for m in sm.METHODS]
  for s in summary:  # mean +- s.e. over the two seeds of the per-run rows
    sel = [r for r in rows if (r['capacity'], r['method']) ==
           (s['capacity'], s['method'])]
    for m in ('modes', 'kl'):
      assert_mean_se(s, m, [float(r[m]) for r in sel])
    assert s['seeds'] == s['ok'] == '2'
    section = table.split('### ' + sm.CAPACITIES[s['capacity']][0])[1]
    line = next(l for l in section.splitlines()
                if l.startswith(f"| {s['method']} | "))
    assert f"{float(s['kl']):.2f} ± {float(s['kl_se']):.2f}" in line
    assert line.endswith('| ours, 2 seeds |')
  assert '### D = 1/4 G (d_width 2, g_width 8)' in table
  assert '| DCGAN | 30.6 ± 20.7 | 5.99 ± 0.42 |' in table  # published
  assert '### D = G' not in table and 'QUICK CHECK' in table
  # A rerun skips the finished runs, reuses their evaluations, same table.
  again = run_python(args, timeout=120)
  assert '0 to run now' in again.stdout
  strip = lambda t: t.split('\nOurs:')[0]
  assert strip((out / 'stacked_mnist.md').read_text()) == strip(table)


def test_bad_flags_fail_before_training(tmp_path):
  proc = run_python(['-m', 'experiments.reproduce.stacked_mnist',
                     f'--workdir={tmp_path}', '--capacities=quarter'],
                    timeout=60, check=False)
  assert proc.returncode == 2
  assert 'error: --data_dir: required' in proc.stderr
  assert not (tmp_path / 'runs').exists()
