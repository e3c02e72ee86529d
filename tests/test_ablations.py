"""The ablation sweep specs of ``experiments/ablations/`` (``stabilisers.py``,
``sensitivity.py``) expand, and every point's config validates (nothing is
trained here; the ``*_smoke`` variants run them: see the modules'
docstrings)."""

import pytest

from experiments.ablations import mog_grid, stabilisers
from gan_stability import config as config_lib
from gan_stability.sweep import runner, spec as sw

SPEC = 'experiments/ablations/stabilisers.py'
DATA = ['data.dir=/nonexistent/fashion-mnist']  # validation does not read it


def _load(variant, overrides=()):
  _, points, units, _ = runner.load(f'{SPEC}:{variant}', list(overrides))
  for p in points:  # expand validated them; once more, explicitly
    config_lib.validate(p.config, num_devices=1)
  return points, units


def _by_row(points):
  return {p.values['stabiliser']: p.config for p in points if p.seed == 0}


def test_mog_rows_are_the_baseline_plus_one_stabiliser():
  points, units = _load('mog')
  assert len(points) == 2 * 12 * 10 and len(units) == 24
  assert all(len(u.points) == 10 for u in units)  # seeds vmapped
  assert {p.config.dataset for p in points} == {'ring', 'grid'}
  assert points[0].name == 'dataset=ring,stabiliser=baseline,seed=0'
  rows = _by_row([p for p in points if p.config.dataset == 'grid'])
  assert list(rows) == list(stabilisers.MOG_ROWS)
  base = config_lib.flatten(rows['baseline'])
  for field, value in mog_grid.BUDGET.items():
    assert base[field] == value, field
  assert base['n_critic'] == 1 and base['loss'] == 'nonsaturating'
  for name, c in rows.items():
    changed = config_lib.diff(base, config_lib.flatten(c))
    row = stabilisers.MOG_ROWS[name]
    assert changed == sorted(f for f, v in row.items() if base[f] != v), name
    assert bool(changed) == (name != 'baseline'), name
  assert rows['instance_noise'].instance_noise_steps == 1500
  # Lazy R1: the same weight (the library scales by penalty_every itself).
  assert rows['r1_lazy'].penalty_weight == rows['r1'].penalty_weight == 0.1
  assert rows['r1_lazy'].penalty_every == 4
  assert (rows['dragan'].penalty_weight, rows['dragan'].dragan_c) == (10, 0.5)
  assert rows['consensus'].consensus_gamma == 10.0


def test_image_variants_expand_and_validate():
  points, units = _load('fmnist', DATA)
  assert len(points) == 13 * 3 and len(units) == 13
  rows = _by_row(points)
  assert list(rows) == list(stabilisers.FMNIST_ROWS)
  base = config_lib.flatten(rows['baseline'])
  assert base['dataset'] == 'fashion_mnist' and base['loss'] == 'nonsaturating'
  assert base['data.dir'] == DATA[0].split('=')[1]
  assert base['eval.metrics'] == 'cfid,ckid'
  assert base['eval.features'] == 'classifier'
  for name, c in rows.items():
    changed = config_lib.diff(base, config_lib.flatten(c))
    row = stabilisers.FMNIST_ROWS[name]
    assert changed == sorted(f for f, v in row.items() if base[f] != v), name
    assert bool(changed) == (name != 'baseline'), name
  assert rows['r1_lazy'].penalty_weight == rows['r1'].penalty_weight
  assert rows['r1_lazy'].penalty_every == 16
  assert rows['ada'].ada_kimg == 20.0
  assert rows['instance_noise'].instance_noise_steps == (
      stabilisers.FMNIST_STEPS // 2)

  points, units = _load('data_efficiency', DATA)
  assert len(points) == 2 * 3 * 3 and len(units) == 6
  assert {(p.config.data.num_examples, p.values['stabiliser'])
          for p in points} == {(n, r) for n in (6000, 600)
                               for r in ('baseline', 'diffaugment', 'ada')}
  assert all(p.config.num_steps == stabilisers.FMNIST_STEPS for p in points)


@pytest.mark.parametrize('variant, n', [('mog_smoke', 48),
                                        ('fmnist_smoke', 26),
                                        ('data_efficiency_smoke', 12)])
def test_smoke_variants_are_small(variant, n):
  points, _ = _load(variant, [] if variant.startswith('mog') else DATA)
  assert len(points) == n
  assert all(p.config.num_steps <= 20 for p in points)
  assert {p.seed for p in points} == {0, 1}


def test_unknown_variant():
  with pytest.raises(sw.SweepError, match="unknown variant 'bogus'"):
    runner.load(f'{SPEC}:bogus')


def test_sensitivity_variants_are_one_program_per_dataset():
  """experiments/ablations/sensitivity.py: 11 weights x 10 seeds vmapped
  into one unit per dataset, on the quick start's budget and recipes."""
  from experiments.ablations import sensitivity  # pylint: disable=g-import-not-at-top
  from experiments.configs import mog  # pylint: disable=g-import-not-at-top
  for variant, loss, penalty, n_critic in (
      ('wgan_gp_lambda', 'wasserstein', 'gp', 5),
      ('r1_gamma', 'nonsaturating', 'r1', 1)):
    _, points, units, _ = runner.load(
        f'experiments/ablations/sensitivity.py:{variant}', [])
    assert len(points) == 2 * 11 * 10 and len(units) == 2
    for unit in units:
      assert len(unit.points) == 110
      assert len({p.config.dataset for p in unit.points}) == 1
      assert sorted({p.config.penalty_weight for p in unit.points}) == list(
          sensitivity.WEIGHTS)
    base = config_lib.flatten(points[0].config)
    for field, value in mog.CPU_BUDGET.items():
      assert base[field] == value, (variant, field)
    assert (base['loss'], base['penalty'], base['n_critic']) == (
        loss, penalty, n_critic), variant
    config_lib.validate(points[-1].config, num_devices=1)
  _, points, units, _ = runner.load(
      'experiments/ablations/sensitivity.py:r1_gamma_smoke', [])
  assert len(points) == 2 * 3 * 2 and len(units) == 2
  with pytest.raises(ValueError, match='unknown variant'):
    sensitivity.get_sweep('gamma')
