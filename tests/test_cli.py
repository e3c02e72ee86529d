"""The command-line contract of experiments/: bad input is one line
``error: <message>`` on stderr naming the flag (or config field) and exit
status 2; a crash keeps its traceback and exits 1; ``--help`` exits 0 and
lists each of the module's own flags with its help on one line.

Cheap by construction: each CLI module runs its cases in one interpreter
(tests/cli_driver.py re-parses the flags and calls ``main`` per case), the
processes run side by side, and a few cases are checked against a real
``python -m`` run (same status, same line). The runs the cases need (a
2-step conditional MNIST run on random IDX digits and a 2-step 2-D run) are
trained once per module, in this process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, subprocess_env, write_fake_idx

DRIVER = os.path.join(REPO, 'tests', 'cli_driver.py')
TIMEOUT_S = 300
MOG = 'experiments/configs/mog.py:smoke'
MNIST = 'experiments/configs/mnist.py:smoke'
SWEEP = 'experiments/ablations/mog_grid.py:smoke'

# (module, args, what the one line must name). Placeholders: {cond} a
# class-conditional image run, {mog} a 2-D run, {data} its IDX folder,
# {file} an existing file, {png} an existing .png, {npy} a .npy of images,
# {tmp} a scratch folder. Every case fails before anything trains.
CASES = [
    # train
    ('train', [], '--config'),
    ('train', [f'--config={MOG}'], '--workdir'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w',
               '--config.no_such_key=1'], '--config.no_such_key'),
    ('train', ['--config=experiments/configs/mog.py:bogus',
               '--workdir={tmp}/w'], '--config=experiments/configs/mog.py'),
    ('train', ['--config=experiments/configs/nope.py:smoke',
               '--workdir={tmp}/w'], '--config=experiments/configs/nope.py'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w',
               '--config.n_critic=0'], 'config.n_critic'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w',
               '--config.batch_size=abc'], '--config.batch_size'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w', '--config.loss=bogus'],
     'config.loss'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w',
               '--config.optimizer.g_lr=-1'], 'config.optimizer.g_lr'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w', 'extra'],
     "unexpected arguments ['extra']"),
    ('train', [f'--config={MOG}', '--workdir={file}'], '--workdir'),
    ('train', [f'--config={MOG}', '--workdir='], '--workdir'),
    ('train', [f'--config={MOG}', '--workdir={tmp}/w', '--num_processes=x'],
     '--num_processes'),
    ('train', [f'--config={MNIST}', '--workdir={tmp}/w',
               '--config.data.dir={tmp}/nodata'], 'config.data.dir'),
    # evaluate
    ('evaluate', [], '--workdir'),
    ('evaluate', ['--workdir={tmp}/nope'], '--workdir'),
    ('evaluate', ['--workdir={data}'], '--workdir'),
    ('evaluate', ['--workdir={cond}', '--step=7'], '--step=7'),
    ('evaluate', ['--workdir={cond}', '--num_samples=0'], '--num_samples'),
    ('evaluate', ['--workdir={cond}', '--metrics=bogus'],
     'config.eval.metrics'),
    ('evaluate', ['--workdir={cond}', '--held_out=bogus'], '--held_out'),
    ('evaluate', ['--workdir={cond}', '--fid_resize=bogus'],
     'config.eval.fid_resize'),
    ('evaluate', ['--workdir={cond}', '--inception_path={tmp}/nope.npz'],
     '--inception_path'),
    ('evaluate', ['--workdir={mog}', '--metrics=fid'], '--metrics'),
    ('evaluate', ['--workdir={mog}', '--held_out=test'], '--held_out'),
    ('evaluate', ['--workdir={cond}', 'extra'],
     "unexpected arguments ['extra']"),
    ('evaluate', ['--workdir={cond}', '--seed=x'], '--seed'),
    # sample
    ('sample', ['--run={tmp}/nope', '--out={tmp}/s.png'], '--run'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--num=0'], '--num'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--class=10'],
     '--class'),
    ('sample', ['--run={mog}', '--out={tmp}/s.png', '--class=3'], '--class'),
    ('sample', ['--run={cond}', '--out={tmp}/s.jpg'], '--out'),
    ('sample', ['--run={cond}', '--out={png}'], '--out'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--step=7'], '--step=7'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--interpolate=1'],
     '--interpolate'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--bogus'],
     "flag 'bogus'"),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', 'extra'],
     "unexpected arguments ['extra']"),
    ('sample', ['--run={cond}'], '--out'),
    ('sample', ['--run={cond}', '--out='], '--out'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--interpolation=cubic'],
     '--interpolation'),
    ('sample', ['--run={cond}', '--out={tmp}/s.png', '--ncols=0'],
     '--ncols'),
    ('sample', ['--run={mog}', '--out={tmp}/pngs'], '--out'),
    # score
    ('score', [], 'inputs A [B]'),
    ('score', ['{npy}', '{npy}', '{npy}'], 'inputs A [B], got 3'),
    ('score', ['{tmp}/nope', '{npy}'], 'A: '),
    ('score', ['{npy}', '{npy}', '--metrics=bogus'], '--metrics'),
    ('score', ['{npy}', '{npy}', '--resize=bogus'], '--resize'),
    ('score', ['{npy}', '{npy}', '--num=0'], '--num'),
    ('score', ['{npy}', '{npy}', '--batch_size=0'], '--batch_size'),
    ('score', ['{npy}', '{npy}'], '--inception_path'),
    ('score', ['{npy}', '{npy}', '--inception_path={tmp}/nope.npz'],
     '--inception_path'),
    ('score', ['data:mnist/test', '{npy}'], '--data_dir'),
    ('score', ['data:mnist/bogus', '{npy}', '--data_dir={data}'],
     'config.data.split'),
    ('score', ['{mog}', '{npy}'], 'A: '),
    ('score', ['{npy}', '{npy}', '--num=x'], '--num'),
    # sweep (--dry_run: nothing would train)
    ('sweep', [], '--sweep'),
    ('sweep', ['--sweep=experiments/ablations/nope.py', '--workdir={tmp}/sw',
               '--dry_run'], '--sweep'),
    ('sweep', ['--sweep=experiments/ablations/mog_grid.py:bogus',
               '--workdir={tmp}/sw', '--dry_run'], '--sweep'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw', '--shard=3/2',
               '--dry_run'], '--shard'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw',
               '--override=no_such=1', '--dry_run'], "override 'no_such'"),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw',
               '--override=n_critic=0', '--dry_run'], 'config.n_critic'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw', '--override=bad',
               '--dry_run'], '--override'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw', '--parallel=0'],
     '--parallel'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw', '--max_units=-1'],
     '--max_units'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw', '--dry_run',
               'extra'], "unexpected arguments ['extra']"),
    ('sweep', [f'--sweep={SWEEP}', '--workdir=', '--dry_run'], '--workdir'),
    ('sweep', [f'--sweep={SWEEP}', '--workdir={file}', '--dry_run'],
     '--workdir'),
    # cas (was: absl's usage text or a traceback)
    ('cas', [], '--out'),
    ('cas', ['--out={tmp}/cas'], '--data_dir'),
    ('cas', ['--out={tmp}/cas', '--data_dir={tmp}/nodata',
             '--run=GAN={cond}'], '--data_dir'),
    ('cas', ['--out={tmp}/cas', '--data_dir={data}', '--run=GAN'], '--run'),
    ('cas', ['--out={tmp}/cas', '--data_dir={data}',
             '--run=GAN={tmp}/nope'], '--run'),
    ('cas', ['--out={tmp}/cas', '--data_dir={data}', '--run=GAN={cond}',
             '--num_train=55'], '--num_train'),
    ('cas', ['--out={tmp}/cas', '--data_dir={data}', '--run=GAN={cond}',
             '--seeds=0'], '--seeds'),
    ('cas', ['--out={file}', '--data_dir={data}', '--run=GAN={cond}'],
     '--out'),
    ('cas', ['--out={tmp}/cas', '--data_dir={data}', '--run=GAN={mog}',
             '--num_train=20'], '--run'),
    ('cas', ['--out={tmp}/cas', 'extra'], "unexpected arguments ['extra']"),
    # bench/train_steps (was: absl's usage text)
    ('bench.train_steps', ['--only=bogus'], '--only'),
    ('bench.train_steps', ['--rounds=0'], '--rounds'),
    ('bench.train_steps', ['--steps=-1'], '--steps'),
    ('bench.train_steps', ['extra'], "unexpected arguments ['extra']"),
]
HELP_MODULES = ('train', 'evaluate', 'sample', 'score', 'sweep')
# Cases also run as real ``python -m`` processes: same status, same line
# (--help: same text).
REAL = [('sample', ['--run={cond}', '--out={tmp}/s.png', '--num=0']),
        ('train', [f'--config={MOG}', '--workdir={tmp}/w',
                   '--config.n_critic=0']),
        ('sweep', [f'--sweep={SWEEP}', '--workdir={tmp}/sw',
                   '--parallel=0']),
        ('sample', ['--help'])]
CRASH = ('train', [f'--config={MOG}', '--workdir={tmp}/crash'])


def _env() -> dict:
  env = subprocess_env()
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'  # no glog INFO/WARNING lines of XLA
  return env


def _start(args: list[str], stdin: str | None = None) -> subprocess.Popen:
  proc = subprocess.Popen([sys.executable] + args, cwd=REPO, env=_env(),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
  proc.stdin_text = stdin  # pylint: disable=attribute-defined-outside-init
  return proc


def _finish(proc: subprocess.Popen) -> tuple[int, str, str]:
  try:
    out, err = proc.communicate(proc.stdin_text, timeout=TIMEOUT_S)
  except subprocess.TimeoutExpired:
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f'{proc.args} timed out after {TIMEOUT_S}s:\n{err[-3000:]}')
  return proc.returncode, out, err


def _fill(args: list[str], paths: dict) -> list[str]:
  return [a.format(**paths) for a in args]


def _needs_runs(args: list[str]) -> bool:
  return any('{cond}' in a or '{mog}' in a for a in args)


def _train_runs(p: dict) -> None:
  """The two runs of the cases, 2 steps each, in this process."""
  from experiments.configs import mnist, mog  # pylint: disable=g-import-not-at-top
  from gan_stability.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  cond = mnist.get_config('smoke_cond')
  cond.data.dir = p['data']
  points = mog.get_config('smoke')
  for config, workdir in ((cond, p['cond']), (points, p['mog'])):
    config.num_steps = 2
    config.write_tensorboard = False
    train_and_evaluate(config, workdir)


@pytest.fixture(scope='module')
def paths(tmp_path_factory):
  """The placeholders of CASES (the runs are trained by ``results``)."""
  tmp = tmp_path_factory.mktemp('cli')
  p = {'tmp': str(tmp), 'data': write_fake_idx(str(tmp / 'data')),
       'cond': str(tmp / 'cond'), 'mog': str(tmp / 'mog'),
       'file': str(tmp / 'file.txt'), 'png': str(tmp / 'exists.png'),
       'npy': str(tmp / 'images.npy')}
  with open(p['file'], 'w') as f:
    f.write('not a directory\n')
  with open(p['png'], 'wb') as f:
    f.write(b'')
  np.save(p['npy'], np.random.default_rng(0).integers(
      0, 256, (8, 28, 28, 1), dtype=np.uint8))
  return p


@pytest.fixture(scope='module')
def results(paths):
  """``{'driver': {module: [result per case of CASES, then --help]},
  'real': [(status, stdout, stderr) per REAL], 'crash': (...)}``. What
  needs no run starts at once, beside the training of the runs here; the
  rest after it; all side by side."""
  by_module, needs = {}, set()
  for module, args, _ in CASES:
    by_module.setdefault(module, []).append(_fill(args, paths))
    if _needs_runs(args):
      needs.add(module)
  for module in HELP_MODULES:
    by_module[module].append(['--help'])

  def start(first: bool) -> tuple[dict, dict]:
    drivers = {m: _start([DRIVER, f'experiments.{m}'], json.dumps(cases))
               for m, cases in by_module.items() if (m in needs) != first}
    real = {i: _start(['-m', f'experiments.{m}'] + _fill(args, paths))
            for i, (m, args) in enumerate(REAL)
            if _needs_runs(args) != first}
    return drivers, real

  drivers, real = start(first=True)
  crash = _start([DRIVER, '--crash', f'experiments.{CRASH[0]}'] +
                 _fill(CRASH[1], paths))
  _train_runs(paths)
  later_drivers, later_real = start(first=False)
  drivers.update(later_drivers)
  real.update(later_real)
  out = {'driver': {}}
  for module, proc in drivers.items():
    status, stdout, err = _finish(proc)
    assert status == 0, err[-3000:]
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert [r['argv'] for r in rows] == by_module[module], err[-3000:]
    out['driver'][module] = rows
  out['real'] = [_finish(real[i]) for i in range(len(REAL))]
  out['crash'] = _finish(crash)
  return out


def _driver_result(results, paths, module, args) -> dict:
  args = _fill(args, paths)
  return next(r for r in results['driver'][module] if r['argv'] == args)


def _one_line(stderr: str) -> str:
  lines = stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith('error: '), stderr[-3000:]
  return lines[0]


@pytest.mark.parametrize('module,args,needle', CASES,
                         ids=[f'{m}-{i}' for i, (m, _, _) in
                              enumerate(CASES)])
def test_bad_input_is_one_line_naming_the_flag(results, paths, module, args,
                                               needle):
  r = _driver_result(results, paths, module, args)
  assert r['status'] == 2, r
  assert needle in _one_line(r['stderr']), (needle, r['stderr'])


def test_cases_cover_the_main_clis():
  counts = {m: sum(c[0] == m for c in CASES) for m in HELP_MODULES}
  assert sum(counts.values()) >= 20 and min(counts.values()) >= 3, counts


@pytest.mark.parametrize('index', range(len(REAL)))
def test_driver_matches_a_real_run(results, paths, index):
  """The driver's status and line (or help text) are those of ``python -m
  MODULE``."""
  module, args = REAL[index]
  status, out, err = results['real'][index]
  r = _driver_result(results, paths, module, args)
  assert status == r['status'], (status, err[-3000:], r)
  if args == ['--help']:
    assert status == 0 and not err.strip(), err[-3000:]
    assert out == r['stdout']
  else:
    assert status == 2
    assert _one_line(err) == _one_line(r['stderr'])


def test_a_crash_keeps_its_traceback_and_exits_1(results):
  status, _, err = results['crash']
  assert status == 1, err[-3000:]
  assert 'Traceback (most recent call last)' in err, err[-3000:]
  assert err.strip().splitlines()[-1] == 'RuntimeError: simulated crash', (
      err[-3000:])
  assert not any(line.startswith('error: ') for line in err.splitlines())


def _own_flags(module: str) -> list[str]:
  """The flags a CLI module defines itself, read from its source."""
  with open(os.path.join(REPO, 'experiments', f'{module}.py')) as f:
    source = f.read()
  return re.findall(r"DEFINE_\w+\(\s*'(\w+)'", source)


@pytest.mark.parametrize('module', HELP_MODULES)
def test_help_lists_each_own_flag_on_one_line(results, module):
  r = results['driver'][module][-1]
  assert r['argv'] == ['--help'] and r['status'] == 0, r
  lines = r['stdout'].splitlines()
  names = _own_flags(module)
  assert len(names) >= 2, names
  for name in names:
    hits = [l for l in lines if re.match(
        rf'\s+--(\[no\])?{name}: \S.{{8,}}', l)]
    assert len(hits) == 1, (name, r['stdout'][-3000:])
