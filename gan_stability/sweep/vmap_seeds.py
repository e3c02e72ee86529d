"""Several seeds of one config trained as one compiled program (vmap over seeds).

For small models (the 2-D MLPs) the seeds of one config are stacked along a
new leading axis and the loop's multi-step is ``vmap``-ed over it: one
compilation, one dispatch and one evaluation call per step for all seeds.
On the 2-core development CPU the compiled step itself gains little
(1.1-1.2x); whole runs are 2-3x faster than one by one (compile once, batched
evaluation and I/O): ``python -m experiments.bench.vmap_seeds``.
:func:`train_seeds` reproduces the single-run contract per seed:

* seed ``s`` uses exactly the keys, initial state and data batches of a
  single run with ``config.seed = s`` (states are initialised per seed and
  stacked, batches come from each seed's own iterator, keys from
  ``split(key(s), 3)``), so results equal one-by-one runs up to float
  reduction order (tested in ``tests/test_sweep.py``);
* each seed has its own run directory with ``config.json``,
  ``metrics.jsonl``, ``samples/``, TensorBoard events and orbax checkpoints
  in the single-run layout, so ``train_and_evaluate`` could resume any of
  them alone and the report reads them like any run;
* a seed whose loss or gradient norm becomes non-finite leaves the group
  (nothing of the bad dispatch is written) and is handed back with status
  ``'single'``: the caller finishes it with ``train_and_evaluate``, which
  resumes from the seed's last checkpoint and applies the loop's own
  divergence policy (stop with a ``diverged`` record, or roll back); the
  other seeds go on; a seed whose checkpoint cannot be restored is handed
  back the same way;
* resuming restores every seed from its own latest checkpoint (with the
  loop's pending per-step metrics); seeds whose checkpoints are at different
  steps run as separate vmapped groups.

The stacked program runs on one device (no data parallelism). Per seed it
does what the loop does per run (records, evaluation, per-layer spectral
norms, alarms, checkpoints; on SIGTERM a checkpoint, then ``Preempted``).
``tests/test_sweep.py`` compares the files of the two, so a change of the
loop that this module does not follow fails there.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import evaluation, models, writers
from gan_stability.checkpoint import Checkpointer
from gan_stability.metrics import dynamics
from gan_stability.models.layers import SPECTRAL_STATS
from gan_stability.kernels import compile_options
from gan_stability.train import loop, state as state_lib
from gan_stability.train import step as step_lib


def stack(trees):
  """Stacks pytrees with equal structure along a new leading axis (on the
  host, then one transfer: no per-shape compilations)."""
  return jax.device_put(jax.tree.map(
      lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees))


def unstack(tree, i: int):
  """Element ``i`` of a stacked pytree (a host copy is sliced for free)."""
  return jax.tree.map(lambda x: x[i], tree)


def seed_config(config, seed: int):
  """A copy of ``config`` with ``seed`` set."""
  c = config.copy_and_resolve_references()
  c.seed = int(seed)
  return c


def seed_keys(seed: int):
  """``(init_key, train_key, eval_key)`` exactly as a single run derives them."""
  return tuple(jax.random.split(jax.random.key(seed), 3))


def build(config):
  """``(generator, discriminator, data_shape)`` for ``config``."""
  data_shape = data_lib.make_iterator(config, seed=config.seed).element_shape
  generator, discriminator = models.build(config.model, data_shape)
  return generator, discriminator, data_shape


def make_group_multi_step(config, generator, discriminator):
  """``vmap`` of the loop's multi-step over a leading seed axis of
  ``(state, batches, root_key)``, jit-compiled (the state is donated)."""
  train_step = step_lib.make_train_step(config, generator, discriminator)
  return jax.jit(jax.vmap(make_multi_step(config, train_step)),
                 donate_argnums=0,
                 compiler_options=compile_options.compiler_options(
                     config.get('cpu_ynn_fusions', 'xla')))


def make_multi_step(config, train_step):
  """The loop's (unbatched) multi-step for ``config``, built the same way."""
  return step_lib.make_multi_step(
      train_step, unroll=step_lib.resolve_loop_impl(config))


def make_group_sample(config, generator):
  """``sample(g_params, g_cols, keys) -> [S, eval_samples, ...]``, vmapped."""
  sample = step_lib.make_sample_fn(generator, config.model.z_dim)
  n = config.eval_samples
  labels = step_lib.sample_labels(config, n)  # the loop's sample-grid labels
  return jax.jit(jax.vmap(lambda p, c, k: sample(p, c, k, n, labels)))


def init_states(config, generator, discriminator, data_shape, seeds):
  """Per-seed initial states (a single run's ``init_state``), stacked."""
  return stack([state_lib.init_state(config, generator, discriminator,
                                     seed_keys(s)[0], data_shape)
                for s in seeds])


