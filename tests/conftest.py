"""Shared test helpers. Tests run on the CPU; multi-device tests start a
subprocess with fake devices (XLA_FLAGS) and a timeout."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code_or_args, *, devices: int = 1, timeout: int = 300,
               cwd: str = REPO, check: bool = True):
  """Runs ``python -c CODE`` (str) or ``python ARGS`` (list) in a subprocess
  with ``devices`` fake CPU devices. Never hangs the suite: it is killed after
  ``timeout`` seconds and the test fails."""
  env = dict(os.environ)
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                      f' --xla_force_host_platform_device_count={devices}')
  env['JAX_PLATFORMS'] = 'cpu'
  env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
  args = ['-c', code_or_args] if isinstance(code_or_args, str) else code_or_args
  try:
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)
  except subprocess.TimeoutExpired as e:
    pytest.fail(f'subprocess timed out after {timeout}s:\n{e.stdout}\n{e.stderr}')
  if check and proc.returncode != 0:
    pytest.fail(f'subprocess failed ({proc.returncode}):\n{proc.stdout[-3000:]}'
                f'\n{proc.stderr[-5000:]}')
  return proc
