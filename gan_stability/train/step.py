"""The GAN train step: ``(state, batch, key) -> (state, metrics)``, pure.

One train step is ``n_critic`` discriminator updates, each on its own real
batch, followed by one generator update; ``state.step`` counts generator
updates. The recipe (losses, penalty, optimisers, clipping, EMA) is fixed by
the config when the step is built; nothing branches on strings at run time.

Data parallelism: the step contains no collectives of its own. It is
jit-compiled with the state replicated and the batch sharded along its batch
axis over a ``'data'`` mesh axis (see :mod:`gan_stability.train.parallel`);
XLA's SPMD partitioner inserts the all-reduces. The latents are drawn for the
whole global batch and constrained to the same sharding, so with
``jax_threefry_partitionable`` (the default) every device count sees the same
numbers and differs only in float reduction order.

Class-conditional models (``config.model.num_classes = K > 0``):
``batch['label']`` (int32 ``[n_critic, B]``, sharded like ``batch['x']``)
holds the real labels; the fake labels are uniform on ``{0, ..., K-1}``,
drawn as ``randint(fold_in(k_z, FAKE_LABEL_STREAM), [B], 0, K)`` where
``k_z`` is the key of that update's latents (so the latents, and every other
key, are the unconditional ones). G and D receive the labels; the gradient
penalty sees D with labels closed over: the fake labels for R2 (on fake
samples), the real labels for R1 (on data) and for GP, whose interpolates
``eps x + (1 - eps) G(z, y_fake)`` are evaluated at the real example's class
(the penalty functions themselves know nothing of labels).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from gan_stability import kernels, losses, penalties
from gan_stability.train.state import GANState, make_optimizers

Metrics = dict[str, jax.Array]

# ``fold_in`` data of the fake-label key, derived from the latent key.
FAKE_LABEL_STREAM = 0x4C41424C  # 'LABL'


def resolve_loop_impl(config) -> bool:
  """Whether the ``n_critic`` and ``steps_per_dispatch`` loops are unrolled
  (``config.loop_impl``, :func:`gan_stability.kernels.unroll_loops`)."""
  return kernels.unroll_loops(
      config.get('loop_impl', 'auto'), conv_model=config.model.name != 'mlp',
      conv_impl=config.model.get('conv_impl', 'auto'))


def _mean(x):
  return jnp.mean(x.astype(jnp.float32))


def make_train_step(config, generator, discriminator, *,
                    latent_sharding: Any = None
                    ) -> Callable[[GANState, dict, jax.Array],
                                  tuple[GANState, Metrics]]:
  """Builds the pure train step for ``config``.

  Args:
    config: a validated training config.
    generator, discriminator: Flax modules (``G(z, train=)`` and
      ``D(x, update_stats=, train=)``).
    latent_sharding: optional sharding for the latent batch (the batch's
      sharding without its leading ``n_critic`` axis); ``None`` on one device.

  Returns:
    ``train_step(state, batch, key) -> (state, metrics)`` where
    ``batch['x']`` has shape ``[n_critic, B, ...]``: real batch ``i`` feeds
    discriminator update ``i``.
  """
  d_loss_fn, g_loss_fn = losses.get_losses(config.loss)
  penalty_fn = penalties.get_penalty(config.penalty, target=config.gp_target)
  penalty_weight = float(config.penalty_weight)
  d_clip = float(config.d_clip)
  ema_decay = float(config.ema_decay)
  ema_start = int(config.ema_start)
  z_dim = config.model.z_dim
  num_classes = int(config.model.get('num_classes', 0))
  # Which labels the penalty's D sees (see the module docstring).
  penalty_on_fake = config.penalty == 'r2'
  g_opt, d_opt = make_optimizers(config)
  unroll = resolve_loop_impl(config)

  def constrain(x):
    if latent_sharding is None:
      return x
    return jax.lax.with_sharding_constraint(x, latent_sharding)

  def fake_labels(key, batch_size):
    """Uniform class labels for the samples whose latents use ``key``."""
    if not num_classes:
      return None
    k_y = jax.random.fold_in(key, FAKE_LABEL_STREAM)
    return constrain(jax.random.randint(k_y, (batch_size,), 0, num_classes,
                                        jnp.int32))

  def cond(labels):
    return {} if labels is None else {'labels': labels}

  def generate(g_params, g_cols, key, batch_size):
    """Samples in train mode; returns (samples, updated G collections,
    their labels or None)."""
    z = constrain(jax.random.normal(key, (batch_size, z_dim), jnp.float32))
    labels = fake_labels(key, batch_size)
    variables = {'params': g_params, **g_cols}
    if g_cols:
      x, g_cols = generator.apply(variables, z, train=True,
                                  mutable=list(g_cols), **cond(labels))
      return x, g_cols, labels
    x = generator.apply(variables, z, train=True, **cond(labels))
    return x, g_cols, labels

  def d_apply(d_params, d_cols, x, update_stats, labels=None):
    """D in train mode. Only the pass with ``update_stats`` keeps the new
    collections (spectral-norm vectors, batch-norm averages); other passes
    are applied with the collections mutable and their updates dropped."""
    variables = {'params': d_params, **d_cols}
    if not d_cols:
      return discriminator.apply(variables, x, update_stats=False,
                                 train=True, **cond(labels)), d_cols
    logits, new = discriminator.apply(variables, x, update_stats=update_stats,
                                      train=True, mutable=list(d_cols),
                                      **cond(labels))
    return logits, ({**d_cols, **new} if update_stats else d_cols)

  def d_update(carry, inputs):
    d_params, d_opt_state, d_cols, g_params, g_cols = carry
    real, real_labels, key = inputs
    k_z, k_pen = jax.random.split(key)
    fake, _, fake_y = generate(g_params, g_cols, k_z, real.shape[0])
    fake = jax.lax.stop_gradient(fake)
    pen_labels = fake_y if penalty_on_fake else real_labels

    def loss_fn(params):
      # Spectral-norm power iteration advances once per D update (on the
      # real pass); the fake pass and the penalty start from the same stored
      # vector, so all three see the same normalised weights.
      real_logits, new_cols = d_apply(params, d_cols, real, True, real_labels)
      fake_logits, _ = d_apply(params, d_cols, fake, False, fake_y)
      adv = d_loss_fn(real_logits, fake_logits)
      if penalty_fn is None:
        pen = jnp.zeros((), jnp.float32)
      else:
        d_fn = lambda x: d_apply(params, d_cols, x, False, pen_labels)[0]
        pen = penalty_fn(d_fn, real, fake, k_pen)
      total = adv + penalty_weight * pen
      return total, (adv, pen, _mean(real_logits), _mean(fake_logits), new_cols)

    (_, (adv, pen, d_real, d_fake, new_cols)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(d_params)
    updates, d_opt_state = d_opt.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if d_clip > 0:
      d_params = jax.tree.map(lambda p: jnp.clip(p, -d_clip, d_clip), d_params)
    metrics = {'d_loss': adv, 'penalty': pen, 'd_real': d_real,
               'd_fake': d_fake, 'd_grad_norm': optax.tree.norm(grads),
               'd_update_norm': optax.tree.norm(updates)}
    return (d_params, d_opt_state, new_cols, g_params, g_cols), metrics

  def train_step(state: GANState, batch: dict, key: jax.Array
                 ) -> tuple[GANState, Metrics]:
    real = batch['x']
    real_labels = None
    if num_classes:
      if 'label' not in batch:
        raise ValueError('config.model.num_classes: a class-conditional '
                         f'model (num_classes={num_classes}) needs '
                         "batch['label']")
      real_labels = batch['label']
    n_critic = real.shape[0]
    keys = jax.random.split(key, n_critic + 1)
    carry = (state.d_params, state.d_opt_state, state.d_collections,
             state.g_params, state.g_collections)
    (d_params, d_opt_state, d_cols, _, _), d_metrics = jax.lax.scan(
        d_update, carry, (real, real_labels, keys[:n_critic]), unroll=unroll)
    d_metrics = jax.tree.map(jnp.mean, d_metrics)  # mean over critic updates

    def g_loss(params):
      fake, new_g_cols, fake_y = generate(params, state.g_collections,
                                          keys[-1], real.shape[1])
      logits, _ = d_apply(d_params, d_cols, fake, False, fake_y)
      return g_loss_fn(logits), (new_g_cols, _mean(logits))

    (g_loss_value, (g_cols, d_fake_after)), g_grads = jax.value_and_grad(
        g_loss, has_aux=True)(state.g_params)
    g_updates, g_opt_state = g_opt.update(g_grads, state.g_opt_state,
                                          state.g_params)
    g_params = optax.apply_updates(state.g_params, g_updates)

    g_ema = state.g_ema_params
    if g_ema is not None:
      decay = jnp.where(state.step >= ema_start, ema_decay, 0.0)
      g_ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                           g_ema, g_params)

    new_state = GANState(
        step=state.step + 1, g_params=g_params, d_params=d_params,
        g_opt_state=g_opt_state, d_opt_state=d_opt_state,
        g_collections=g_cols, d_collections=d_cols, g_ema_params=g_ema)
    g_norm = optax.tree.norm(g_params)
    d_norm = optax.tree.norm(d_params)
    d_update_norm = d_metrics.pop('d_update_norm')
    metrics = {
        **d_metrics,
        'd_gap': d_metrics['d_real'] - d_metrics['d_fake'],
        'g_loss': g_loss_value,
        'g_d_fake': d_fake_after,
        'g_grad_norm': optax.tree.norm(g_grads),
        'g_param_norm': g_norm,
        'd_param_norm': d_norm,
        'g_update_ratio': optax.tree.norm(g_updates) / (g_norm + 1e-12),
        'd_update_ratio': d_update_norm / (d_norm + 1e-12),
    }
    return new_state, metrics

  return train_step


def make_multi_step(train_step, *, unroll: bool = False):
  """Fuses ``k`` train steps into one call: ``(state, batches, root_key)``.

  ``batches['x']`` has shape ``[k, n_critic, B, ...]``; step ``s`` uses the key
  ``fold_in(root_key, s)`` with ``s = state.step`` before that step, so the
  key stream depends only on the root key and the step (resumable, and
  independent of ``k``). Returns the final state and metrics stacked ``[k]``.
  ``unroll`` emits the ``k`` steps as straight-line code instead of a scan
  (see :func:`resolve_loop_impl`).
  """

  def multi_step(state, batches, root_key):
    def body(st, batch):
      return train_step(st, batch, jax.random.fold_in(root_key, st.step))
    return jax.lax.scan(body, state, batches, unroll=unroll)

  return multi_step


def make_sample_fn(generator, z_dim: int):
  """``sample(g_params, g_collections, key, n, labels=None) -> [n, ...]`` in
  eval mode; ``labels`` (int ``[n]``) only for class-conditional G."""

  def sample(g_params, g_cols, key, n, labels=None):
    z = jax.random.normal(key, (n, z_dim), jnp.float32)
    cond = {} if labels is None else {'labels': labels}
    return generator.apply({'params': g_params, **g_cols}, z, train=False,
                           **cond)

  return sample


def grid_labels(n: int, *, samples_per_row: int, num_classes: int):
  """int32 ``[n]`` labels of a conditional sample grid, or None for
  ``num_classes == 0``: sample ``i`` sits in row ``i // samples_per_row`` and
  gets class ``row mod num_classes`` (class k in row k, k + K, ...). Every
  class is equally frequent when ``n`` is a multiple of ``samples_per_row *
  num_classes`` (the conditional configs use a K x K grid): metrics of the
  class histogram are biased otherwise."""
  if not num_classes:
    return None
  rows = np.arange(n) // samples_per_row
  return (rows % num_classes).astype(np.int32)


def sample_labels(config, n: int):
  """The labels of ``n`` evaluation samples of ``config``'s model: the
  :func:`grid_labels` of its sample grid (``config.data.samples_per_row``),
  or None for an unconditional model."""
  num_classes = int(config.model.get('num_classes', 0))
  if not num_classes:
    return None
  return grid_labels(n, num_classes=num_classes,
                     samples_per_row=config.data.samples_per_row)


def chunked_sampler(sample, config, chunk: int):
  """``sample_fn(key, n, labels=None) -> np.ndarray [n, ...]`` from a jitted
  ``sample(key, m, labels_or_None)``: ``n`` samples in chunks of at most
  ``chunk`` (chunk ``i`` uses ``fold_in(key, i)``). A conditional model's
  labels default to :func:`sample_labels` ``(config, n)``."""
  conditional = bool(config.model.get('num_classes', 0))

  def sample_fn(key, n, labels=None):
    if labels is None:
      labels = sample_labels(config, n)
    elif not conditional:
      raise ValueError('labels=: the model is unconditional '
                       '(config.model.num_classes=0)')
    else:
      labels = np.asarray(labels, np.int32)
      if labels.shape != (n,):
        raise ValueError(f'labels=: expected shape ({n},), got {labels.shape}')
    chunks = []
    for i, start in enumerate(range(0, n, chunk)):
      m = min(chunk, n - start)
      y = None if labels is None else labels[start:start + m]
      chunks.append(np.asarray(sample(jax.random.fold_in(key, i), m, y)))
    return np.concatenate(chunks)

  return sample_fn
