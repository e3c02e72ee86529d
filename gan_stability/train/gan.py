"""The GAN task: state, pure train step and sampler.

One train step is ``n_critic`` discriminator updates, each on its own real
batch, followed by one generator update; ``state.step`` counts generator
updates. The recipe (losses, penalty, optimisers, clipping, EMA, and the
stabilisers: DiffAugment and instance noise of D's inputs, label smoothing,
a lazy penalty, CR / bCR / zCR; docs/training.md "Stabilisers") is fixed by
the config when the step is built; nothing branches on strings at run time.

Data parallelism: the step contains no collectives of its own. The loop
jit-compiles it with the state replicated and the batch sharded along its
batch axis over a ``'data'`` mesh axis (:mod:`gan_stability.train.parallel`);
XLA's SPMD partitioner inserts the all-reduces. The latents are drawn for the
whole global batch and constrained to the same sharding, so with
``jax_threefry_partitionable`` (the default) every device count sees the same
numbers and differs only in float reduction order.

Class-conditional models (``config.model.num_classes = K > 0``):
``batch['label']`` (int32 ``[n_critic, B]``, sharded like ``batch['x']``)
holds the real labels; the fake labels are uniform on ``{0, ..., K-1}``,
drawn as ``randint(fold_in(k_z, FAKE_LABEL_STREAM), [B], 0, K)`` where
``k_z`` is the key of that update's latents (so the latents, and every other
key, are the unconditional ones). G and D receive the labels; the penalty
sees D with labels closed over, chosen by where the penalty registry says it
is evaluated (``Penalty.at``): the fake labels on fake samples (R2), the
real labels on data (R1) and on interpolates (GP), whose
``eps x + (1 - eps) G(z, y_fake)`` are evaluated at the real example's class
(the penalty functions themselves know nothing of labels).
"""

from __future__ import annotations

from typing import Any, Callable

import flax
import flax.struct
import jax
import jax.numpy as jnp
import optax

from gan_stability import augment, losses, models, optimizers, penalties
from gan_stability import regularizers
from gan_stability.metrics import dynamics
from gan_stability.models import SPECTRAL_STATS
from gan_stability.train import task as task_lib

Metrics = dict[str, jax.Array]

# ``fold_in`` data of the fake-label key, derived from the latent key.
FAKE_LABEL_STREAM = 0x4C41424C  # 'LABL'
# ``fold_in`` data of the stabilisers' keys, derived from an update's key
# (so a run without them draws exactly the numbers it drew before).
AUGMENT_STREAM = 0x41554720     # 'AUG ': DiffAugment of D's inputs
NOISE_STREAM = 0x4E4F4953       # 'NOIS': instance noise
CONSISTENCY_STREAM = 0x43524547  # 'CREG': CR's transform, zCR's latents


@flax.struct.dataclass
class GANState:
  """All mutable training state, as one pytree.

  Attributes:
    step: number of completed generator updates (int32 scalar).
    g_params, d_params: network parameters.
    g_opt_state, d_opt_state: optax states of the two optimisers.
    g_collections: G's non-parameter collections (e.g. ``batch_stats``).
    d_collections: D's non-parameter collections (e.g. ``spectral_stats``,
      the power-iteration vectors of spectral norm).
    g_ema_params: exponential moving average of ``g_params`` (``None`` when
      ``config.ema_decay == 0``).
  """
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_collections: Any
  d_collections: Any
  g_ema_params: Any


def make_optimizers(config) -> tuple[optax.GradientTransformation,
                                     optax.GradientTransformation]:
  """(G optimiser, D optimiser) from ``config.optimizer``.

  With ``lr_schedule='linear'`` the rate decays linearly to 0 over
  ``num_steps`` generator updates (the D schedule counts its
  ``n_critic * num_steps`` updates).
  """
  o = config.optimizer
  return (optimizers.make_optimizer(o, o.g_lr, config.num_steps),
          optimizers.make_optimizer(o, o.d_lr,
                                    config.num_steps * config.n_critic))


