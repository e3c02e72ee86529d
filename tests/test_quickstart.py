"""The main job end to end on a tiny budget: per-run results, aggregation, files."""

import csv
import math
import os

import numpy as np

from experiments import quickstart


def test_mean_se():
  m, se = quickstart.mean_se([1.0, 2.0, 6.0])
  assert m == 3.0
  assert se == np.std([1, 2, 6], ddof=1) / math.sqrt(3)


def test_quickstart_tiny(tmp_path, monkeypatch, capsys):
  monkeypatch.setattr(quickstart, 'VARIANTS', ('vanilla', 'sngan'))
  monkeypatch.setattr(quickstart, 'DATASETS', ('ring',))
  wd = str(tmp_path)
  rows = quickstart.run(wd, seeds=2, num_steps=4)
  assert len(rows) == 4 and all(r['steps'] == 4 for r in rows)
  out = capsys.readouterr().out
  assert 'PacGAN Table 1' in out and 'sngan (ours, 2 seeds)' in out
  for name in ('results.md', 'results.csv', 'summary.csv', 'final_samples.png'):
    assert os.path.getsize(os.path.join(wd, name)) > 0
  per_run = list(csv.DictReader(open(os.path.join(wd, 'results.csv'))))
  summary = list(csv.DictReader(open(os.path.join(wd, 'summary.csv'))))
  for s in summary:
    sel = [float(r['high_quality']) for r in per_run if r['variant'] == s['variant']]
    assert float(s['high_quality']) == np.mean(sel)
    assert float(s['high_quality_se']) == np.std(sel, ddof=1) / math.sqrt(2)
  # Each per-run number is the final evaluation written by that run.
  import json
  for r in per_run:
    last = [json.loads(l) for l in open(os.path.join(
        wd, 'runs', f"ring_{r['variant']}_seed{r['seed']}", 'metrics.jsonl'))][-1]
    assert last['modes'] == int(r['modes'])
    assert last['high_quality'] == float(r['high_quality'])
  # A second invocation reuses the finished runs (resume) with equal results.
  rows2 = quickstart.run(wd, seeds=2, num_steps=4)
  assert [r['modes'] for r in rows2] == [r['modes'] for r in rows]
