"""Ablation sweeps: spec expansion and validation, kill-and-resume of the CLI
sweep (same report as an uninterrupted one), vmapped seeds vs separate runs."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from gan_stability.checkpoint import Checkpointer
from gan_stability.sweep import runner, spec as sw
from gan_stability.train import seeds as seeds_lib, tasks
from gan_stability.train import train_and_evaluate

from conftest import REPO, run_python

SMOKE = 'experiments/configs/mog.py:smoke'


def _grid(**kw):
  return sw.Sweep(
      base=SMOKE,
      axes=sw.product(
          sw.axis('loss', ['nonsaturating', 'hinge', 'wasserstein']),
          sw.zip(sw.axis('penalty', ['none', 'gp', 'r1']),
                 sw.axis('penalty_weight', [0.0, 0.1, 1.0])),
          sw.axis('model.spectral_norm', [False, True]),
          sw.axis('seed', range(4))), **kw)


def test_spec_expansion_product_zip_names_and_shards():
  points = sw.expand(_grid())
  assert len(points) == 3 * 3 * 2 * 4
  # Product order: the last axis varies fastest; zipped axes move together.
  assert points[0].name == ('loss=nonsaturating,penalty=none,'
                            'penalty_weight=0.0,model.spectral_norm=False,seed=0')
  assert points[5].name == ('loss=nonsaturating,penalty=none,'
                            'penalty_weight=0.0,model.spectral_norm=True,seed=1')
  assert points[-1].name == ('loss=wasserstein,penalty=r1,penalty_weight=1.0,'
                             'model.spectral_norm=True,seed=3')
  assert points[-1].group == ('loss=wasserstein,penalty=r1,penalty_weight=1.0,'
                              'model.spectral_norm=True')
  p = points[-1].config
  assert (p.loss, p.penalty, p.penalty_weight, p.model.spectral_norm, p.seed) == (
      'wasserstein', 'r1', 1.0, True, 3)
  assert p.num_steps == 4  # the rest is the base config's
  assert len({q.name for q in points}) == len(points)
  assert sw.expand(_grid())[7].name == points[7].name  # deterministic
  assert len(sw.units(_grid(), points)) == 72
  groups = sw.units(_grid(seeds_in_one_program=True), points)
  assert len(groups) == 18 and all(len(u.points) == 4 for u in groups)
  assert all(len({q.group for q in u.points}) == 1 for u in groups)
  # zip of two axes only; a product of a zip and an axis.
  z = sw.zip(sw.axis('loss', ['hinge', 'wasserstein']), sw.axis('seed', [1, 2]))
  assert [dict(a) for a in z.assignments()] == [
      {'loss': 'hinge', 'seed': 1}, {'loss': 'wasserstein', 'seed': 2}]
  assert len(sw.product(z, sw.axis('n_critic', [1, 5])).assignments()) == 4
  # Shards partition the units, deterministically, for any count.
  names = [u.name for u in groups]
  for n in (1, 2, 3, 5, 7, 18, 25):
    parts = [[u.name for u in sw.shard(groups, i, n)] for i in range(n)]
    flat = [x for part in parts for x in part]
    assert sorted(flat) == sorted(names) and len(flat) == len(names)
    assert parts == [[u.name for u in sw.shard(groups, i, n)] for i in range(n)]
  assert sw.parse_shard('2/5') == (2, 5)
  with pytest.raises(sw.SweepError, match='--shard'):
    sw.parse_shard('5/5')
  # Names are sanitised, readable, and floats keep their value.
  assert sw.point_name({'optimizer.d_lr': 4e-4, 'dataset': 'tfds:a/b c'}) == (
      'optimizer.d_lr=0.0004,dataset=tfds_a_b_c')
  long = sw.point_name({'x': 'y' * 400})
  assert len(long) <= sw.MAX_NAME_LEN and long != sw.point_name({'x': 'y' * 401})
  assert sw.parse_override('optimizer.d_lr=1e-4') == ('optimizer.d_lr', 1e-4)
  assert sw.parse_override('data.dir=/x/y') == ('data.dir', '/x/y')


def test_variant_axis_starts_each_point_from_its_recipe():
  sweep = sw.Sweep(
      base='experiments/configs/mog.py:nonsaturating',
      overrides={'num_steps': 7},
      axes=sw.product(sw.zip(sw.axis('variant', ['vanilla', 'wgan_gp', 'hinge_r1',
                                                 'nonsaturating']),
                             sw.axis('model.packing', [1, 1, 1, 2])),
                      sw.axis('seed', [0, 1])))
  points = sw.expand(sweep)
  assert [p.name for p in points[:2]] == ['variant=vanilla,model.packing=1,seed=0',
                                          'variant=vanilla,model.packing=1,seed=1']
  got = {p.config.variant: (p.config.loss, p.config.penalty, p.config.penalty_weight,
                            p.config.n_critic, p.config.optimizer.b1,
                            p.config.model.packing, p.config.num_steps)
         for p in points}
  assert got == {'vanilla': ('minimax', 'none', 0.0, 1, 0.5, 1, 7),
                 'wgan_gp': ('wasserstein', 'gp', 10.0, 5, 0.0, 1, 7),
                 'hinge_r1': ('hinge', 'r1', 0.1, 1, 0.5, 1, 7),
                 'nonsaturating': ('nonsaturating', 'none', 0.0, 1, 0.5, 2, 7)}
  with pytest.raises(sw.SweepError, match=r"sweep axis 'variant': value 'wgan': "
                     r".*unknown 'wgan'"):
    sw.expand(sw.Sweep(base=SMOKE, axes=sw.axis('variant', ['smoke', 'wgan'])))


@pytest.mark.parametrize('axes, match', [
    (sw.axis('model.spectrl_norm', [False, True]),
     r"sweep axis 'model\.spectrl_norm': config has no field .*did you mean "
     r"\['model\.spectral_norm'"),
    (sw.axis('n_critic', [1, 'five']), r"sweep axis 'n_critic': cannot set"),
    (sw.axis('loss', ['hinge', 'softmax']),
     r"sweep axis 'loss' \(point loss=softmax\): config\.loss: 'softmax' is "
     'not allowed'),
    (sw.axis('optimizer.d_lr', [1e-4, -1.0]), r"sweep axis 'optimizer\.d_lr'"),
    (sw.axis('penalty', ['none', 'gp']),  # gp needs a weight: a zip is missing
     r"sweep axes \['penalty'\] \(point penalty=gp\): config\.penalty_weight"),
    (sw.zip(sw.axis('loss', ['hinge']), sw.axis('seed', [0, 1])),
     r"zip of axes \['loss', 'seed'\]: .*different lengths"),
    (sw.product(sw.axis('seed', [0]), sw.axis('seed', [1])),
     r"sweep axis 'seed': appears in more than one axis"),
])
def test_bad_spec_names_the_axis(axes, match):
  with pytest.raises(sw.SweepError, match=match):
    sw.expand(sw.Sweep(base=SMOKE, axes=axes))


def test_cases_axis_sets_several_fields_per_labelled_point():
  stabiliser = sw.cases('stabiliser', {
      'baseline': {},
      'r1': {'penalty': 'r1', 'penalty_weight': 0.1},
      'noise': {'instance_noise': 0.1, 'instance_noise_steps': 2}})
  sweep = sw.Sweep(base=SMOKE, axes=sw.product(
      sw.zip(stabiliser, sw.axis('model.d_hidden', [8, 16, 32])),
      sw.axis('seed', [0, 1])), seeds_in_one_program=True)
  points = sw.expand(sweep)
  assert [p.name for p in points[:3]] == [
      'stabiliser=baseline,model.d_hidden=8,seed=0',
      'stabiliser=baseline,model.d_hidden=8,seed=1',
      'stabiliser=r1,model.d_hidden=16,seed=0']
  assert points[2].group == 'stabiliser=r1,model.d_hidden=16'
  assert points[2].values == {'stabiliser': 'r1', 'model.d_hidden': 16,
                              'seed': 0}
  assert sweep.axes.fields() == ['stabiliser', 'model.d_hidden', 'seed']
  got = [(p.config.penalty, p.config.penalty_weight, p.config.instance_noise,
          p.config.instance_noise_steps) for p in points[::2]]
  assert got == [('none', 0.0, 0.0, 0), ('r1', 0.1, 0.0, 0),
                 ('none', 0.0, 0.1, 2)]  # the rest: the base config's
  assert len(sw.units(sweep, points)) == 3
  # Errors name the cases and the case.
  bad = [
      (sw.cases('stabiliser', {'a': {'penalty': 'r1', 'penalty_weight': -1}}),
       r"sweep cases 'stabiliser' case 'a' \(point stabiliser=a\): "
       r'config\.penalty_weight: -1\.0 must be >= 0'),
      (sw.cases('stabiliser', {'a': {'penalty': 'r1'}}),
       r"sweep axes \['stabiliser'\] \(point stabiliser=a\): "
       r'config\.penalty_weight: must be > 0 .*comes from the base config: '
       'set it with an axis, a zip, a case or an override'),
      (sw.cases('s', {'a': {'instance_nois': 0.1}}),
       r"sweep cases 's': config has no field 'instance_nois'"),
      (sw.product(sw.cases('s', {'a': {'loss': 'hinge'}}),
                  sw.axis('loss', ['hinge'])),
       r"sweep cases 's': field 'loss' is also an axis"),
      (sw.cases('loss', {'a': {}}), r"sweep cases 'loss': the name is a "
       'config field'),
  ]
  for axes, match in bad:
    with pytest.raises(sw.SweepError, match=match):
      sw.expand(sw.Sweep(base=SMOKE, axes=axes))
  for args, match in ((('seed', {'a': {}}), 'reserved'),
                      (('s', {'a': {'seed': 1}}), "sets 'seed'"),
                      (('s', {}), 'no cases')):
    with pytest.raises(sw.SweepError, match=match):
      sw.cases(*args)


def test_bad_spec_fails_on_the_command_line_before_compiling(tmp_path):
  spec_file = tmp_path / 'bad.py'
  spec_file.write_text(
      'from gan_stability.sweep import spec as sw\n'
      'def get_sweep():\n'
      f'  return sw.Sweep(base={SMOKE!r}, axes=sw.product(\n'
      "      sw.axis('loss', ['hinge']), sw.axis('model.spectrl_norm', [True])))\n")
  t = time.time()
  proc = run_python(['-m', 'experiments.sweep', f'--sweep={spec_file}',
                     f'--workdir={tmp_path / "w"}'], check=False, timeout=120)
  assert proc.returncode == 2, proc.stderr
  assert "error: sweep axis 'model.spectrl_norm'" in proc.stderr
  assert not (tmp_path / 'w').exists()
  print(f'bad spec rejected in {time.time() - t:.1f}s')


TINY = '''
from gan_stability.sweep import spec as sw

def get_sweep():
  return sw.Sweep(
      base='experiments/configs/mog.py:smoke',
      overrides={'num_steps': 8, 'steps_per_dispatch': 2, 'log_every': 2,
                 'eval_every': 4, 'checkpoint_every': 4, 'eval_samples': 128,
                 'write_tensorboard': False, 'write_samples': False},
      axes=sw.product(sw.axis('loss', ['nonsaturating', 'hinge']),
                      sw.axis('model.spectral_norm', [False, True]),
                      sw.axis('seed', [0, 1])),
      seeds_in_one_program=True)
'''


def _env(cache_dir):
  """Subprocess environment; a persistent compilation cache shared by the
  sweeps of one test (a cached executable computes the same bits)."""
  env = dict(os.environ, JAX_PLATFORMS='cpu',
             JAX_COMPILATION_CACHE_DIR=str(cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS='0',
             JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES='0')
  env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
  return env


def _run(args, env, timeout):
  proc = subprocess.run([sys.executable] + args, cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=timeout)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return proc


def _report(workdir, env):
  _run(['-m', 'experiments.report', f'--workdir={workdir}'], env, 120)
  out = os.path.join(workdir, 'report')
  return {f: open(os.path.join(out, f)).read()
          for f in ('runs.csv', 'summary.csv', 'report.md')}


def test_killed_sweep_resumes_to_the_report_of_an_uninterrupted_one(tmp_path):
  """2 losses x 2 SN x 2 seeds (seeds vmapped). Sweep A runs uninterrupted
  with 2 worker processes; sweep B is killed (SIGKILL) as soon as its first
  point is done, then rerun in one process. The reports are identical."""
  spec_file = tmp_path / 'tiny.py'
  spec_file.write_text(TINY)
  a, b = str(tmp_path / 'a'), str(tmp_path / 'b')
  cmd = [sys.executable, '-m', 'experiments.sweep', f'--sweep={spec_file}']
  env = _env(tmp_path / 'jax_cache')
  t = time.time()
  proc = subprocess.Popen(cmd + [f'--workdir={b}'], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          start_new_session=True)
  deadline = time.time() + 150
  while time.time() < deadline and proc.poll() is None and not (
      os.path.isdir(os.path.join(b, 'runs')) and any(
          os.path.exists(os.path.join(b, 'runs', d, runner.DONE))
          for d in os.listdir(os.path.join(b, 'runs')))):
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.wait()
  done = [d for d in os.listdir(os.path.join(b, 'runs'))
          if os.path.exists(os.path.join(b, 'runs', d, runner.DONE))]
  assert 1 <= len(done) < 8, done
  print(f'killed after {time.time() - t:.1f}s with {len(done)}/8 points done')

  again = _run(cmd[1:] + [f'--workdir={b}'], env, 240)
  print(f'resumed after {time.time() - t:.1f}s')
  assert f'{len(done)} skipped' in again.stdout, again.stdout
  dry = _run(cmd[1:] + [f'--workdir={b}', '--dry_run'], env, 60)
  assert dry.stdout.count('\ndone ') == 4, dry.stdout
  print(f'dry run after {time.time() - t:.1f}s')
  full = _run(cmd[1:] + [f'--workdir={a}', '--parallel=2'], env, 240)
  assert 'sweep: finished' in full.stdout and '8 ok' in full.stdout, full.stdout
  assert len(os.listdir(os.path.join(a, 'logs'))) == 4  # one worker per group
  print(f'killed, resumed and uninterrupted sweeps: {time.time() - t:.1f}s')

  report_a, report_b = _report(a, env), _report(b, env)
  assert report_a == report_b
  rows = report_a['runs.csv'].splitlines()
  assert len(rows) == 9 and rows[0].startswith('name,group,loss,')
  summary = report_a['summary.csv'].splitlines()
  assert len(summary) == 5 and 'modes_final_mean' in summary[0]
  for f in ('curves_modes.png', 'heatmap_modes.png'):
    assert os.path.getsize(os.path.join(a, 'report', f)) > 1000
  # Each point's run directory has the single-run layout.
  wd = os.path.join(a, 'runs', 'loss=hinge,model.spectral_norm=True,seed=1')
  cfg = json.load(open(os.path.join(wd, 'config.json')))
  assert (cfg['loss'], cfg['model']['spectral_norm'], cfg['seed']) == (
      'hinge', True, 1)
  assert [json.loads(l)['step'] for l in open(os.path.join(wd, 'metrics.jsonl'))
          ] == [2, 4, 6, 8]
  assert json.load(open(os.path.join(wd, runner.DONE)))['status'] == 'ok'


def test_resume_after_a_kill_during_a_checkpoint_save(tmp_path):
  """A process killed while orbax writes step 4 leaves
  ``4.orbax-checkpoint-tmp``; the resumed run must still save step 4 (it
  used to fail in orbax's background thread and hang)."""
  from experiments.configs import mog
  c = mog.get_config('smoke')
  c.update(num_steps=2, write_tensorboard=False, write_samples=False)
  wd = tmp_path / 'run'
  train_and_evaluate(c, str(wd))
  (wd / 'checkpoints' / '4.orbax-checkpoint-tmp' / 'state').mkdir(parents=True)
  c.num_steps = 4
  assert train_and_evaluate(c, str(wd))['step'] == 4
  assert sorted(os.listdir(wd / 'checkpoints')) == ['2', '4']


def _config():
  """SN + R1 + EMA + n_critic 2: every kind of state the step carries."""
  from experiments.configs import mog
  c = mog.get_config('smoke')
  c.update(loss='hinge', penalty='r1', penalty_weight=0.1, n_critic=2,
           ema_decay=0.9, num_steps=8, steps_per_dispatch=2, log_every=2,
           eval_every=4, checkpoint_every=4, eval_samples=256,
           write_tensorboard=False, write_samples=False)
  c.model.spectral_norm = True
  return c


def _restore(wd, config):
  template = tasks.make_task(config).init_state(jax.random.key(0))
  ckpt = Checkpointer(os.path.join(wd, 'checkpoints'))
  state, meta = ckpt.restore(ckpt.latest_step(), template)
  ckpt.close()
  return state, meta


# vmap turns each matmul into a batched one, which may sum in a different
# order: per step the states differ by ~1e-7 (float32 rounding); spectral-norm
# power iteration amplifies it slowly (~1e-6 after 8 steps, ~1e-3 after 40).
ATOL, RTOL = 1e-5, 1e-4


def test_vmapped_seeds_equal_separate_runs(tmp_path, capsys):
  c = _config()
  seeds = [0, 3]
  sep = [str(tmp_path / f'sep{s}') for s in seeds]
  vm = [str(tmp_path / f'vm{s}') for s in seeds]
  expected = [train_and_evaluate(seeds_lib.seed_config(c, s), wd)
              for s, wd in zip(seeds, sep)]
  got = seeds_lib.train_seeds(c, seeds, vm)
  worst = 0.0
  for s, e, g, wa, wb in zip(seeds, expected, got, sep, vm):
    assert g.pop('status') == 'ok'
    assert set(e) == set(g) and e['step'] == g['step'] == 8
    assert e['modes'] == g['modes'], s
    num = [k for k in sorted(e) if isinstance(e[k], (int, float))]
    np.testing.assert_allclose([e[k] for k in num], [g[k] for k in num],
                               rtol=RTOL, atol=ATOL)
    assert open(os.path.join(wa, 'config.json')).read() == open(
        os.path.join(wb, 'config.json')).read()
    ra = [json.loads(l) for l in open(os.path.join(wa, 'metrics.jsonl'))]
    rb = [json.loads(l) for l in open(os.path.join(wb, 'metrics.jsonl'))]
    assert [sorted(r) for r in ra] == [sorted(r) for r in rb]
    for x, y in zip(ra, rb):
      num = [k for k in sorted(x) if isinstance(x[k], (int, float))]
      np.testing.assert_allclose([x[k] for k in num], [y[k] for k in num],
                                 rtol=RTOL, atol=ATOL)
      assert {k: v for k, v in x.items() if k not in num} == {
          k: v for k, v in y.items() if k not in num}  # e.g. alarms
    (sa, ma), (sb, mb) = _restore(wa, c), _restore(wb, c)
    assert ma == mb and (ma['data'], ma['step']) == ({'index': 16}, 8)
    for x, y in zip(jax.tree.leaves(sa), jax.tree.leaves(sb)):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL,
                                 atol=ATOL)
      worst = max(worst, float(np.max(np.abs(np.asarray(x, np.float64) -
                                             np.asarray(y, np.float64)))))
  with capsys.disabled():
    print(f'\nvmapped vs separate: max |param/state difference| = {worst:.2e}')

  # Resuming the vmapped group continues the same program exactly.
  short = c.copy_and_resolve_references()
  short.num_steps = 4
  part = [str(tmp_path / f'part{s}') for s in seeds]
  seeds_lib.train_seeds(short, seeds, part)
  seeds_lib.train_seeds(c, seeds, part)
  for wa, wb in zip(vm, part):
    assert open(os.path.join(wa, 'metrics.jsonl')).read() == open(
        os.path.join(wb, 'metrics.jsonl')).read()


