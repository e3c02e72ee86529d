"""The persistent compilation cache every CLI keeps (experiments/entry.py,
issue #27): on by default in the user cache, a second identical run loads
every program instead of compiling it (it writes no new entry), ``off``
turns it off, and a directory that cannot be used never fails a run."""

import os
import subprocess
import sys

import pytest

from conftest import REPO, subprocess_env

TRAIN = ['-m', 'experiments.train',
         '--config=experiments/configs/mog.py:smoke',
         '--config.num_steps=2', '--config.eval_every=2',
         '--config.checkpoint_every=2', '--config.log_every=2',
         '--config.write_tensorboard=False', '--config.write_samples=False']


def _train(workdir, *flags, **env_changes):
  env = subprocess_env()
  for var in ('JAX_COMPILATION_CACHE_DIR', 'GAN_STABILITY_COMPILE_CACHE'):
    env.pop(var, None)
  env.update(env_changes)
  proc = subprocess.run([sys.executable] + TRAIN + [f'--workdir={workdir}']
                        + list(flags), cwd=REPO, env=env, capture_output=True,
                        text=True, timeout=240)
  assert proc.returncode == 0, proc.stderr[-3000:]
  return proc


def _entries(directory):
  return sorted(f for f in os.listdir(directory) if f.endswith('-cache'))


@pytest.mark.timeout(600)
def test_default_cache_is_used_and_hit_and_a_bad_one_never_fails(tmp_path):
  xdg = tmp_path / 'xdg'
  _train(tmp_path / 'a', XDG_CACHE_HOME=str(xdg))
  cache = xdg / 'gan_stability' / 'xla'
  first = _entries(cache)
  assert len(first) >= 2  # the train step and the evaluation, at least
  # The same run again, in a new workdir: every program is loaded.
  _train(tmp_path / 'b', XDG_CACHE_HOME=str(xdg))
  assert _entries(cache) == first
  # A directory that cannot be created: one warning line, the run goes on.
  blocker = tmp_path / 'file'
  blocker.write_text('not a directory')
  proc = _train(tmp_path / 'c', f'--compile_cache={blocker}/cache')
  lines = [l for l in proc.stderr.splitlines() if 'compile_cache' in l]
  assert len(lines) == 1 and lines[0].startswith('warning: --compile_cache:')
  assert (tmp_path / 'c' / 'metrics.jsonl').exists()


def test_off_and_the_default_directory(tmp_path, monkeypatch):
  import jax
  from experiments import entry
  monkeypatch.delenv('GAN_STABILITY_COMPILE_CACHE', raising=False)
  monkeypatch.delenv('JAX_COMPILATION_CACHE_DIR', raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path))
  assert entry.default_compile_cache() == str(tmp_path / 'gan_stability' /
                                                'xla')
  monkeypatch.setenv('GAN_STABILITY_COMPILE_CACHE', str(tmp_path / 'mine'))
  assert entry.default_compile_cache() == str(tmp_path / 'mine')
  try:
    assert entry.setup_compile_cache('off') is None
    assert not jax.config.jax_enable_compilation_cache
    # Processes it starts inherit 'off'.
    assert os.environ['GAN_STABILITY_COMPILE_CACHE'] == 'off'
    assert entry.default_compile_cache() == 'off'
  finally:
    jax.config.update('jax_enable_compilation_cache', True)
