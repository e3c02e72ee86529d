"""The training loop: one loop for every kind of run.

:func:`train` runs one :class:`~gan_stability.train.task.Task` (a GAN or the
VAE) in a workdir, data parallel over a ``'data'`` mesh;
:func:`train_group` runs several configs of one task that differ only in
their seed and in vmappable hyper-parameters (``Field.vmappable`` in the
config schema, e.g. ``penalty_weight``) as one vmapped program on one
device (used by :mod:`gan_stability.train.seeds`). Both follow the workdir
contract of :mod:`gan_stability.train.workdir` for each run, with the same
code:

* resume from each run's latest checkpoint (state, data position, pending
  per-step metrics, rollback count), dropping records written after it;
* every ``steps_per_dispatch`` steps one compiled call; at ``log_every``
  steps a record of the train metrics averaged since the last one, the
  task's state metrics and online alarms; at ``eval_every`` steps (and the
  last) the evaluator's metrics of samples from a fixed latent batch;
* checkpoints at ``checkpoint_every`` steps and the last; after a SIGTERM a
  checkpoint, then :class:`~gan_stability.train.workdir.Preempted` (in a
  multi-process run a SIGTERM to any process stops all of them at the same
  step: they agree on it at each dispatch);
* a non-finite metric: the single run stops with a ``diverged`` record
  (:class:`~gan_stability.train.workdir.DivergenceError`), or rolls back to
  its last checkpoint (``on_divergence='rollback'``; the data iterator goes
  on, so the batches that diverged are skipped, and the keys are re-drawn);
  a run of a group leaves the group and is handed back to the caller, who
  finishes it alone.

Keys: a run's ``(init, train, eval)`` keys are ``split(key(seed), 3)``; the
train key of step ``s`` is ``fold_in(train_key, s)`` (after ``r`` rollbacks
``fold_in(fold_in(train_key, r), s)``), so the stream depends only on the
seed and the step.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import distributed
from gan_stability import writers
from gan_stability.eval import evaluators
from gan_stability.metrics import dynamics
from gan_stability.train import parallel
from gan_stability.train import task as task_lib
from gan_stability.train import workdir as workdir_lib
from gan_stability.train.workdir import DivergenceError, Preempted

_ABSENT = object()


@dataclasses.dataclass
class _Run:
  """One run the loop drives: its files, data, evaluator and keys."""
  files: workdir_lib.RunFiles
  iterator: Any
  evaluator: Any
  keys: tuple  # (init, train, eval)
  chunks: list = dataclasses.field(default_factory=list)
  rollbacks: int = 0
  monitor: Any = None
  last: dict | None = None
  handed_back: dict | None = None  # why it left a group
  # A member of a group with hyper-parameters: its own task (its initial
  # state) and the metrics its own run logs (None: all of the program's).
  task: Any = None
  metric_names: frozenset | None = None


def _open_run(config, workdir: str) -> _Run:
  return _Run(
      files=workdir_lib.RunFiles(config, workdir),
      iterator=data_lib.make_iterator(config, seed=config.seed),
      evaluator=evaluators.make_evaluator(config, workdir=workdir),
      keys=tuple(jax.random.split(jax.random.key(config.seed), 3)))


def _stack_steps(draws: list, name: str, critic_axis: bool) -> np.ndarray:
  """``[k, (n_critic,) B, ...]`` of one run's draws ``[k][n_critic]``."""
  if critic_axis:
    return np.stack([np.stack([d[name] for d in row]) for row in draws])
  return np.stack([row[0][name] for row in draws])


