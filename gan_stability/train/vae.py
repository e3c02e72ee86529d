"""The VAE baseline: state, train step and ``train_vae(config, workdir)``.

A variational auto-encoder (Kingma & Welling 2014; class-conditional: Sohn
et al. 2015) on the GANs' data, with the GANs' networks
(:mod:`gan_stability.models.vae`: the DCGAN generator as decoder, the DCGAN
discriminator body as encoder), trained by Adam on the negative ELBO of
:mod:`gan_stability.elbo`, and evaluated by the same evaluator as the GANs
(:mod:`gan_stability.evaluation`: Stacked-MNIST modes, FID / KID,
precision / recall, density / coverage, ...). Samples are the decoder means
``tanh(h(z))`` of ``z ~ N(0, I)``.

The workdir contract is the GANs' (``gan_stability/train/loop.py``):
``config.json``, ``metrics.jsonl`` (``neg_elbo``, ``nll``, ``kl_prior``: nats per
image, ``grad_norm``, ``param_norm``, and the evaluation metrics),
``samples/``, ``checkpoints/``; rerunning resumes exactly (the data position,
optimiser state and step are restored; the key of step ``s`` is
``fold_in(train_key, s)``). SIGTERM checkpoints and raises ``Preempted``; a
non-finite loss raises ``DivergenceError`` without checkpointing.
The batch is split over ``config.num_devices`` devices (``jit`` with a
``'data'`` mesh), so the batch-norm statistics and the loss are those of the
global batch, whatever the device count.
"""

from __future__ import annotations

import os

import flax
import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging

from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import elbo, evaluation, writers
from gan_stability import checkpoint
from gan_stability.checkpoint import Checkpointer
from gan_stability.models import vae as vae_models
from gan_stability.kernels import compile_options
from gan_stability.train import loop, parallel
from gan_stability.train import state as state_lib
from gan_stability.train import step as step_lib

SAMPLE_CHUNK = 1000


@flax.struct.dataclass
class VAEState:
  """All mutable VAE training state.

  Attributes:
    step: completed updates (int32 scalar).
    params: ``{'decoder': ..., 'encoder': ...}``.
    opt_state: the optax state of the single optimiser over ``params``.
    dec_collections: the decoder's non-parameter collections
      (``batch_stats`` with ``model.g_norm='batch'``).
  """
  step: jax.Array
  params: dict
  opt_state: optax.OptState
  dec_collections: dict


def make_optimizer(config) -> optax.GradientTransformation:
  """``config.optimizer`` (adam | rmsprop | sgd) at ``optimizer.lr``,
  optionally decayed linearly to 0 over ``num_steps``."""
  return state_lib.make_optimizer(config.optimizer, config.optimizer.lr,
                                  config.num_steps)


def _cond(labels) -> dict:
  return {} if labels is None else {'labels': labels}


def init_state(config, decoder, encoder, key: jax.Array,
               data_shape: tuple[int, ...]) -> VAEState:
  """Initial state (unsharded), a pure function of ``key`` and the config."""
  kd, ke = jax.random.split(key)
  cond = (_cond(jnp.zeros((1,), jnp.int32))
          if config.model.num_classes else {})
  dec_vars = flax.core.unfreeze(decoder.init(
      kd, jnp.zeros((1, config.model.z_dim), jnp.float32), train=False, **cond))
  enc_vars = flax.core.unfreeze(encoder.init(
      ke, jnp.zeros((1,) + tuple(data_shape), jnp.float32), **cond))
  params = {'decoder': dec_vars.pop('params'),
            'encoder': enc_vars.pop('params')}
  return VAEState(step=jnp.zeros((), jnp.int32), params=params,
                  opt_state=make_optimizer(config).init(params),
                  dec_collections=dec_vars)


