"""experiments/bench/train_steps.py: the --quick benchmark on tiny cases, in a
subprocess (JAX and, when installed, PyTorch), and without torch."""

from __future__ import annotations

import math

from conftest import run_python

CASES = ('mog_wgan_gp', 'dcgan28_sngan')
FLAGS = ['--quick', '--steps=3', '--rounds=1', '--image_width=8',
         '--image_batch=8', '--matmul_size=512', '--noconv_table']
ARGS = ['-m', 'experiments.bench.train_steps'] + FLAGS


def _torch_available() -> bool:
  try:
    import torch  # pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    return False
  return True


def _rows(report: str) -> dict[str, list[str]]:
  """Cells of the main table's rows, by case name."""
  section = report.split('## Train step', 1)[1].split('\n\n', 2)[1]
  rows = {}
  for line in section.splitlines()[2:]:
    cells = [c.strip() for c in line.strip().strip('|').split('|')]
    rows[cells[0]] = cells
  return rows


def _number(cell: str) -> float:
  value = float(cell.split()[0].replace(',', ''))
  assert math.isfinite(value), cell
  return value


def _check(rows, cases, with_torch: bool):
  assert sorted(rows) == sorted(cases)
  for name, c in rows.items():
    # case, model, params JAX, params torch, batch, n_critic, JAX ms, torch ms,
    # ratio, compile s, peak MiB, GFLOP/step, GFLOP/s, % peak, fwd diff
    assert len(c) == 15, c
    for i in (4, 5, 6, 9, 10, 11, 12, 13):
      assert _number(c[i]) >= 0, (name, i, c)
    assert _number(c[6]) > 0 and _number(c[11]) > 0
    jax_g, jax_d = (int(x.replace(',', '')) for x in c[2].split('/'))
    assert jax_g > 0 and jax_d > 0
    if with_torch:
      assert c[3] == c[2], f'{name}: parameter counts JAX {c[2]} vs torch {c[3]}'
      assert _number(c[7]) > 0 and _number(c[8]) > 0
      assert max(_number(x) for x in c[14].split('/')) < 1e-4, c[14]
    else:
      assert c[3] == c[7] == c[8] == c[14] == 'n/a', c


def test_quick_benchmark(tmp_path):
  out = tmp_path / 'bench.md'
  proc = run_python(ARGS + [f'--only={",".join(CASES)}', f'--out={out}'],
                    timeout=240)
  report = out.read_text()
  assert report in proc.stdout
  assert 'matmul peak' in report and 'GFLOP/s' in report
  _check(_rows(report), CASES, _torch_available())
  assert 'g_width 8, d_width 8' in report and '| 8 | 5 |' in report


def test_without_torch(tmp_path):
  """The torch part is skipped cleanly when torch cannot be imported."""
  if not _torch_available():
    return  # test_quick_benchmark already ran without torch
  out = tmp_path / 'bench.md'
  code = ('import sys; sys.modules["torch"] = None; '
          'sys.argv = ["train_steps"] + sys.argv[1:]; '
          'from absl import app; from experiments.bench import train_steps; '
          'app.run(train_steps.main)')
  run_python(['-c', code] + FLAGS + ['--only=mog_vanilla', '--steps=2',
                                     f'--out={out}'], timeout=120)
  report = out.read_text()
  assert 'torch not available' in report
  _check(_rows(report), ('mog_vanilla',), with_torch=False)
  # mog_vanilla is one of YNN_CASES: the table of XLA's default vs 'auto'.
  section = report.split('## cpu_ynn_fusions', 1)[1].split('\n\n')[1]
  cells = [[c.strip() for c in line.strip('|').split('|')]
           for line in section.splitlines()[2:]]
  assert [(c[0], c[1]) for c in cells] == [('mog_vanilla', 'xla'),
                                           ('mog_vanilla', 'auto')]
  assert _number(cells[0][3].rstrip('x')) == 1.0
  assert _number(cells[1][2]) > 0 and _number(cells[1][3].rstrip('x')) > 0