class OnMesh:
  """How the loop runs one run: data parallel, the state replicated and the
  batch sharded over the ``'data'`` mesh of ``config.num_devices`` devices.
  ``multi_step`` is the compiled step the loop calls (benchmarks time it)."""
  group = False

  def __init__(self, task):
    self.task = task
    config = task.config
    mesh = parallel.make_mesh(config.num_devices)
    self.repl = parallel.replicated(mesh)
    self.batch_axis = 2 if task.critic_axis else 1
    self.bsharding = parallel.batch_sharding(mesh, self.batch_axis)
    train_step = task.make_train_step(
        latent_sharding=parallel.batch_sharding(mesh, 0))
    self.multi_step = jax.jit(
        task_lib.make_multi_step(train_step, unroll=task.unroll),
        in_shardings=(self.repl, {n: self.bsharding for n in task.batch_names},
                      self.repl),
        out_shardings=(self.repl, self.repl), donate_argnums=0,
        compiler_options=task.compiler_options)
    self.n = config.eval_samples
    # Samples sharded like a batch: each device (and process) generates its
    # rows; distributed.to_host gathers them.
    self.sample = jax.jit(
        task.make_sample_fn(), static_argnums=3,
        out_shardings=(parallel.batch_sharding(mesh, 0)
                       if self.n % mesh.size == 0 else self.repl))
    self.labels = task.eval_labels(self.n)

  def place(self, state):
    return jax.device_put(state, self.repl)

  def combine(self, states):
    (state,) = states
    return state

  def batch(self, draws):
    (run_draws,) = draws
    return {n: parallel.global_batch(
        _stack_steps(run_draws, n, self.task.critic_axis), self.bsharding,
        self.batch_axis) for n in self.task.batch_names}

  def keys(self, runs):
    (run,) = runs
    train_key = run.keys[1]
    return (train_key if run.rollbacks == 0
            else jax.random.fold_in(train_key, run.rollbacks))

  def step_args(self, runs) -> tuple:
    del runs
    return ()

  def split(self, metrics, runs):
    del runs
    return [metrics]

  def log_inputs(self, state):
    return [jax.device_get(self.task.log_inputs(state))]

  def samples(self, state, runs):
    (run,) = runs
    params, cols = self.task.sampler_variables(state)
    return [distributed.to_host(self.sample(params, cols, run.keys[2],
                                            self.n, self.labels))]

  def save(self, state, runs, indices, step):
    for i in indices:
      r = runs[i]
      r.files.save(step, state, r.iterator.get_state(), r.chunks, r.rollbacks)


class Vmapped:
  """How the loop runs a group: runs that differ only in their seed and in
  the hyper-parameters ``hparams`` (vmappable config fields), stacked along
  a leading axis and trained as one ``vmap``-ed program on one device.

  With ``hparams`` the multi-step takes a fourth argument, ``hp``: per field
  the members' values, float32 ``[members]`` (:meth:`step_args`)."""
  group = True

  def __init__(self, task, hparams: Sequence[str] = ()):
    self.task = task
    self.hparams = tuple(hparams)
    config = task.config
    train_step = (task.make_train_step(hparams=self.hparams) if self.hparams
                  else task.make_train_step())
    self.multi_step = jax.jit(
        jax.vmap(task_lib.make_multi_step(train_step, unroll=task.unroll,
                                          hparams=bool(self.hparams))),
        donate_argnums=0, compiler_options=task.compiler_options)
    sample = task.make_sample_fn()
    n, labels = config.eval_samples, task.eval_labels(config.eval_samples)
    self.sample = jax.jit(jax.vmap(lambda p, c, k: sample(p, c, k, n, labels)))

  def place(self, state):
    return state

  def combine(self, states):
    """Stacks on the host, then one transfer (no per-shape compilations)."""
    return jax.device_put(jax.tree.map(
        lambda *xs: np.stack([np.asarray(x) for x in xs]), *states))

  def batch(self, draws):
    return {n: np.stack([_stack_steps(d, n, self.task.critic_axis)
                         for d in draws]) for n in self.task.batch_names}

  def keys(self, runs):
    return jnp.stack([r.keys[1] for r in runs])

  def step_args(self, runs) -> tuple:
    """``(hp,)``: the members' values of ``hparams`` (``()`` without)."""
    if not self.hparams:
      return ()
    return ({f: np.array([hparam_value(r.task.config, f) for r in runs],
                         np.float32) for f in self.hparams},)

  def split(self, metrics, runs):
    """Per run its metrics: those its own run logs (a member at 0 of a
    branch the group takes, e.g. instance noise, logs no noise scale)."""
    size = len(next(iter(metrics.values())))
    return [{k: v[i] for k, v in metrics.items()
             if runs[i].metric_names is None or k in runs[i].metric_names}
            for i in range(size)]

  def log_inputs(self, state):
    host = jax.device_get(self.task.log_inputs(state))
    size = jax.tree.leaves(state)[0].shape[0]
    return [jax.tree.map(lambda x: x[i], host) for i in range(size)]

  def samples(self, state, runs):
    params, cols = self.task.sampler_variables(state)
    eval_keys = jnp.stack([r.keys[2] for r in runs])
    return list(np.asarray(jax.device_get(self.sample(params, cols,
                                                      eval_keys))))

  def save(self, state, runs, indices, step):
    host = jax.device_get(state)
    for i in indices:
      r = runs[i]
      r.files.save(step, jax.device_put(jax.tree.map(lambda x: x[i], host)),
                   r.iterator.get_state(), r.chunks, r.rollbacks)


