"""Golden runs: the commands whose outputs the structural redesign keeps
bit for bit (``tests/test_golden_runs.py``).

Each case is a command line of ``experiments.train`` (or, for the vmapped
group of seeds, ``experiments.sweep``) on tiny networks; ``{IDX}`` stands
for a directory of fake MNIST IDX files written by
``gan_stability.data.idx.write_random_digits(dir, num_train=64,
num_test=16, seed=0)``. ``python tests/golden/runs.py`` ran every case on
commit c3cd5ea (before the redesign) and wrote ``tests/golden/runs/<case>.npz``:
``metrics`` (the ``metrics.jsonl`` text), ``config`` (``config.json``),
``meta`` (the final checkpoint's JSON item) and ``state/<path>`` (every leaf
of the final checkpoint's state), per run of the case (a sweep has one run
per seed, prefixed with its run directory). ``env`` records the jax / jaxlib
versions and the CPU the goldens were written on: bitwise equality is only
meaningful on the same software and processor.

``python tests/golden/runs.py --check [CASE ...]`` runs the commands again
and compares (the test suite does the same in-process).

This file reads checkpoints with orbax alone (no template from the library);
of the library's API it uses only ``gan_stability.config.upgrade``, to read
a golden ``config.json`` with the fields added since at their legacy
values.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
OUT = os.path.join(HERE, 'runs')

_MOG_SMALL = ['--config.model.g_hidden=32', '--config.model.d_hidden=32',
              '--config.model.g_layers=2', '--config.model.d_layers=2',
              '--config.batch_size=64', '--config.num_steps=40',
              '--config.steps_per_dispatch=10', '--config.log_every=10',
              '--config.eval_every=20', '--config.checkpoint_every=10',
              '--config.eval_samples=256', '--config.write_tensorboard=False']
_IMAGE_SMALL = ['--config.data.dir={IDX}', '--config.model.g_width=8',
                '--config.model.d_width=8', '--config.model.z_dim=16',
                '--config.batch_size=16', '--config.num_steps=6',
                '--config.log_every=2', '--config.eval_every=4',
                '--config.checkpoint_every=2',
                '--config.write_tensorboard=False',
                # The evaluation protocol of the release the goldens were
                # written with (0.2.0 quantises samples before metrics).
                '--config.eval.quantize=False',
                '--config.eval.fid_resize=bilinear']

# case -> (CLI module, arguments without --workdir).
CASES = {
    # WGAN-GP (gradient penalty on interpolates, n_critic 5) on the ring.
    'mog_wgan_gp': ('experiments.train', [
        '--config=experiments/configs/mog.py:wgan_gp', '--config.seed=1']
                    + _MOG_SMALL),
    # SN-GAN (spectral norm, per-layer sigmas logged) on the grid.
    'mog_sngan': ('experiments.train', [
        '--config=experiments/configs/mog.py:sngan', '--config.dataset=grid',
        '--config.seed=2'] + _MOG_SMALL),
    # DCGAN with batch norm in G and D, an EMA of G, the classifier metrics.
    'image_bn_ema': ('experiments.train', [
        '--config=experiments/configs/mnist.py:nonsaturating',
        '--config.ema_decay=0.9', '--config.ema_start=2',
        '--config.eval_samples=16', '--config.data.samples_per_row=4',
        '--config.eval.metrics=digits,cfid', '--config.eval.num_real=32']
                     + _IMAGE_SMALL),
    # Class-conditional WGAN-GP (projection D, GP on the real labels).
    'image_cond': ('experiments.train', [
        '--config=experiments/configs/mnist.py:wgan_gp_cond',
        '--config.eval_samples=20', '--config.data.samples_per_row=2',
        '--config.num_steps=4', '--config.eval_every=2',
        '--config.eval.metrics=digits'] + [
            a for a in _IMAGE_SMALL if not a.startswith(
                ('--config.num_steps', '--config.eval_every'))]),
    # The class-conditional VAE baseline.
    'vae_cond': ('experiments.train', [
        '--config=experiments/configs/vae.py:smoke_cond',
        '--config.eval_samples=8', '--config.eval.metrics=digits',
        '--config.model.e_width=8'] + [
            a for a in _IMAGE_SMALL if 'd_width' not in a]),
    # Three seeds of MoG hinge + R1 as one vmapped program.
    'seeds3': ('experiments.sweep', [
        '--sweep=tests/golden/seeds_sweep.py']),
}


def idx_dir(root: str) -> str:
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  return idx.write_random_digits(os.path.join(root, 'idx'), num_train=64,
                                 num_test=16, seed=0)


def command(case: str, workdir: str, idx: str) -> list[str]:
  module, args = CASES[case]
  return ([sys.executable, '-m', module, f'--workdir={workdir}']
          + [a.replace('{IDX}', idx) for a in args])


def run_dirs(case: str, workdir: str) -> list[str]:
  """The run directories a case writes (a sweep: one per seed)."""
  if CASES[case][0] == 'experiments.sweep':
    runs = os.path.join(workdir, 'runs')
    return [os.path.join(runs, d) for d in sorted(os.listdir(runs))]
  return [workdir]


def read_checkpoint(run_dir: str) -> tuple[int, dict, dict]:
  """``(step, {path: array}, meta)`` of the newest checkpoint of a run."""
  import jax  # pylint: disable=g-import-not-at-top
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  ckpt = os.path.join(run_dir, 'checkpoints')
  step = max(int(d) for d in os.listdir(ckpt) if d.isdigit())
  path = os.path.join(ckpt, str(step), 'state')
  checkpointer = ocp.StandardCheckpointer()
  # Restored onto this process's first device whatever the topology it was
  # saved from (several processes or devices).
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
  target = jax.tree.map(
      lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device),
      checkpointer.metadata(path).item_metadata.tree)
  tree = checkpointer.restore(path, target)
  state = {jax.tree_util.keystr(p): np.asarray(v) for p, v in
           jax.tree_util.tree_flatten_with_path(tree)[0]}
  with open(os.path.join(ckpt, str(step), 'meta', 'metadata')) as f:
    meta = json.load(f)
  return step, state, meta


def outputs(case: str, workdir: str, idx: str) -> dict[str, np.ndarray]:
  """The golden record of a finished case (see the module docstring); the
  IDX directory ``idx`` reads ``{IDX}`` in ``config.json``."""
  out = {}
  for d in run_dirs(case, workdir):
    prefix = '' if d == workdir else os.path.basename(d) + '/'
    with open(os.path.join(d, 'metrics.jsonl')) as f:
      out[prefix + 'metrics'] = np.array(f.read())
    with open(os.path.join(d, 'config.json')) as f:
      out[prefix + 'config'] = np.array(f.read().replace(idx, '{IDX}'))
    _, state, meta = read_checkpoint(d)
    out[prefix + 'meta'] = np.array(json.dumps(meta, sort_keys=True))
    for k, v in state.items():
      out[f'{prefix}state{k}'] = v
  return out


def environment() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  model = flags = ''
  with open('/proc/cpuinfo') as f:
    for line in f:
      if line.startswith('model name') and not model:
        model = line.split(':', 1)[1].strip()
      if line.startswith('flags') and not flags:
        flags = ' '.join(sorted(line.split(':', 1)[1].split()))
  return json.dumps({'jax': jax.__version__, 'jaxlib': jaxlib.__version__,
                     'cpu': model, 'cpu_flags': flags, 'cpus': os.cpu_count()})


def compare(case: str, got: dict, golden) -> list[str]:
  """The entries of a case's golden record that ``got`` does not reproduce
  bit for bit (the checkpoint metadata of a run written before the VAE
  recorded its rollback count, 0, counts as equal; a config equals the
  golden one with later fields at their legacy values)."""
  bad = []
  for k in golden.files:
    if k == 'env':
      continue
    if k not in got:
      bad.append(k + ' (missing)')
    elif k.endswith('config'):
      # Fields added since the goldens were written must hold their legacy
      # value (gan_stability.config.upgrade fills them in): the same run.
      from gan_stability import config as config_lib  # pylint: disable=g-import-not-at-top
      old = config_lib.upgrade(json.loads(str(golden[k])))
      if old != json.loads(str(got[k])):
        bad.append(k)
    elif k.endswith('meta'):
      old, new = json.loads(str(golden[k])), json.loads(str(got[k]))
      if 'rollbacks' not in old and new.get('rollbacks') == 0:
        new.pop('rollbacks')
      if old != new:
        bad.append(k)
    elif not (got[k].dtype == golden[k].dtype
              and np.array_equal(got[k], golden[k])):
      bad.append(k)
  bad += [k + ' (new)' for k in got if k not in golden.files]
  return bad


def golden(case: str):
  return np.load(os.path.join(OUT, case + '.npz'))


def check(root: str, cases=None) -> int:
  """Runs the cases' commands again and compares with the goldens; prints
  the mismatching entries; returns the number of failing cases."""
  idx = idx_dir(root)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  failures = 0
  for case in cases or CASES:
    workdir = os.path.join(root, case)
    subprocess.run(command(case, workdir, idx), cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    bad = compare(case, outputs(case, workdir, idx), golden(case))
    failures += bool(bad)
    print(case, 'OK' if not bad else f'MISMATCH {bad[:8]}', flush=True)
  return failures


def record(root: str) -> None:
  os.makedirs(OUT, exist_ok=True)
  idx = idx_dir(root)
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  for case in CASES:
    workdir = os.path.join(root, case)
    subprocess.run(command(case, workdir, idx), cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    out = outputs(case, workdir, idx)
    out['env'] = np.array(environment())
    np.savez_compressed(os.path.join(OUT, case + '.npz'), **out)
    print(case, len(out), 'entries')


if __name__ == '__main__':
  import tempfile  # pylint: disable=g-import-not-at-top
  root = tempfile.mkdtemp(prefix='golden_runs_')
  if sys.argv[1:2] == ['--check']:
    sys.exit(check(root, sys.argv[2:]) and 1)
  record(root)