def test_example_sweeps_expand_and_validate():
  for arg, n in (('experiments/ablations/mog_grid.py', 90),
                 ('experiments/ablations/mog_grid.py:smoke', 36)):
    _, points, units, _ = runner.load(arg)
    assert len(points) == n and len(units) == 18
  _, points, units, _ = runner.load('experiments/ablations/stacked_mnist.py',
                                    ['data.dir=/nonexistent/mnist'])
  assert all(p.config.dataset == 'stacked_mnist' for p in points)
  assert len(units) == len(points)  # conv nets: one seed per program
  with pytest.raises(sw.SweepError, match='data.dir'):
    runner.load('experiments/ablations/stacked_mnist.py')


def test_diverged_seeds_are_results_in_the_runner_and_the_report(tmp_path):
  """Absurd learning rates: every seed of the vmapped group diverges; each
  gets a ``diverged`` record and DONE marker, and the report counts them."""
  from gan_stability.sweep import report
  sweep = sw.Sweep(
      base=SMOKE,
      overrides={'num_steps': 40, 'optimizer.name': 'sgd', 'optimizer.b1': 0.0,
                 'optimizer.g_lr': 1e30, 'optimizer.d_lr': 1e30,
                 'write_tensorboard': False, 'write_samples': False},
      axes=sw.axis('seed', [0, 1]), seeds_in_one_program=True)
  points = sw.expand(sweep)
  (unit,) = sw.units(sweep, points)
  wd = str(tmp_path)
  assert runner.run_unit(wd, unit, quiet=True) == {
      'seed=0': 'diverged', 'seed=1': 'diverged'}
  for p in points:
    d = runner.run_dir(wd, p)
    assert json.load(open(os.path.join(d, runner.DONE)))['status'] == 'diverged'
    last = [json.loads(l) for l in open(os.path.join(d, 'metrics.jsonl'))][-1]
    assert last['diverged'] is True and last['step'] < 40
  assert runner.run_unit(wd, unit) == {'seed=0': 'skipped', 'seed=1': 'skipped'}
  out = report.make_report(wd, plots=False)
  summary = open(os.path.join(wd, 'report', 'summary.csv')).read().splitlines()
  assert len(summary) == 2 and ',2,0,2,nan,' in summary[1]  # seeds, ok, diverged
  assert '0/2 (2 diverged)' in out['markdown']
