"""Shared test helpers. Tests run on the CPU; multi-device tests start a
subprocess with fake devices (XLA_FLAGS) and a timeout."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

import jax
import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One persistent XLA compilation cache per test session, fresh and temporary
# (nothing outside the session is read or kept): the process that imports
# this file first (pytest, or pytest-xdist's controller, before it starts its
# workers) makes it and removes it at exit; the xdist workers and every test
# subprocess (see subprocess_env) inherit it through the environment. The
# kill-and-resume tests start the same program many times, and many tests
# build the same train steps again (other seeds, resumed runs, the same config
# in another test or worker); each would otherwise recompile it. (A cached
# executable is the same program, so bitwise comparisons are unaffected; an
# entry read while another process writes it fails to load and is recompiled,
# with a warning.)
_CACHE_VAR = 'GAN_STABILITY_TEST_JAX_CACHE'
JAX_CACHE = os.environ.get(_CACHE_VAR, '')
if not os.path.isdir(JAX_CACHE):
  JAX_CACHE = tempfile.mkdtemp(prefix='gan_stability_test_jax_cache_')
  os.environ[_CACHE_VAR] = JAX_CACHE
  atexit.register(shutil.rmtree, JAX_CACHE, ignore_errors=True)
jax.config.update('jax_compilation_cache_dir', JAX_CACHE)
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0)
jax.config.update('jax_persistent_cache_min_entry_size_bytes', 0)


def subprocess_env(devices: int = 1) -> dict:
  """The environment of test subprocesses: CPU, ``devices`` fake devices,
  the repository on the path, the shared compilation cache."""
  env = dict(os.environ)
  env['XLA_FLAGS'] = (env.get('XLA_FLAGS', '') +
                      f' --xla_force_host_platform_device_count={devices}')
  env['JAX_PLATFORMS'] = 'cpu'
  env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
  env.setdefault('JAX_COMPILATION_CACHE_DIR', JAX_CACHE)
  env.setdefault('JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS', '0')
  env.setdefault('JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES', '0')
  return env


def run_python(code_or_args, *, devices: int = 1, timeout: int = 300,
               cwd: str = REPO, check: bool = True):
  """Runs ``python -c CODE`` (str) or ``python ARGS`` (list) in a subprocess
  with ``devices`` fake CPU devices. Never hangs the suite: it is killed after
  ``timeout`` seconds and the test fails."""
  env = subprocess_env(devices)
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
  from gan_stability.data import idx
  return idx.write_random_digits(directory, num_train=num_train,
                                 num_test=num_test, seed=seed)


# Top-left corners of the class blocks of :func:`block_images`.
BLOCK_CORNERS = [(r, c) for r in (3, 17) for c in (0, 5, 11, 16, 22)]


def block_images(n: int, seed: int):
  """An easily separable 10-class 28 x 28 uint8 data set: class k is a bright
  6 x 6 block at corner ``BLOCK_CORNERS[k]`` on a dark noisy background;
  ``(images [n, 28, 28], int32 labels [n])``, balanced, shuffled by
  ``seed``. A classifier learns it in seconds."""
  rng = np.random.default_rng(seed)
  labels = (np.arange(n) % 10).astype(np.int32)
  rng.shuffle(labels)
  x = rng.normal(30, 12, size=(n, 28, 28))
  for i, k in enumerate(labels):
    r, c = BLOCK_CORNERS[k]
    x[i, r:r + 6, c:c + 6] = rng.normal(220, 12, size=(6, 6))
  return np.clip(np.round(x), 0, 255).astype(np.uint8), labels


# The recipes' published hyper-parameters (experiments/configs/recipes.py;
# DCGAN: Radford et al. 2016; WGAN-GP: Gulrajani et al. 2017, Algorithm 1;
# SN-GAN: Miyato et al. 2018, Table 1 setting A), as :func:`recipe_of` reads
# them: loss, penalty, penalty_weight, n_critic, spectral norm, D norm, g_lr,
# d_lr, b1, b2.
IMAGE_RECIPES = {
    'nonsaturating': ('nonsaturating', 'none', 0.0, 1, False, 'batch',
                      2e-4, 2e-4, 0.5, 0.999),
    'wgan_gp': ('wasserstein', 'gp', 10.0, 5, False, 'none',
                1e-4, 1e-4, 0.0, 0.9),
    'sngan': ('nonsaturating', 'none', 0.0, 5, True, 'none',
              1e-4, 1e-4, 0.5, 0.9),
}


def recipe_of(c) -> tuple:
  """The recipe fields of an image config, in the order of IMAGE_RECIPES."""
  return (c.loss, c.penalty, c.penalty_weight, c.n_critic,
          c.model.spectral_norm, c.model.d_norm, c.optimizer.g_lr,
          c.optimizer.d_lr, c.optimizer.b1, c.optimizer.b2)


def assert_mean_se(summary_row: dict, metric: str, values, *,
                   rtol: float = 1e-9, atol: float = 1e-12) -> None:
  """A summary CSV row's ``metric`` and ``metric_se`` are the mean and the
  standard error (sample std / sqrt(n)) of ``values``, computed here."""
  import numpy as np
  v = np.asarray(values, np.float64)
  np.testing.assert_allclose(float(summary_row[metric]), v.mean(), rtol=rtol)
  np.testing.assert_allclose(float(summary_row[metric + '_se']),
                             v.std(ddof=1) / np.sqrt(len(v)), rtol=rtol,
                             atol=atol)


@pytest.fixture
def fake_inception(monkeypatch):
  """Replaces the FID Inception network by a fixed random projection of the
  prepared input's 4x4 average and its weight loader by a stub; returns the
  list of inputs the network was given. The features are 64-d
  (``inception.FEATURE_DIM`` is patched too): FID's matrix square root of
  2048-d covariances would take seconds per call."""
  from gan_stability.metrics import inception
  seen = []
  monkeypatch.setattr(inception, 'FEATURE_DIM', 64)
  proj = jax.random.normal(jax.random.key(0), (16, 64))

  def fake_apply(params, x, impl='auto'):
    del params
    seen.append(np.asarray(x))
    pooled = jax.image.resize(x[..., :1], (x.shape[0], 4, 4, 1), 'linear')
    return jax.numpy.tanh(pooled.reshape(x.shape[0], 16) @ proj)

  monkeypatch.setattr(inception, 'apply', fake_apply)
  monkeypatch.setattr(inception, 'load_params', lambda path: {})
  return seen