def init_state(config, generator, discriminator, key: jax.Array,
               data_shape: tuple[int, ...]) -> GANState:
  """Initial state (unsharded); a pure function of ``key`` and the config."""
  g_opt, d_opt = make_optimizers(config)
  kg, kd = jax.random.split(key)
  pack = config.model.packing
  z = jnp.zeros((pack, config.model.z_dim), jnp.float32)
  x = jnp.zeros((pack,) + tuple(data_shape), jnp.float32)
  # Class-conditional models take labels; unconditional ones are initialised
  # exactly as before (no labels argument).
  cond = ({'labels': jnp.zeros((pack,), jnp.int32)}
          if config.model.get('num_classes', 0) else {})
  g_vars = flax.core.unfreeze(generator.init(kg, z, train=False, **cond))
  d_vars = flax.core.unfreeze(discriminator.init(kd, x, update_stats=False,
                                                 **cond))
  g_params, d_params = g_vars.pop('params'), d_vars.pop('params')
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_params, d_params=d_params,
      g_opt_state=g_opt.init(g_params), d_opt_state=d_opt.init(d_params),
      g_collections=g_vars, d_collections=d_vars,
      # A copy, not an alias: the train step donates the state's buffers.
      g_ema_params=(jax.tree.map(jnp.copy, g_params)
                    if config.ema_decay > 0 else None),
  )


