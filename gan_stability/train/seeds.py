"""Several runs of one config trained as one compiled program (vmap).

For small models (the 2-D MLPs) the runs of one config that differ only in
their seed, and in vmappable hyper-parameters (``Field.vmappable`` in
:mod:`gan_stability.config.schema`: ``penalty_weight``, the learning rates,
``ema_decay``, ...), are stacked along a new leading axis and the loop's
multi-step is ``vmap``-ed over it: one compilation, one dispatch and one
evaluation call per step for all of them
(:func:`gan_stability.train.loop.train_group`). The hyper-parameters are an
input of the step (``make_train_step(..., hparams=...)``), never part of
the state. Per member it is a single run:

* member ``i`` uses exactly the keys, initial state and data batches of a
  single run of its config, and the step computes its numbers with its
  values, so results equal one-by-one runs up to float reduction order
  (``tests/test_sweep.py`` and ``tests/test_hparam_axes.py`` assert
  agreement to rtol 1e-4 / 1e-5);
* each member has its own run directory in the single-run layout (the loop
  writes it with the same code: config, metrics records, checkpoints), so a
  member can be resumed alone and the report reads it like any run;
* a member whose loss becomes non-finite, or whose checkpoint does not
  restore, leaves the group and is handed back with status ``'single'``:
  the caller finishes it with ``train_and_evaluate``, which applies the
  divergence policy of the config (stop with a ``diverged`` record, or roll
  back); the others go on;
* resuming restores every member from its own latest checkpoint; members
  whose checkpoints are at different steps run as separate groups, and so
  do members whose states differ in layout (``ema_decay`` or
  ``lecam_weight`` 0 and > 0: the state has no EMA / no LeCam anchors).

The stacked program runs on one device (no data parallelism), for GANs only.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from gan_stability import config as config_lib
from gan_stability.checkpoint import Checkpointer
from gan_stability.train import loop
from gan_stability.train import tasks


def seed_config(config, seed: int):
  """A copy of ``config`` with ``seed`` set."""
  c = config.copy_and_resolve_references()
  c.seed = int(seed)
  return c


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
  if len(seeds) != len(workdirs) or len(set(seeds)) != len(seeds):
    raise ValueError(f'train_seeds: need distinct seeds, one workdir each '
                     f'(got seeds {seeds}, {len(workdirs)} workdirs)')
  return train_points([seed_config(config, s) for s in seeds], workdirs,
                      log_prefix=log_prefix)


def train_points(configs: Sequence[Any], workdirs: Sequence[str], *,
                 log_prefix: str = '') -> list[dict]:
  """Trains (or resumes) ``configs`` as vmapped programs.

  Args:
    configs: training configs that differ only in ``seed`` and in fields
      the schema marks ``vmappable`` (e.g. the points of a sweep's group
      with ``in_one_program`` axes); no two alike.
    workdirs: one run directory per config (the single-run layout).
    log_prefix: prefix of the progress lines.

  Returns:
    Per config, as :func:`train_seeds`.

  Raises:
    ConfigError: a config that does not validate, or not a GAN.
    ValueError: configs that differ in a field that is not vmappable
      (named), repeated configs or workdirs.

  The configs run as one program per (start step, state layout): members
  resume from their own checkpoints.
  """
  configs, workdirs = list(configs), list(workdirs)
  if not configs or len(configs) != len(workdirs):
    raise ValueError(f'train_points: need one workdir per config (got '
                     f'{len(configs)} configs, {len(workdirs)} workdirs)')
  for c in configs:
    if config_lib.family(c) != 'gan':
      raise config_lib.ConfigError(
          f"config.family: {c.family!r} runs cannot share one vmapped "
          'program (GANs only); set seeds_in_one_program=False in the '
          'sweep')
  flat = [tuple(sorted(config_lib.flatten(c).items(), key=str))
          for c in configs]
  if len(set(flat)) != len(flat) or len(set(workdirs)) != len(workdirs):
    raise ValueError('train_points: the configs and the workdirs must be '
                     'distinct')
  for c, wd in zip(configs, workdirs):
    config_lib.validate(c)
    os.makedirs(wd, exist_ok=True)
  task = tasks.make_task(configs[0])
  hparams = loop.group_hparams(task, configs)  # before anything compiles
  layouts: dict[tuple, Any] = {}  # by the branches taken (values > 0)

  def layout(c):
    if not hparams:
      return None
    on = tuple(loop.hparam_value(c, f) > 0 for f in hparams)
    if on not in layouts:
      layouts[on] = loop.state_layout(type(task)(c, task.data_shape))
    return layouts[on]

  # One group per start step and state layout.
  kinds = list(dict.fromkeys(layout(c) for c in configs))
  groups: dict[tuple, list[int]] = {}
  for i, (c, wd) in enumerate(zip(configs, workdirs)):
    ckpt = Checkpointer(os.path.join(wd, 'checkpoints'))
    start = ckpt.latest_step() or 0
    ckpt.close()
    groups.setdefault((start, kinds.index(layout(c))), []).append(i)
  results: list[dict | None] = [None] * len(configs)
  for _, idx in sorted(groups.items()):
    out = loop.train_group(task, [configs[i] for i in idx],
                           [workdirs[i] for i in idx], prefix=log_prefix)
    for i, r in zip(idx, out):
      results[i] = r
  return results