def make_train_step(config, decoder, encoder):
  """``train_step(state, batch, key) -> (state, metrics)``.

  ``batch`` is ``{'x': [B, H, W, C]}`` (plus ``'label': [B]`` for a
  conditional VAE); one reparameterised draw of ``z`` per example with
  ``key``; the loss is the batch mean of
  :func:`gan_stability.elbo.negative_elbo`. Metrics: ``neg_elbo``
  (``nll + beta * kl_prior``), ``nll``, ``kl_prior`` (batch means, nats per
  image; ``kl_prior`` is KL(q(z|x) || p(z)), not the evaluation's mode
  ``kl``), ``grad_norm``, ``param_norm``.
  """
  tx = make_optimizer(config)
  v = config.vae

  def loss_fn(params, cols, x, labels, key):
    mean, log_var = encoder.apply({'params': params['encoder']}, x,
                                  **_cond(labels))
    z = elbo.reparameterize(key, mean, log_var)
    variables = {'params': params['decoder'], **cols}
    if cols:
      h, new_cols = decoder.apply(variables, z, train=True,
                                  mutable=list(cols), **_cond(labels))
    else:
      h, new_cols = decoder.apply(variables, z, train=True,
                                  **_cond(labels)), cols
    loss, nll, kl = elbo.negative_elbo(h, x, mean, log_var,
                                       likelihood=v.likelihood,
                                       sigma=v.sigma, beta=v.beta)
    return jnp.mean(loss), (new_cols, jnp.mean(nll), jnp.mean(kl))

  def train_step(state, batch, key):
    grads, (new_cols, nll, kl) = jax.grad(loss_fn, has_aux=True)(
        state.params, state.dec_collections, batch['x'], batch.get('label'),
        key)
    # The loss is recomputed from its parts rather than returned twice.
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    metrics = {'neg_elbo': nll + v.beta * kl, 'nll': nll, 'kl_prior': kl,
               'grad_norm': optax.global_norm(grads),
               'param_norm': optax.global_norm(params)}
    return state.replace(step=state.step + 1, params=params,
                         opt_state=opt_state,
                         dec_collections=new_cols), metrics

  return train_step


def make_sample_fn(decoder, z_dim: int):
  """``sample(dec_params, dec_collections, key, n, labels=None) -> [n, ...]``
  decoder means ``tanh(h(z))``, ``z ~ N(0, I)``, in eval mode."""

  def sample(dec_params, dec_cols, key, n, labels=None):
    z = jax.random.normal(key, (n, z_dim), jnp.float32)
    h = decoder.apply({'params': dec_params, **dec_cols}, z, train=False,
                      **_cond(labels))
    return elbo.decoder_mean(h)

  return sample


def _build(config):
  iterator = data_lib.make_iterator(config, seed=config.seed)
  data_shape = iterator.element_shape
  decoder, encoder = vae_models.build(config.model, data_shape)
  return iterator, data_shape, decoder, encoder


