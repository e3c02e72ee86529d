"""Sensitivity curves of a sweep (gan_stability.sweep.sensitivity and
``python -m experiments.sensitivity``), on a sweep directory written by hand:
the curve points are the seeds' mean and standard error computed here, one
panel per dataset, x ascending, diverged seeds left out and counted."""

import json
import math
import os

import pytest

from gan_stability.errors import ConfigError
from gan_stability.sweep import runner, sensitivity

# (dataset, penalty_weight, seed) -> final modes; None: diverged.
FINAL = {('ring', 1.0, 0): 8, ('ring', 1.0, 1): 6,
         ('ring', 0.01, 0): 2, ('ring', 0.01, 1): 4,
         ('grid', 1.0, 0): 20, ('grid', 1.0, 1): None,
         ('grid', 0.01, 0): 10, ('grid', 0.01, 1): 13}


@pytest.fixture
def sweep_dir(tmp_path):
  names = []
  for (data, w, seed), modes in FINAL.items():
    name = f'dataset={data},penalty_weight={w!r},seed={seed}'
    group = f'dataset={data},penalty_weight={w!r}'
    names.append(name)
    d = tmp_path / 'runs' / name
    d.mkdir(parents=True)
    (d / runner.POINT_FILE).write_text(json.dumps({
        'name': name, 'group': group,
        'values': {'dataset': data, 'penalty_weight': w, 'seed': seed}}))
    recs = [{'step': 10, 'modes': 1}]
    recs.append({'step': 20, 'diverged': True} if modes is None else
                {'step': 20, 'modes': modes})
    (d / 'metrics.jsonl').write_text(''.join(json.dumps(r) + '\n'
                                             for r in recs))
    (d / runner.DONE).write_text(json.dumps({
        'status': 'diverged' if modes is None else 'ok', 'final': {}}))
  (tmp_path / runner.SWEEP_FILE).write_text(json.dumps({
      'axes': ['dataset', 'penalty_weight', 'seed'], 'points': names}))
  return str(tmp_path)


def test_curve_points_are_seed_means(sweep_dir, tmp_path):
  out = sensitivity.sensitivity(sweep_dir, 'penalty_weight', 'modes',
                                out_dir=str(tmp_path / 'out'))
  got = [(p['panel'], p['x'], p['mean'], p['se'], p['seeds'], p['diverged'])
         for p in out['points']]
  se = lambda a, b: abs(a - b) / 2  # std (ddof 1) / sqrt(2) of two values
  want = [('dataset=ring', 0.01, 3.0, se(2, 4), 2, 0),
          ('dataset=ring', 1.0, 7.0, se(8, 6), 2, 0),
          ('dataset=grid', 0.01, 11.5, se(10, 13), 2, 0),
          ('dataset=grid', 1.0, 20.0, math.nan, 1, 1)]
  assert [g[:2] for g in got] == [w[:2] for w in want]
  for g, w in zip(got, want):
    assert g[2] == pytest.approx(w[2])
    assert (math.isnan(g[3]) and math.isnan(w[3])) or g[3] == pytest.approx(
        w[3])
    assert g[4:] == w[4:]
  assert '| dataset=grid | all | 11.5 ± 1.5 | 20.0 (1 div.) |' in out[
      'markdown']
  assert [os.path.basename(f) for f in out['files']] == [
      'sensitivity_penalty_weight_modes.csv',
      'sensitivity_penalty_weight_modes.md',
      'sensitivity_penalty_weight_modes.png']
  best = sensitivity.sensitivity(sweep_dir, 'penalty_weight', 'modes',
                                 out_dir=str(tmp_path / 'out'), which='best',
                                 plots=False)
  assert best['points'][0]['mean'] == 3.0  # best = final here (1 < all)


def test_bad_axis_metric_and_which(sweep_dir):
  with pytest.raises(ConfigError, match=r"^--axis: 'seed' is not"):
    sensitivity.sensitivity(sweep_dir, 'seed', 'modes', plots=False)
  with pytest.raises(ConfigError, match=r"^--metric: no run .* 'fid'"):
    sensitivity.sensitivity(sweep_dir, 'penalty_weight', 'fid', plots=False)
  with pytest.raises(ConfigError, match=r'^--which'):
    sensitivity.sensitivity(sweep_dir, 'penalty_weight', 'modes',
                            which='mean', plots=False)