def eval_generator_params(state: GANState):
  """The G parameters to evaluate with: the EMA when kept, else the live ones."""
  return state.g_ema_params if state.g_ema_params is not None else state.g_params


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
  penalty = penalties.PENALTIES.get(config.penalty)
  penalty_fn = penalties.get_penalty(
      config.penalty, **{arg: config[field] for arg, field in (
          penalty.params.items() if penalty else ())})
  penalty_weight = float(config.penalty_weight)
  d_clip = float(config.d_clip)
  ema_decay = float(config.ema_decay)
  ema_start = int(config.ema_start)
  z_dim = config.model.z_dim
  num_classes = int(config.model.get('num_classes', 0))
  # Which labels the penalty's D sees (see the module docstring).
  penalty_on_fake = penalty is not None and penalty.at == 'fake'
  g_opt, d_opt = make_optimizers(config)
  unroll = task_lib.loop_unroll(config)
  # The stabilisers (absent from configs written before 0.2.0: off).
  use_augment = config.get('augment', 'none') == 'diffaugment'
  policy = config.get('augment_policy', 'color,translation,cutout')
  noise0 = float(config.get('instance_noise', 0.0))
  noise_steps = int(config.get('instance_noise_steps', 0))
  smoothing = float(config.get('label_smoothing', 0.0))
  penalty_every = int(config.get('penalty_every', 1))
  consistency = config.get('consistency', 'none')
  cr_real = float(config.get('cr_weight_real', 10.0))
  cr_fake = float(config.get('cr_weight_fake', 10.0))
  zcr_sigma = float(config.get('zcr_sigma', 0.03))
  zcr_d = float(config.get('zcr_weight_d', 5.0))
  zcr_g = float(config.get('zcr_weight_g', 0.5))
  use_zcr = consistency == 'zcr'
  if smoothing > 0:
    d_loss_fn = lambda r, f: regularizers.smoothed_d_loss(
        r, f, real_target=1.0 - smoothing)

  def noise_sigma(step):
    if noise_steps > 0:
      return regularizers.noise_schedule(step, sigma0=noise0,
                                         anneal_steps=noise_steps)
    return jnp.float32(noise0)

  def d_input(x, key, side, sigma):
    """What D sees of a batch ``x``: DiffAugment, then instance noise
    (``sigma``; last, so that cutout and padding are noisy too); ``side``
    (0 real, 1 fake) separates their keys."""
    if use_augment:
      x = augment.diffaugment(
          x, jax.random.fold_in(jax.random.fold_in(key, AUGMENT_STREAM),
                                side), policy=policy)
    if noise0 > 0:
      x = regularizers.instance_noise(
          x, jax.random.fold_in(jax.random.fold_in(key, NOISE_STREAM), side),
          sigma)
    return x

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

  def latents(key, batch_size):
    return constrain(jax.random.normal(key, (batch_size, z_dim), jnp.float32))

  def generate_z(g_params, g_cols, z, labels):
    """G in train mode at latents ``z``: (samples, updated collections)."""
    variables = {'params': g_params, **g_cols}
    if g_cols:
      return generator.apply(variables, z, train=True, mutable=list(g_cols),
                             **cond(labels))
    return generator.apply(variables, z, train=True, **cond(labels)), g_cols

  def generate(g_params, g_cols, key, batch_size):
    """Samples in train mode; returns (samples, updated G collections,
    their labels or None)."""
    labels = fake_labels(key, batch_size)
    x, g_cols = generate_z(g_params, g_cols, latents(key, batch_size), labels)
    return x, g_cols, labels

  def zcr_pair(g_params, g_cols, key, batch_size):
    """G at the perturbed latents ``z + dz`` of the samples drawn with
    ``key`` (zCR; G's collection updates of this pass are dropped)."""
    z = latents(key, batch_size)
    dz_key = jax.random.fold_in(key, CONSISTENCY_STREAM)
    noisy, _ = generate_z(g_params, g_cols, regularizers.perturb_latents(
        z, dz_key, sigma=zcr_sigma), fake_labels(key, batch_size))
    return noisy

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
    real, real_labels, key, d_index, sigma = inputs
    k_z, k_pen = jax.random.split(key)
    fake, _, fake_y = generate(g_params, g_cols, k_z, real.shape[0])
    fake = jax.lax.stop_gradient(fake)
    pen_labels = fake_y if penalty_on_fake else real_labels
    real_in = d_input(real, key, 0, sigma)
    fake_in = d_input(fake, key, 1, sigma)
    if use_zcr:
      fake_noisy = jax.lax.stop_gradient(
          zcr_pair(g_params, g_cols, k_z, real.shape[0]))

    def loss_fn(params):
      # Spectral-norm power iteration advances once per D update (on the
      # real pass); the fake pass and the penalty start from the same stored
      # vector, so all three see the same normalised weights.
      real_logits, new_cols = d_apply(params, d_cols, real_in, True,
                                      real_labels)
      fake_logits, _ = d_apply(params, d_cols, fake_in, False, fake_y)
      adv = d_loss_fn(real_logits, fake_logits)
      if penalty_fn is None:
        pen = jnp.zeros((), jnp.float32)
      else:
        d_fn = lambda x: d_apply(params, d_cols, x, False, pen_labels)[0]
        if penalty_every > 1:  # lazy: every k-th D update, weighted x k
          pen = regularizers.lazy_cond(
              d_index, penalty_every,
              lambda: penalty_fn(d_fn, real_in, fake_in, k_pen))
        else:
          pen = penalty_fn(d_fn, real_in, fake_in, k_pen)
      total = adv + penalty_weight * pen
      aux = {}
      if consistency in ('cr', 'bcr'):
        # D(x') against D(T(x')), x' what the adversarial loss saw (after
        # any augmentation and noise); T = DiffAugment with augment_policy.
        k_t = jax.random.fold_in(key, CONSISTENCY_STREAM)
        t_real = augment.diffaugment(real_in, jax.random.fold_in(k_t, 0),
                                     policy=policy)
        reg = cr_real * regularizers.consistency(
            real_logits, d_apply(params, d_cols, t_real, False,
                                 real_labels)[0])
        if consistency == 'bcr':
          t_fake = augment.diffaugment(fake_in, jax.random.fold_in(k_t, 1),
                                       policy=policy)
          reg += cr_fake * regularizers.consistency(
              fake_logits, d_apply(params, d_cols, t_fake, False, fake_y)[0])
        aux['consistency'] = reg
        total += reg
      if use_zcr:
        reg = zcr_d * regularizers.latent_consistency_d(
            fake_logits, d_apply(params, d_cols, d_input(fake_noisy, key, 1,
                                                         sigma),
                                 False, fake_y)[0])
        aux['consistency'] = reg
        total += reg
      return total, (adv, pen, _mean(real_logits), _mean(fake_logits),
                     new_cols, aux)

    (_, (adv, pen, d_real, d_fake, new_cols, aux)), grads = (
        jax.value_and_grad(loss_fn, has_aux=True)(d_params))
    updates, d_opt_state = d_opt.update(grads, d_opt_state, d_params)
    d_params = optax.apply_updates(d_params, updates)
    if d_clip > 0:
      d_params = jax.tree.map(lambda p: jnp.clip(p, -d_clip, d_clip), d_params)
    metrics = {'d_loss': adv, 'penalty': pen, 'd_real': d_real,
               'd_fake': d_fake, 'd_grad_norm': optax.tree.norm(grads),
               'd_update_norm': optax.tree.norm(updates), **aux}
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
    # The index of each D update in the run (lazy regularisation) and the
    # instance-noise scale of this step; None (no scan input) when unused.
    d_index = (state.step * n_critic + jnp.arange(n_critic)
               if penalty_every > 1 else None)
    sigma = noise_sigma(state.step) if noise0 > 0 else None
    sigmas = None if sigma is None else jnp.broadcast_to(sigma, (n_critic,))
    (d_params, d_opt_state, d_cols, _, _), d_metrics = jax.lax.scan(
        d_update, carry, (real, real_labels, keys[:n_critic], d_index,
                          sigmas), unroll=unroll)
    d_metrics = jax.tree.map(jnp.mean, d_metrics)  # mean over critic updates

    def g_loss(params):
      fake, new_g_cols, fake_y = generate(params, state.g_collections,
                                          keys[-1], real.shape[1])
      logits, _ = d_apply(d_params, d_cols, d_input(fake, keys[-1], 1, sigma),
                          False, fake_y)
      loss = g_loss_fn(logits)
      aux = {}
      if use_zcr:  # G pushes G(z) and G(z + dz) apart (weight zcr_weight_g)
        noisy = zcr_pair(params, state.g_collections, keys[-1],
                         real.shape[1])
        aux['g_consistency'] = zcr_g * regularizers.latent_consistency_g(
            fake, noisy)
        loss += aux['g_consistency']
      return loss, (new_g_cols, _mean(logits), aux)

    (g_loss_value, (g_cols, d_fake_after, g_aux)), g_grads = (
        jax.value_and_grad(g_loss, has_aux=True)(state.g_params))
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
        **g_aux,
    }
    if sigma is not None:
      metrics['noise_sigma'] = sigma
    return new_state, metrics

  return train_step