def train_vae(config, workdir: str) -> dict:
  """Trains (or resumes) the VAE run in ``workdir``; returns the final
  metrics (the last log record, with the evaluation).

  Raises:
    ConfigError: invalid config, or one that differs from the workdir's.
    DivergenceError: a non-finite loss or gradient norm.
    Preempted: SIGTERM arrived; the state was checkpointed first.
  """
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  loop.check_config_file(config, workdir)

  mesh = parallel.make_mesh(config.num_devices)
  evaluator = evaluation.make_evaluator(config, workdir=workdir)
  iterator, data_shape, decoder, encoder = _build(config)
  init_key, train_key, eval_key = jax.random.split(
      jax.random.key(config.seed), 3)
  repl = parallel.replicated(mesh)
  state = jax.device_put(init_state(config, decoder, encoder, init_key,
                                    data_shape), repl)
  ckpt = Checkpointer(os.path.join(workdir, 'checkpoints'),
                      max_to_keep=config.keep_checkpoints)
  writer = writers.MetricWriter(workdir, tensorboard=config.write_tensorboard)
  start, state, meta, _ = ckpt.restore_latest(state)
  chunks: list[dict] = []
  if start is not None:
    iterator.set_state(meta['data'])
    chunks = loop.pending_from_json(meta.get('pending'))
    logging.info('resumed %s at step %d', workdir, start)
    writer.truncate_after(start)
  else:
    start = 0
    writer.truncate_after(0)

  batch_axis = 1  # [k, B, ...]
  bsharding = parallel.batch_sharding(mesh, batch_axis)
  conditional = bool(config.model.num_classes)
  names = ('x', 'label') if conditional else ('x',)
  multi_step = jax.jit(
      step_lib.make_multi_step(make_train_step(config, decoder, encoder),
                               unroll=step_lib.resolve_loop_impl(config)),
      in_shardings=(repl, {n: bsharding for n in names}, repl),
      out_shardings=(repl, repl), donate_argnums=0,
      compiler_options=compile_options.compiler_options(
          config.get('cpu_ynn_fusions', 'xla')))
  sample = jax.jit(make_sample_fn(decoder, config.model.z_dim),
                   static_argnums=3)
  eval_labels = step_lib.sample_labels(config, config.eval_samples)

  def evaluate(state, step):
    samples = np.asarray(jax.device_get(sample(
        state.params['decoder'], state.dec_collections, eval_key,
        config.eval_samples, eval_labels)))
    sample_dir = None
    if config.write_samples and jax.process_index() == 0:
      sample_dir = os.path.join(workdir, 'samples')
      os.makedirs(sample_dir, exist_ok=True)
    return evaluator(samples, step, sample_dir=sample_dir, writer=writer)

  def save(step):
    ckpt.save(step, state, {'data': iterator.get_state(), 'step': step,
                            'pending': loop.pending_to_json(chunks)})

  progress = writers.Progress(config.num_steps, start)
  step, last = start, {}
  sigterm = loop.SigtermFlag().__enter__()
  try:
    while step < config.num_steps:
      k = min(config.steps_per_dispatch, config.num_steps - step)
      draws = [next(iterator) for _ in range(k)]
      if conditional:
        batch = {n: np.stack([d[n] for d in draws]) for n in names}
      else:
        batch = {'x': np.stack(draws)}
      batch = {n: parallel.global_batch(a, bsharding, batch_axis)
               for n, a in batch.items()}
      new_state, metrics = multi_step(state, batch, train_key)
      metrics = jax.device_get(metrics)  # one sync per dispatch
      bad = [n for n, val in metrics.items() if not np.all(np.isfinite(val))]
      if bad:
        first = int(np.argmax(~np.isfinite(metrics[bad[0]])))
        writer.write(step + first + 1, {'diverged': True, 'bad_metrics': bad})
        ckpt.wait()
        raise loop.DivergenceError(
            f'non-finite {bad} at step {step + first + 1}; last checkpoint '
            f'kept at step {ckpt.latest_step()}')
      state = new_state
      step += k
      chunks.append(metrics)
      is_last = step == config.num_steps
      if step % config.log_every == 0 or is_last:
        record = loop.host_means(chunks)
        chunks = []
        if step % config.eval_every == 0 or is_last:
          record.update(evaluate(state, step))
        writer.write(step, record)
        progress.report(step, record)
        last = record
      loop.checkpoint_or_stop(config, step, save, sigterm, ckpt)
  finally:
    sigterm.__exit__()
    ckpt.close()
    writer.close()
  if not last:  # resumed a finished run
    last = dict(evaluate(state, step))
  last['step'] = step
  return last


def restore_sampler(config, workdir: str, step: int | None = None):
  """``(sample_fn, step)``: ``sample_fn(key, n, labels=None)`` draws ``n``
  decoder means from checkpoint ``step`` (default: the latest). Labels
  default to the evaluation grid's (:func:`step.sample_labels`)."""
  _, data_shape, decoder, encoder = _build(config)
  state = init_state(config, decoder, encoder,
                     jax.random.split(jax.random.key(config.seed), 3)[0],
                     data_shape)
  state, step = checkpoint.restore_run_state(workdir, state, step)
  sample = jax.jit(make_sample_fn(decoder, config.model.z_dim),
                   static_argnums=3)
  return step_lib.chunked_sampler(
      lambda key, m, y: sample(state.params['decoder'], state.dec_collections,
                               key, m, y), config, SAMPLE_CHUNK), step