def train(task, workdir: str) -> dict:
  """Trains (or resumes) ``task``'s run in ``workdir`` (its config written
  or checked there first); returns the final record with ``step``.

  Raises:
    WorkdirInUse: another run holds the workdir (nothing is written).
    ConfigError: a config that differs from the one the workdir was
      started with, in a field that may not change on resume.
    DivergenceError: a NaN/Inf loss or gradient (after ``max_rollbacks``
      rollbacks when ``on_divergence='rollback'``); no checkpoint is ever
      written for a diverged state.
    Preempted: SIGTERM arrived; the state was checkpointed first.
    RuntimeError: checkpoints exist but none can be restored.
  """
  with workdir_lib.claimed([task.config], [workdir],
                           data_shape=task.data_shape):
    program = OnMesh(task)
    (result,) = _train(task, program, [_open_run(task.config, workdir)],
                       prefix='')
  return result


def train_group(task, configs: Sequence[Any], workdirs: Sequence[str], *,
                prefix: str = '') -> list[dict]:
  """Trains (or resumes) ``configs`` as one vmapped program; every run
  resumes from its own checkpoint, which must all be of one step.

  The configs differ only in their seed and in vmappable fields
  (:func:`group_hparams`), and their initial states must have one layout
  (:func:`state_layout`: e.g. ``ema_decay`` 0 and > 0 do not mix).
  Without such fields the program is the step of ``configs[0]`` vmapped
  over seeds; with them it is the step of :func:`program_config` taking
  each member's values as an input (``task.make_train_step(hparams=...)``),
  and each member logs the metrics of its own run. Either way every run's
  files are those of a single run of its config. ``task``: a task of the
  configs' family and data shape (rebuilt for the program's config unless
  ``task.config`` is it but for the seed).

  Returns:
    Per run: its final record with ``step`` and ``status='ok'``, or
    ``{'status': 'single', 'step': ..., 'reason': ...}`` for a run that left
    the group (it diverged, or its checkpoint does not restore) and is to be
    finished alone with :func:`train`.

  Raises:
    ValueError: configs that differ in a field that is not vmappable, or
      whose states differ in layout.
  """
  hparams = group_hparams(task, configs)
  members, names = [None] * len(configs), [None] * len(configs)
  if hparams:
    members = [type(task)(c, task.data_shape) for c in configs]
    if len({state_layout(t) for t in members}) > 1:
      raise ValueError('train_group: the runs\' initial states differ in '
                       'layout (e.g. ema_decay or lecam_weight 0 and > 0); '
                       'group them by state_layout')
    # The step branches on these fields only on whether they are > 0.
    by_branches: dict[tuple, frozenset] = {}
    for i, t in enumerate(members):
      on = tuple(hparam_value(t.config, f) > 0 for f in hparams)
      if on not in by_branches:
        by_branches[on] = t.metric_names()
      names[i] = by_branches[on]
  program = program_config(configs, hparams)
  if [f for f in differing_fields([task.config, program]) if f != 'seed']:
    task = type(task)(program, task.data_shape)
  with workdir_lib.claimed(configs, workdirs, data_shape=task.data_shape):
    runs = [_open_run(c, wd) for c, wd in zip(configs, workdirs)]
    for r, t, n in zip(runs, members, names):
      r.task, r.metric_names = t, n
    return _train(task, Vmapped(task, hparams), runs, prefix=prefix)


def hparam_value(config, field: str) -> float:
  """``config``'s value of the (dotted) field ``field``, as a float."""
  node = config
  for part in field.split('.'):
    node = node[part]
  return float(node)


def differing_fields(configs: Sequence[Any]) -> list[str]:
  """The dotted config fields whose values are not the same in all of
  ``configs`` (in the first config's field order)."""
  flat = [config_lib.flatten(c) for c in configs]
  names = list(flat[0]) + sorted({k for f in flat[1:] for k in f} -
                                 set(flat[0]))
  return [k for k in names
          if any(f.get(k, _ABSENT) != flat[0].get(k, _ABSENT)
                 for f in flat[1:])]