def make_generate_fn(generator):
  """``generate(g_params, g_collections, z, labels=None) -> [n, ...]``: G in
  eval mode (batch norm with its running averages); ``labels`` (int ``[n]``)
  only for a class-conditional G."""

  def generate(g_params, g_cols, z, labels=None):
    cond = {} if labels is None else {'labels': labels}
    return generator.apply({'params': g_params, **g_cols}, z, train=False,
                           **cond)

  return generate


def make_critic_fn(discriminator):
  """``critic(d_params, d_collections, x, labels=None) -> [n / packing]``:
  D's logits in eval mode (spectral-norm vectors and batch-norm averages
  read, not updated)."""

  def critic(d_params, d_cols, x, labels=None):
    cond = {} if labels is None else {'labels': labels}
    return discriminator.apply({'params': d_params, **d_cols}, x,
                               update_stats=False, train=False, **cond)

  return critic




class GANTask(task_lib.Task):
  """A GAN run of ``config`` (the loop's :class:`~gan_stability.train.task.Task`)."""

  def __init__(self, config, data_shape: tuple[int, ...]):
    self.config = config
    self.data_shape = tuple(data_shape)
    self.generator, self.discriminator = models.build(config.model,
                                                      self.data_shape)
    self.draws_per_step = config.n_critic
    self.critic_axis = True
    self.batch_names = (('x', 'label') if config.model.get('num_classes', 0)
                        else ('x',))
    self.on_divergence = config.on_divergence
    self.max_rollbacks = config.max_rollbacks
    self.alarm_grad_factor = config.alarm_grad_factor
    self.alarm_collapse_ratio = config.alarm_collapse_ratio

  def init_state(self, key):
    return init_state(self.config, self.generator, self.discriminator, key,
                      self.data_shape)

  def make_train_step(self, *, latent_sharding=None):
    return make_train_step(self.config, self.generator, self.discriminator,
                           latent_sharding=latent_sharding)

  def make_generate_fn(self):
    return make_generate_fn(self.generator)

  def sampler_variables(self, state, *, ema=True):
    params = eval_generator_params(state) if ema else state.g_params
    return params, state.g_collections

  def make_critic_fn(self):
    return make_critic_fn(self.discriminator)

  def critic_variables(self, state):
    return state.d_params, state.d_collections

  def log_inputs(self, state):
    if not self.config.log_sigmas:
      return None
    return state.d_params, state.d_collections.get(SPECTRAL_STATS)

  def log_extras(self, host_inputs):
    if host_inputs is None:
      return {}
    d_params, spectral_stats = host_inputs
    return dynamics.layer_sigmas(d_params, spectral_stats, prefix='d_sigma/')

  def blame(self, bad):
    return {'network': 'discriminator' if bad[0].startswith('d')
            else 'generator'}
