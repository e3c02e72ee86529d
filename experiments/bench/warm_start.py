r"""Benchmark: cold vs warm start of whole commands (the compilation cache).

    python -m experiments.bench.warm_start [--num_steps=300] \
        [--mnist_dir=../shared/data/mnist] [--out=FILE]

Every CLI keeps JAX's persistent compilation cache (``--compile_cache``,
experiments/entry.py). This runs each command below twice in a subprocess
with a fresh, empty cache directory: *cold* (every program compiled and
written) and then *warm* (every program loaded), each in a new workdir, and
prints the wall times and their ratio; a third run with
``--compile_cache=off`` is the time without any cache (≈ cold):

* the quick start, ``experiments.quickstart`` (24 runs; ``--num_steps``
  generator updates each instead of 3,000, so that compilation is a visible
  share; the programs are the same whatever the step count);
* one image run, ``experiments.train`` with the DCGAN WGAN-GP MNIST recipe
  (``experiments/configs/mnist.py:wgan_gp``) for 20 steps with its
  evaluation (needs the MNIST IDX files of ``--mnist_dir``; skipped
  without them).

The three runs of a command follow each other, so load from other processes
on a shared machine hits them alike only roughly: read the ratio, not the
seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

from absl import flags

from experiments import entry

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

flags.DEFINE_integer('num_steps', 300, "The quick start's generator updates "
                     'per run.')
flags.DEFINE_string('mnist_dir', os.path.join(os.path.dirname(_REPO), 'shared',
                                              'data', 'mnist'),
                    'MNIST IDX directory of the image run.')
flags.DEFINE_string('out', '', 'Also write the table to this file.')
FLAGS = flags.FLAGS


def commands(num_steps: int, mnist_dir: str) -> dict[str, list[str]]:
  """``{name: argv}`` of the timed commands (``{workdir}`` filled in)."""
  out = {'quickstart': ['-m', 'experiments.quickstart', '--workdir={workdir}',
                        f'--num_steps={num_steps}']}
  if os.path.isfile(os.path.join(mnist_dir, 'train-images-idx3-ubyte.gz')):
    out['image run (DCGAN WGAN-GP MNIST, 20 steps)'] = [
        '-m', 'experiments.train',
        '--config=experiments/configs/mnist.py:wgan_gp',
        '--workdir={workdir}', f'--config.data.dir={mnist_dir}',
        '--config.num_steps=20', '--config.eval_every=20',
        '--config.checkpoint_every=20', '--config.log_every=10',
        '--config.steps_per_dispatch=10', '--config.write_tensorboard=False']
  return out


def timed(argv: list[str], workdir: str, cache: str) -> float:
  env = dict(os.environ)
  env.pop('JAX_COMPILATION_CACHE_DIR', None)
  env.pop('GAN_STABILITY_COMPILE_CACHE', None)
  args = [a.replace('{workdir}', workdir) for a in argv]
  start = time.perf_counter()
  proc = subprocess.run([sys.executable] + args + [f'--compile_cache={cache}'],
                        cwd=_REPO, env=env, capture_output=True, text=True)
  seconds = time.perf_counter() - start
  if proc.returncode != 0:
    raise RuntimeError(f'{" ".join(args)} failed:\n{proc.stderr[-3000:]}')
  return seconds


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'num_steps')
  lines = ['| command | no cache (s) | cold (s) | warm (s) | cold / warm |',
           '|---|---|---|---|---|']
  root = tempfile.mkdtemp(prefix='warm_start_')
  try:
    for name, cmd in commands(FLAGS.num_steps, FLAGS.mnist_dir).items():
      cache = os.path.join(root, 'cache_' + str(len(lines)))
      off = timed(cmd, os.path.join(root, f'off{len(lines)}'), 'off')
      cold = timed(cmd, os.path.join(root, f'cold{len(lines)}'), cache)
      warm = timed(cmd, os.path.join(root, f'warm{len(lines)}'), cache)
      lines.append(f'| {name} | {off:.1f} | {cold:.1f} | {warm:.1f} | '
                   f'{cold / warm:.2f}x |')
      print(lines[-1], flush=True)
  finally:
    shutil.rmtree(root, ignore_errors=True)
  table = '\n'.join(lines) + '\n'
  print('\n' + table, flush=True)
  if FLAGS.out:
    with open(FLAGS.out, 'w') as f:
      f.write(table)


if __name__ == '__main__':
  entry.main(main)
