"""Several seeds of one config trained as one compiled program (vmap).

For small models (the 2-D MLPs) the seeds of one config are stacked along a
new leading axis and the loop's multi-step is ``vmap``-ed over it: one
compilation, one dispatch and one evaluation call per step for all seeds
(:func:`gan_stability.train.loop.train_group`). Per seed it is a single run:

* seed ``s`` uses exactly the keys, initial state and data batches of a
  single run with ``config.seed = s``, so results equal one-by-one runs up to
  float reduction order (``tests/test_sweep.py`` asserts agreement to
  rtol 1e-4, atol 1e-5);
* each seed has its own run directory in the single-run layout (the loop
  writes it with the same code), so a seed can be resumed alone and the
  report reads it like any run;
* a seed whose loss becomes non-finite, or whose checkpoint does not
  restore, leaves the group and is handed back with status ``'single'``: the
  caller finishes it with ``train_and_evaluate``, which applies the
  divergence policy of the config (stop with a ``diverged`` record, or roll
  back); the other seeds go on;
* resuming restores every seed from its own latest checkpoint; seeds whose
  checkpoints are at different steps run as separate groups.

The stacked program runs on one device (no data parallelism), for GANs only.
"""

from __future__ import annotations

import os

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
  if config_lib.family(config) != 'gan':
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
  task = tasks.make_task(configs[0])
  # Seeds resume from their own checkpoints; one group per start step.
  by_start: dict[int, list[int]] = {}
  for i, wd in enumerate(workdirs):
    ckpt = Checkpointer(os.path.join(wd, 'checkpoints'))
    by_start.setdefault(ckpt.latest_step() or 0, []).append(i)
    ckpt.close()
  results: list[dict | None] = [None] * len(seeds)
  for _, idx in sorted(by_start.items()):
    out = loop.train_group(task, [configs[i] for i in idx],
                           [workdirs[i] for i in idx], prefix=log_prefix)
    for i, r in zip(idx, out):
      results[i] = r
  return results
