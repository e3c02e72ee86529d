"""The training tasks by family, and the entry points that pick one.

:data:`TASKS` maps ``config.family`` (``'gan'`` when absent; the schema's
:data:`gan_stability.config.FAMILIES`) to its
:class:`~gan_stability.train.task.Task`. :func:`train_and_evaluate` is the one
way to train a run (flax's ``examples/imagenet`` convention);
:func:`restore_sampler` samples from a run's checkpoint with the same
code the loop evaluates with.
"""

from __future__ import annotations

import os

import jax

from gan_stability import checkpoint
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability.train import gan, loop, vae
from gan_stability.train import task as task_lib

TASKS = {'gan': gan.GANTask, 'vae': vae.VAETask}
assert set(TASKS) == set(config_lib.FAMILIES), 'a family without a task'

SAMPLE_CHUNK = 1000  # generator batch when drawing many samples offline


def make_task(config) -> task_lib.Task:
  """The task of a validated ``config`` (its data shape read from the data
  source)."""
  data_shape = data_lib.make_iterator(config, seed=config.seed).element_shape
  return TASKS[config_lib.family(config)](config, data_shape)


def train_and_evaluate(config, workdir: str) -> dict:
  """Trains (or resumes) the run of ``config`` in ``workdir``; returns the
  final record (the last log record, with its evaluation, and ``step``).

  The config is validated before anything is built or compiled. See
  :func:`gan_stability.train.loop.train` for the errors.
  """
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  return loop.train(make_task(config), workdir)


def restore_sampler(config, workdir: str, step: int | None = None):
  """``(sample_fn, step)``: ``sample_fn(key, n, labels=None)`` draws ``n``
  samples (numpy) from the sampling network of checkpoint ``step`` (default:
  the latest) of the run in ``workdir``: the GAN's evaluation generator (the
  EMA weights when kept), the VAE's decoder means. Conditional models take
  ``labels`` (int ``[n]``; default: the labels of the loop's sample grid,
  :func:`gan_stability.train.task.sample_labels`)."""
  task = make_task(config)
  template = task.init_state(jax.random.split(jax.random.key(config.seed),
                                              3)[0])
  state, step = checkpoint.restore_run_state(workdir, template, step)
  params, cols = task.sampler_variables(state)
  sample = jax.jit(task.make_sample_fn(), static_argnums=3)
  return task_lib.chunked_sampler(
      lambda key, m, y: sample(params, cols, key, m, y), config,
      SAMPLE_CHUNK), step


def final_samples(config, workdir: str):
  """``config.eval_samples`` samples of the latest checkpoint in ``workdir``
  (no training), from the evaluation key of the run."""
  config_lib.validate(config)
  eval_key = jax.random.split(jax.random.key(config.seed), 3)[2]
  sample_fn, _ = restore_sampler(config, workdir)
  return sample_fn(eval_key, config.eval_samples)
