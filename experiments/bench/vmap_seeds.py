r"""Benchmark: seeds vmapped into one program vs one by one, MoG MLP, this CPU.

    python -m experiments.bench.vmap_seeds [--seeds=8] [--steps=500] \
        [--variants=nonsaturating,wgan_gp_toy] [--repeats=3] [--end_to_end]

The model and batch are those of ``experiments/ablations/mog_grid.py`` (MLPs
3x64, batch 64, 100 train steps per dispatch). For each variant:

* *one by one*: the loop's compiled multi-step of a single run
  (:class:`gan_stability.train.loop.OnMesh`, one device), compiled once, run
  for every seed in turn (``--steps`` generator updates each, a host sync
  per dispatch and the numpy data batches included, as in the training
  loop);
* *vmapped*: the loop's program of a group of seeds
  (:class:`gan_stability.train.loop.Vmapped`), all seeds in one program for
  the same number of steps.

Compile time is measured separately (ahead-of-time ``lower().compile()``).
The two are alternated ``--repeats`` times and the median is reported, so
that load from other processes hits both alike. ``--end_to_end`` also times
whole runs (evaluation, metrics files and checkpoints included):
``train_and_evaluate`` per seed vs one ``train_seeds`` call.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
from absl import flags, logging

from experiments import entry

flags.DEFINE_integer('seeds', 8, 'Number of seeds.')
flags.DEFINE_integer('steps', 500, 'Generator updates per seed.')
flags.DEFINE_list('variants', ['nonsaturating', 'wgan_gp_toy'],
                  'experiments/configs/mog.py variants.')
flags.DEFINE_integer('repeats', 3, 'Alternating repetitions (median reported).')
flags.DEFINE_bool('end_to_end', False, 'Also time whole runs with I/O.')
FLAGS = flags.FLAGS


def make_config(variant: str, steps: int):
  from experiments.ablations import mog_grid  # pylint: disable=g-import-not-at-top
  from experiments.configs import mog  # pylint: disable=g-import-not-at-top
  from gan_stability.sweep import spec  # pylint: disable=g-import-not-at-top
  c = mog.get_config(variant)
  for field, value in mog_grid.BUDGET.items():
    spec.set_field(c, field, value, 'budget')
  c.num_steps = steps
  c.steps_per_dispatch = min(100, steps)
  c.log_every = c.checkpoint_every = c.steps_per_dispatch
  c.eval_every = steps
  c.write_samples = False
  return c


def time_training(config, seeds: list[int], repeats: int) -> dict:
  """Compile and train seconds of both ways (median over repeats)."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_stability import data as data_lib  # pylint: disable=g-import-not-at-top
  from gan_stability.train import loop, tasks  # pylint: disable=g-import-not-at-top
  from gan_stability.train import seeds as seeds_lib  # pylint: disable=g-import-not-at-top

  config = config.copy_and_resolve_references()
  config.num_devices = 1
  task = tasks.make_task(config)
  k, steps = config.steps_per_dispatch, config.num_steps
  single, group = loop.OnMesh(task), loop.Vmapped(task)  # as the loop runs them

  def fresh(seed_list):
    """Initial states, data iterators and train keys of single runs."""
    keys = [jax.random.split(jax.random.key(s), 3) for s in seed_list]
    iters = [data_lib.make_iterator(seeds_lib.seed_config(config, s), seed=s)
             for s in seed_list]
    return [task.init_state(kk[0]) for kk in keys], iters, [kk[1] for kk in keys]

  def draws(it):
    return [[next(it) for _ in range(config.n_critic)] for _ in range(k)]

  st, its, keys = fresh(seeds[:1])
  t = time.perf_counter()
  single_c = single.multi_step.lower(single.place(st[0]),
                                     single.batch([draws(its[0])]),
                                     keys[0]).compile()
  compile_single = time.perf_counter() - t
  st, its, keys = fresh(seeds)
  t = time.perf_counter()
  group_c = group.multi_step.lower(group.combine(st),
                                   group.batch([draws(it) for it in its]),
                                   jax.numpy.stack(keys)).compile()
  compile_group = time.perf_counter() - t

  def run_single():
    states, iters, keys = fresh(seeds)
    t = time.perf_counter()
    for i in range(len(seeds)):
      state = single.place(states[i])
      for _ in range(steps // k):
        state, metrics = single_c(state, single.batch([draws(iters[i])]),
                                  keys[i])
        jax.device_get(metrics)
    return time.perf_counter() - t

  def run_group():
    states, iters, keys = fresh(seeds)
    states, keys = group.combine(states), jax.numpy.stack(keys)
    t = time.perf_counter()
    for _ in range(steps // k):
      states, metrics = group_c(states, group.batch([draws(it) for it in iters]),
                                keys)
      jax.device_get(metrics)
    return time.perf_counter() - t

  one, vm = [], []
  for _ in range(repeats):
    one.append(run_single())
    vm.append(run_group())
  return {'compile_one': compile_single, 'compile_vmap': compile_group,
          'train_one': float(np.median(one)), 'train_vmap': float(np.median(vm))}


def time_end_to_end(config, seeds: list[int]) -> dict:
  """Whole runs in temporary directories: per seed vs one vmapped group."""
  import contextlib  # pylint: disable=g-import-not-at-top
  import io  # pylint: disable=g-import-not-at-top
  from gan_stability.train import seeds as vs  # pylint: disable=g-import-not-at-top
  from gan_stability.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  root = tempfile.mkdtemp(prefix='bench_vmap_seeds_')
  try:
    with contextlib.redirect_stdout(io.StringIO()):
      t = time.perf_counter()
      for s in seeds:
        train_and_evaluate(vs.seed_config(config, s), os.path.join(root, f'one{s}'))
      one = time.perf_counter() - t
      t = time.perf_counter()
      vs.train_seeds(config, seeds, [os.path.join(root, f'vm{s}') for s in seeds])
      vm = time.perf_counter() - t
  finally:
    shutil.rmtree(root, ignore_errors=True)
  return {'e2e_one': one, 'e2e_vmap': vm}


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'seeds', 'steps', 'repeats')
  logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=g-import-not-at-top
  seeds = list(range(FLAGS.seeds))
  print(f'jax {jax.__version__}, {jax.devices()[0].device_kind}, '
        f'{len(os.sched_getaffinity(0))} CPUs, load average '
        f'{os.getloadavg()[0]:.1f}; {FLAGS.seeds} seeds x {FLAGS.steps} steps, '
        f'median of {FLAGS.repeats}', flush=True)
  lines = ['| variant | n_critic | way | compile s | train s | seed-steps/s | '
           'speed-up (train) |', '|---|---|---|---|---|---|---|']
  e2e_lines = []
  for variant in FLAGS.variants:
    c = make_config(variant, FLAGS.steps)
    r = time_training(c, seeds, FLAGS.repeats)
    total = FLAGS.seeds * FLAGS.steps
    for way, key in (('one by one', 'one'), ('vmapped', 'vmap')):
      ratio = r['train_one'] / r[f'train_{key}']
      lines.append(f"| {variant} | {c.n_critic} | {way} | {r[f'compile_{key}']:.2f} | "
                   f"{r[f'train_{key}']:.2f} | {total / r[f'train_{key}']:.0f} | "
                   f'{ratio:.2f}x |')
    print(lines[-2] + '\n' + lines[-1], flush=True)
    if FLAGS.end_to_end:
      e = time_end_to_end(c, seeds)
      e2e_lines.append(f"| {variant} | {e['e2e_one']:.1f} | {e['e2e_vmap']:.1f} | "
                       f"{e['e2e_one'] / e['e2e_vmap']:.2f}x |")
  print('\n' + '\n'.join(lines))
  if e2e_lines:
    print('\nEnd to end (compile, evaluation, metrics and checkpoints included):\n')
    print('| variant | one by one s | vmapped s | speed-up |\n|---|---|---|---|')
    print('\n'.join(e2e_lines))


if __name__ == '__main__':
  entry.main(main)