def group_hparams(task, configs: Sequence[Any]) -> tuple[str, ...]:
  """The fields other than ``seed`` in which ``configs`` differ: the
  hyper-parameters of their group's program. Raises ValueError naming a
  field that the task cannot vary in one program (not
  ``task.vmappable_fields()``)."""
  fields = [f for f in differing_fields(configs) if f != 'seed']
  allowed = task.vmappable_fields()
  bad = [f for f in fields if f not in allowed]
  if bad:
    raise ValueError(f'train_group: the configs differ in {bad}, which '
                     'cannot vary within one vmapped program (it changes a '
                     'shape or the structure of the step); the vmappable '
                     f'fields: {allowed}')
  return tuple(fields)


def program_config(configs: Sequence[Any], hparams: Sequence[str]):
  """The config the program of a group is built from: the first config
  with each field of ``hparams`` at its largest value over the group, so
  that every branch the step takes on such a field (on whether it is > 0)
  is taken if any member takes it."""
  out = configs[0].copy_and_resolve_references()
  for field in hparams:
    *parents, leaf = field.split('.')
    node = out
    for p in parents:
      node = node[p]
    node[leaf] = max(hparam_value(c, field) for c in configs)
  return out


def state_layout(task) -> Any:
  """The tree structure, shapes and dtypes of ``task``'s initial state
  (traced abstractly): runs stack into one program only if theirs agree."""
  shapes = jax.eval_shape(task.init_state, jax.random.key(0))
  return (jax.tree.structure(shapes),
          tuple((x.shape, str(x.dtype)) for x in jax.tree.leaves(shapes)))


def _resume(task, program, runs) -> tuple[int, Any]:
  """Restores every run; returns the common start step and the state."""
  states, start = [], None
  for r in runs:
    fresh = program.place((r.task or task).init_state(r.keys[0]))
    try:
      step, state, meta = r.files.resume(fresh, fallback=not program.group)
    except RuntimeError as e:
      if not program.group:
        raise
      r.handed_back = {'status': 'single', 'step': r.files.ckpt.latest_step(),
                       'reason': str(e)}
      state, step, meta = fresh, None, None
    if meta is not None:
      r.iterator.set_state(meta['data'])
      r.chunks = workdir_lib.pending_from_json(meta.get('pending'))
      r.rollbacks = meta.get('rollbacks', 0)
    if step is not None:
      if start is not None and step != start:
        raise ValueError(f'train_group: the runs resume at different steps '
                         f'({start} and {step}); group them by step')
      start = step
    states.append(state)
  return start or 0, program.combine(states)


def _train(task, program, runs: list[_Run], *, prefix: str) -> list[dict]:
  sigterm = workdir_lib.SigtermFlag().__enter__()
  failing = True
  try:
    out = _train_runs(task, program, runs, sigterm, prefix)
    failing = False
    return out
  finally:
    sigterm.__exit__()
    for r in runs:
      r.files.close(failing=failing)


def _roll_back_or_stop(task, program, r: _Run, bad: list[str], values: dict,
                       at: int, template) -> tuple[Any, int]:
  """The divergence policy of a single run whose metrics ``bad`` became
  non-finite (``values``) at step ``at``: returns the state and step to go
  on from after a rollback, or raises DivergenceError after writing the
  ``diverged`` record. No checkpoint of a diverged state is ever written."""
  blame = task.blame(bad)
  record = {'diverged': True, 'bad_metrics': bad, **blame, **values}
  r.files.ckpt.wait()
  if task.on_divergence == 'rollback' and r.rollbacks < task.max_rollbacks:
    # Back to the last good checkpoint (or the initial state); the data
    # iterator keeps going, so the batches that diverged are skipped.
    r.rollbacks += 1
    good = r.files.ckpt.latest_step()
    if good is None:
      good, r.chunks = 0, []
      state = program.place(task.init_state(r.keys[0]))
    else:
      state, meta = r.files.ckpt.restore(good, template)
      r.chunks = workdir_lib.pending_from_json(meta.get('pending'))
    r.files.writer.truncate_after(good)
    r.files.writer.write(good, {**record, 'diverged_at': at,
                                'rollback': r.rollbacks})
    logging.warning('non-finite %s at step %d %s; rolled back to step %d '
                    '(rollback %d of %d)', bad, at, blame, good, r.rollbacks,
                    task.max_rollbacks)
    return state, good
  r.files.writer.write(at, record)
  first_net = f' ({blame["network"]} first)' if blame else ''
  raise DivergenceError(
      f'non-finite {bad} at step {at}{first_net}; last checkpoint kept at '
      f'step {r.files.ckpt.latest_step()}'
      + (f' after {r.rollbacks} rollbacks' if r.rollbacks else ''))