def next_batches(iterators, k: int, n_critic: int) -> np.ndarray | dict:
  """``[S, k, n_critic, B, ...]``: each seed's next ``k * n_critic`` batches
  (class-conditional models: ``{'x': ..., 'label': [S, k, n_critic, B]}``)."""
  draws = [[[next(it) for _ in range(n_critic)] for _ in range(k)]
           for it in iterators]
  if isinstance(draws[0][0][0], dict):
    return {name: np.stack([np.stack([np.stack([d[name] for d in row])
                                      for row in seed]) for seed in draws])
            for name in draws[0][0][0]}
  return np.stack([np.stack([np.stack(row) for row in seed])
                   for seed in draws])


def train_seeds(config, seeds, workdirs, *, log_prefix: str = '') -> list[dict]:
  """Trains (or resumes) ``config`` for every seed as one vmapped program.

  Args:
    config: a training config (its ``seed`` is replaced by each seed).
    seeds: the seeds.
    workdirs: one run directory per seed (the single-run layout).
    log_prefix: prefix of the progress lines.

  Returns:
    Per seed: the final metrics with ``step`` (as ``train_and_evaluate``
    returns) and ``status='ok'``; or ``{'status': 'single', 'step': ...,
    'reason': ...}`` for a seed to finish alone with ``train_and_evaluate``
    (it diverged, or its checkpoint did not restore).
  """
  seeds, workdirs = [int(s) for s in seeds], list(workdirs)
  if config.get('family', 'gan') != 'gan':
    raise config_lib.ConfigError(
        f"config.family: {config.family!r} runs cannot share one vmapped "
        'program (GANs only); set seeds_in_one_program=False in the sweep')
  if len(seeds) != len(workdirs) or len(set(seeds)) != len(seeds):
    raise ValueError(f'train_seeds: need distinct seeds, one workdir each '
                     f'(got seeds {seeds}, {len(workdirs)} workdirs)')
  configs = [seed_config(config, s) for s in seeds]
  for c, wd in zip(configs, workdirs):
    config_lib.validate(c)
    os.makedirs(wd, exist_ok=True)
    loop.check_config_file(c, wd)
  generator, discriminator, data_shape = build(configs[0])
  template = state_lib.init_state(configs[0], generator, discriminator,
                                  seed_keys(seeds[0])[0], data_shape)

  # Seeds resume from their own checkpoints; group them by that step.
  results: list[dict | None] = [None] * len(seeds)
  restored: dict[int, tuple] = {}
  by_start: dict[int, list[int]] = {}
  for i, wd in enumerate(workdirs):
    ckpt = Checkpointer(os.path.join(wd, 'checkpoints'))
    step = ckpt.latest_step()
    if step is not None:
      try:
        restored[i] = ckpt.restore(step, template)
      except RuntimeError as e:
        results[i] = {'status': 'single', 'step': step, 'reason': str(e)}
    ckpt.close()
    if results[i] is None:
      by_start.setdefault(step or 0, []).append(i)
  for start, idx in sorted(by_start.items()):
    out = _train_group(config, [seeds[i] for i in idx],
                       [workdirs[i] for i in idx], start,
                       [restored.get(i) for i in idx], generator,
                       discriminator, data_shape, log_prefix)
    for i, r in zip(idx, out):
      results[i] = r
  return results


def _make_monitor(config, writer):
  """The loop's alarm monitor, fed the run's history (as the loop does)."""
  monitor = dynamics.DynamicsMonitor(
      grad_factor=config.get('alarm_grad_factor', 0.0),
      collapse_ratio=config.get('alarm_collapse_ratio', 0.0))
  for rec in writer.records():
    if not rec.get('evaluate_only'):
      monitor.update(rec)
  return monitor


def _seed_chunks(chunks: list[dict], i: int) -> list[dict]:
  """Seed ``i``'s per-step metrics from the stacked ``[S, k]`` chunks."""
  return [{m: v[i] for m, v in c.items()} for c in chunks]


def _meta(iterator, step: int, chunks: list[dict]) -> dict:
  """The loop's checkpoint metadata (a group never rolls back)."""
  return {'data': iterator.get_state(), 'step': step,
          'pending': loop.pending_to_json(chunks),
          'rollbacks': 0}


