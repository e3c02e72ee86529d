"""Golden runs: the training commands recorded before the structural redesign
(``tests/golden/runs.py``) reproduce their ``metrics.jsonl``, ``config.json``
and every leaf of the final checkpoint bit for bit, uninterrupted, after a
SIGKILL and resume, and resumed from a workdir written by the previous
release.

Bitwise equality holds for the software and processor the goldens were
written on (their ``env`` entry); elsewhere XLA may round differently, and
these tests skip.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import pytest

from gan_stability.sweep import runner, spec
from gan_stability.train import train_and_evaluate

from conftest import REPO, subprocess_env

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'golden'))
import runs  # pylint: disable=g-import-not-at-top,wrong-import-position

GOLDEN_DIR = os.path.join(os.path.dirname(__file__), 'golden')


def _same_environment(case: str) -> bool:
  recorded = json.loads(str(runs.golden(case)['env']))
  here = json.loads(runs.environment())
  return all(recorded[k] == here[k] for k in ('jax', 'jaxlib', 'cpu',
                                              'cpu_flags'))


@pytest.fixture(scope='module')
def idx(tmp_path_factory):
  return runs.idx_dir(str(tmp_path_factory.mktemp('golden_idx')))


def _skip_unless_same_environment(case):
  if not _same_environment(case):
    pytest.skip(f'golden {case} was written with other jax/jaxlib or another '
                'CPU; bitwise equality is not expected here')


def _config(case: str, idx: str):
  """The config the case's ``experiments.train`` command line builds."""
  _, args = runs.CASES[case]
  return spec.config_from_args([a.replace('{IDX}', idx) for a in args])


def _run_in_process(case: str, workdir: str, idx: str) -> None:
  module, args = runs.CASES[case]
  if module == 'experiments.train':
    train_and_evaluate(_config(case, idx), workdir)
    return
  (sweep_arg,) = [a[len('--sweep='):] for a in args]
  _, _, units, _ = runner.load(sweep_arg)
  for unit in units:
    runner.run_unit(workdir, unit, quiet=True)


def _assert_golden(case: str, workdir: str, idx: str) -> None:
  bad = runs.compare(case, runs.outputs(case, workdir, idx), runs.golden(case))
  assert not bad, f'{case}: not reproduced bit for bit: {bad}'


def _records(workdir: str) -> int:
  """metrics.jsonl records written so far by all the runs of a case."""
  dirs = [workdir]
  runs_dir = os.path.join(workdir, 'runs')
  if os.path.isdir(runs_dir):
    dirs += [os.path.join(runs_dir, r) for r in os.listdir(runs_dir)]
  total = 0
  for d in dirs:
    path = os.path.join(d, 'metrics.jsonl')
    if os.path.exists(path):
      with open(path) as f:
        total += sum(1 for line in f if line.strip())
  return total


def _kill_mid_run(case: str, workdir: str, idx: str, after: int) -> None:
  """Runs the case's command in a subprocess and SIGKILLs it once its runs
  have written ``after`` records."""
  proc = subprocess.Popen(runs.command(case, workdir, idx), cwd=REPO,
                          env=subprocess_env(1), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
  deadline = time.time() + 240
  try:
    while proc.poll() is None and _records(workdir) < after:
      assert time.time() < deadline, 'the run did not reach its kill point'
      time.sleep(0.005)
  finally:
    if proc.poll() is None:
      os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
  assert proc.returncode == -signal.SIGKILL, 'killed too late: the run ended'


# How many metrics.jsonl records (of all its runs) a case's command writes
# before it is killed, for the kinds of run the SIGKILL tests of
# test_reliability.py do not cover (a MoG GAN, an image GAN with EMA).
KILL_AFTER = {'image_cond': 1, 'vae_cond': 1, 'seeds3': 4}


@pytest.mark.parametrize('case', list(runs.CASES))
def test_golden_run_is_reproduced(case, idx, tmp_path):
  """The case's command reproduces the golden uninterrupted; for the cases
  of :data:`KILL_AFTER` also SIGKILLed mid-run and then run again to the end
  (the compiled programs are reused from the persistent cache)."""
  _skip_unless_same_environment(case)
  wd = str(tmp_path / case)
  _run_in_process(case, wd, idx)
  _assert_golden(case, wd, idx)
  if case in KILL_AFTER:
    killed = str(tmp_path / f'{case}_killed')
    _kill_mid_run(case, killed, idx, KILL_AFTER[case])
    _run_in_process(case, killed, idx)
    _assert_golden(case, killed, idx)


@pytest.mark.parametrize('case', ['mog_wgan_gp', 'vae_cond'])
def test_workdir_of_the_previous_release_resumes(case, idx, tmp_path):
  """``old_workdirs.tar.gz`` holds the case's workdir at half its steps,
  written by the previous release (its config.json, metrics.jsonl and
  checkpoint); the same command resumes it to the golden."""
  _skip_unless_same_environment(case)
  with tarfile.open(os.path.join(GOLDEN_DIR, 'old_workdirs.tar.gz')) as tar:
    tar.extractall(tmp_path, filter='data')
  wd = str(tmp_path / case)
  path = os.path.join(wd, 'config.json')
  with open(path) as f:
    text = f.read()
  with open(path, 'w') as f:
    f.write(text.replace('{IDX}', idx))
  _run_in_process(case, wd, idx)
  _assert_golden(case, wd, idx)
  shutil.rmtree(wd)