def _train_runs(task, program, runs, sigterm, prefix) -> list[dict]:
  """The loop of :func:`_train` (which closes the runs' files)."""
  config = task.config
  start, state = _resume(task, program, runs)
  active = [i for i, r in enumerate(runs) if r.handed_back is None]
  if not active:
    return [r.handed_back for r in runs]
  if not program.group:  # for a rollback to a checkpoint
    template = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding),
        state)
  for r in runs:
    r.monitor = dynamics.DynamicsMonitor(
        grad_factor=task.alarm_grad_factor,
        collapse_ratio=task.alarm_collapse_ratio)
    for rec in r.files.writer.records():  # a resumed run's alarms see its history
      if not rec.get('evaluate_only'):
        r.monitor.update(rec)

  def evaluate(state, step, indices) -> dict[int, dict]:
    samples = program.samples(state, runs)
    return {i: runs[i].evaluator(samples[i], step,
                                 sample_dir=runs[i].files.sample_dir(),
                                 writer=runs[i].files.writer)
            for i in indices}

  progress = writers.Progress(config.num_steps, start, prefix=prefix)
  step = start
  while step < config.num_steps and active:
    k = min(config.steps_per_dispatch, config.num_steps - step)
    draws = [[[next(r.iterator) for _ in range(task.draws_per_step)]
              for _ in range(k)] for r in runs]
    new_state, metrics = program.multi_step(state, program.batch(draws),
                                            program.keys(runs),
                                            *program.step_args(runs))
    # One sync per dispatch.
    per_run = program.split(jax.device_get(metrics), runs)
    for r in runs:  # a checkpoint save that failed in the background
      r.files.ckpt.check()
    rolled_back = False
    for i in list(active):
      r, m = runs[i], per_run[i]
      bad = [name for name, v in m.items() if not np.all(np.isfinite(v))]
      if not bad:
        continue
      first = int(np.argmax(~np.isfinite(m[bad[0]])))
      at = step + first + 1
      if program.group:  # the run finishes alone, under train's policy
        r.handed_back = {'status': 'single', 'step': at,
                         'reason': f'non-finite {bad} at step {at}'}
        active.remove(i)
        continue
      values = {n: float(np.asarray(m[n])[first]) for n in bad}
      state, step = _roll_back_or_stop(task, program, r, bad, values, at,
                                       template)
      rolled_back = True
    if rolled_back:
      continue
    state = new_state
    step += k
    for i in active:
      runs[i].chunks.append(per_run[i])
    is_last = step == config.num_steps
    if active and (step % config.log_every == 0 or is_last):
      records = {i: workdir_lib.host_means(runs[i].chunks) for i in active}
      for r in runs:
        r.chunks = []
      extras = program.log_inputs(state)
      for i in active:
        records[i].update(task.log_extras(extras[i]))
      if step % config.eval_every == 0 or is_last:
        for i, result in evaluate(state, step, active).items():
          records[i].update(result)
      for i in active:
        alarms = runs[i].monitor.update(records[i])
        if alarms:
          records[i]['alarms'] = alarms
          logging.warning('%s step %d: alarms %s', runs[i].files.workdir,
                          step, alarms)
        runs[i].files.writer.write(step, records[i])
        runs[i].last = records[i]
      progress.report(step, [records[i] for i in active])
    # A SIGTERM may reach one host only: all processes agree on it at each
    # dispatch, so all checkpoint this step and stop together.
    stop = distributed.any_process(sigterm.requested) and not is_last
    if active and (step % config.checkpoint_every == 0 or is_last or stop):
      program.save(state, runs, active, step)
    if stop:
      for r in runs:
        r.files.ckpt.wait()
      raise Preempted(step)
  missing = [i for i in active if runs[i].last is None]
  if missing:  # resumed finished runs: report their final evaluation
    for i, result in evaluate(state, step, missing).items():
      runs[i].last = dict(result)
  out = []
  for r in runs:
    if r.handed_back is not None:
      out.append(r.handed_back)
    else:
      out.append({**r.last, 'step': step,
                  **({'status': 'ok'} if program.group else {})})
  return out
