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


def write_fake_idx(directory, *, num_train: int = 64, num_test: int = 16,
                   seed: int = 0):
  """Writes gzip IDX files with random 28x28 'digits' in the MNIST layout."""
  import gzip
  import struct

  import numpy as np
  os.makedirs(directory, exist_ok=True)
  rng = np.random.default_rng(seed)
  for prefix, n in (('train', num_train), ('t10k', num_test)):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n, dtype=np.uint8) % 10
    with gzip.open(os.path.join(directory, f'{prefix}-images-idx3-ubyte.gz'), 'wb') as f:
      f.write(struct.pack('>IIII', 0x803, n, 28, 28) + images.tobytes())
    with gzip.open(os.path.join(directory, f'{prefix}-labels-idx1-ubyte.gz'), 'wb') as f:
      f.write(struct.pack('>II', 0x801, n) + labels.tobytes())
  return directory