def _train_group(config, seeds, workdirs, start, restored, generator,
                 discriminator, data_shape, log_prefix) -> list[dict]:
  """The vmapped loop for seeds that all resume at ``start`` (``restored``:
  their ``(state, meta)`` from the checkpoint, or None at step 0)."""
  n = len(seeds)
  evaluators = [evaluation.make_evaluator(config, workdir=wd)
                for wd in workdirs]
  iterators = [data_lib.make_iterator(seed_config(config, s), seed=s)
               for s in seeds]
  keys = [seed_keys(s) for s in seeds]
  train_keys = jnp.stack([k[1] for k in keys])
  eval_keys = jnp.stack([k[2] for k in keys])
  ckpts = [Checkpointer(os.path.join(wd, 'checkpoints'),
                        max_to_keep=config.keep_checkpoints) for wd in workdirs]
  metric_writers = [writers.MetricWriter(wd, tensorboard=config.write_tensorboard)
                    for wd in workdirs]
  chunks: list[dict] = []
  if start:
    for it, (_, meta), wd in zip(iterators, restored, workdirs):
      it.set_state(meta['data'])
      logging.info('resumed %s at step %d', wd, start)
    state = stack([st for st, _ in restored])
    pending = [loop.pending_from_json(meta.get('pending'))
               for _, meta in restored]
    if pending[0]:  # equal lengths: the seeds stopped at the same step
      chunks = [{m: np.stack([p[0][m] for p in pending]) for m in pending[0][0]}]
  else:
    state = init_states(config, generator, discriminator, data_shape, seeds)
  for w in metric_writers:
    w.truncate_after(start)
  monitors = [_make_monitor(config, w) for w in metric_writers]

  multi_step = make_group_multi_step(config, generator, discriminator)
  sample = make_group_sample(config, generator)

  def evaluate(state, step, active):
    g_params = state_lib.eval_generator_params(state)
    samples = np.asarray(jax.device_get(
        sample(g_params, state.g_collections, eval_keys)))
    out = {}
    for i in active:
      sample_dir = None
      if config.write_samples:
        sample_dir = os.path.join(workdirs[i], 'samples')
        os.makedirs(sample_dir, exist_ok=True)
      out[i] = evaluators[i](samples[i], step, sample_dir=sample_dir,
                             writer=metric_writers[i])
    return out

  results: list[dict | None] = [None] * n
  active = list(range(n))
  last: dict[int, dict] = {}
  step = start
  t0 = time.time()
  sigterm = loop.SigtermFlag().__enter__()
  try:
    while step < config.num_steps and active:
      k = min(config.steps_per_dispatch, config.num_steps - step)
      batch = next_batches(iterators, k, config.n_critic)
      if not isinstance(batch, dict):
        batch = {'x': batch}
      state, metrics = multi_step(state, batch, train_keys)
      metrics = jax.device_get(metrics)  # [S, k] each; one sync per dispatch
      for i in list(active):
        bad = [m for m, v in metrics.items() if not np.all(np.isfinite(v[i]))]
        if bad:  # the loop's divergence handling takes over (see above)
          first = int(np.argmax(~np.isfinite(metrics[bad[0]][i])))
          results[i] = {'status': 'single', 'step': step + first + 1,
                        'reason': f'non-finite {bad} at step {step + first + 1}'}
          active.remove(i)
      step += k
      chunks.append(metrics)
      is_last = step == config.num_steps
      if step % config.log_every == 0 or is_last:
        records = {i: loop.host_means(_seed_chunks(chunks, i))
                   for i in active}
        chunks = []
        if active and config.get('log_sigmas', False):
          d_params = jax.device_get(state.d_params)
          d_stats = jax.device_get(state.d_collections.get(SPECTRAL_STATS))
          for i in active:
            records[i].update(dynamics.layer_sigmas(
                unstack(d_params, i),
                None if d_stats is None else unstack(d_stats, i),
                prefix='d_sigma/'))
        if active and (step % config.eval_every == 0 or is_last):
          for i, r in evaluate(state, step, active).items():
            records[i].update(r)
        for i in active:
          alarms = monitors[i].update(records[i])
          if alarms:
            records[i]['alarms'] = alarms
            logging.warning('%s step %d: alarms %s', workdirs[i], step, alarms)
          metric_writers[i].write(step, records[i])
          last[i] = records[i]
        _progress(log_prefix, step, start, config.num_steps, t0, records)
      saved = step % config.checkpoint_every == 0 or is_last
      if active and (saved or (sigterm.requested and not is_last)):
        host = jax.device_get(state)
        for i in active:
          ckpts[i].save(step, jax.device_put(unstack(host, i)),
                        _meta(iterators[i], step, _seed_chunks(chunks, i)))
      if sigterm.requested and not is_last:  # as the loop: save, then stop
        for c in ckpts:
          c.wait()
        raise loop.Preempted(step)
  finally:
    sigterm.__exit__()
    for c in ckpts:
      c.close()
    for w in metric_writers:
      w.close()
  missing = [i for i in active if i not in last]
  if missing:  # resumed finished runs: report their final evaluation
    for i, r in evaluate(state, step, missing).items():
      last[i] = dict(r)
  for i in active:
    results[i] = {**last[i], 'step': step, 'status': 'ok'}
  return results


def _progress(prefix, step, start, total, t0, records) -> None:
  elapsed = time.time() - t0
  rate = (step - start) / elapsed if elapsed > 0 else float('nan')
  shown = ''
  for m in ('modes', 'high_quality', 'kl', 'd_loss'):
    vals = [r[m] for r in records.values() if m in r]
    if vals:
      shown = f'{m}=' + ' '.join(f'{v:.3g}' if isinstance(v, float) else str(v)
                                 for v in vals)
      break
  print(f'{prefix}step {step}/{total} ({100 * step / total:.0f}%) '
        f'{rate:.1f} steps/s x {len(records)} seeds | {shown}', flush=True)
