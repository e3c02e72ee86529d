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

from typing import Any, Callable, Sequence

import flax
import flax.struct
import jax
import jax.numpy as jnp
import optax

from gan_stability import augment, losses, models, optimizers, penalties
from gan_stability import game, regularizers
from gan_stability.config import schema
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
    stabilisers: the stabilisers' own state, a dict of float32 scalars
      (``None`` when none has any): ADA's augmentation probability
      ``ada_p`` and the sum ``ada_signs`` of ``E[sign(D(x_real))]`` over the
      D updates since ``p`` was last adjusted (``augment='ada'``); LeCam's
      anchors ``lecam_real``, ``lecam_fake`` (``lecam_weight > 0``).
    game_state: the game update's memory (``None`` but for
      ``game='optimistic'``: ``prev_g``, ``prev_d``, each player's previous
      update ``Delta_{t-1}``, shaped like its parameters).

  The last two fields came with 0.2.0; a run without those stabilisers has
  ``None`` there, so its checkpoints are those of earlier releases.
  """
  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  g_collections: Any
  d_collections: Any
  g_ema_params: Any
  stabilisers: Any = None
  game_state: Any = None

  # Written to checkpoints only when not None (gan_stability.checkpoint).
  OPTIONAL_FIELDS = ('stabilisers', 'game_state')


def make_optimizers(config, *, g_lr=None, d_lr=None, b1=None, b2=None
                    ) -> tuple[optax.GradientTransformation,
                               optax.GradientTransformation]:
  """(G optimiser, D optimiser) from ``config.optimizer``.

  With ``lr_schedule='linear'`` the rate decays linearly to 0 over
  ``num_steps`` generator updates (the D schedule counts its
  ``n_critic * num_steps`` updates). ``g_lr`` / ``d_lr`` replace the
  config's rates (e.g. traced scalars, :func:`make_train_step`'s
  ``hparams``), ``b1`` / ``b2`` Adam's betas (the same for both players,
  as in the config): the optimisers' states do not depend on them.
  """
  o = config.optimizer
  betas = {k: v for k, v in (('b1', b1), ('b2', b2)) if v is not None}
  return (optimizers.make_optimizer(o, o.g_lr if g_lr is None else g_lr,
                                    config.num_steps, **betas),
          optimizers.make_optimizer(o, o.d_lr if d_lr is None else d_lr,
                                    config.num_steps * config.n_critic,
                                    **betas))


def _stabiliser_options(config) -> dict:
  """The stabilisers' settings of ``config`` (absent from configs written
  before 0.2.0: off)."""
  v = lambda name: schema.value(config, name)
  return dict(
      augment=v('augment'), policy=v('augment_policy'),
      ada_transforms=v('ada_transforms'), ada_p=float(v('ada_p')),
      ada_target=float(v('ada_target')), ada_interval=int(v('ada_interval')),
      ada_kimg=float(v('ada_kimg')), lecam_weight=float(v('lecam_weight')),
      lecam_decay=float(v('lecam_decay')), game=v('game'),
      consensus_gamma=float(v('consensus_gamma')))


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
  opts = _stabiliser_options(config)
  stab = {}
  if opts['augment'] == 'ada':
    stab.update(ada_p=jnp.float32(opts['ada_p']), ada_signs=jnp.float32(0))
  if opts['lecam_weight'] > 0:
    stab.update(lecam_real=jnp.float32(0), lecam_fake=jnp.float32(0))
  game_state = None
  if opts['game'] == 'optimistic':
    zeros = lambda t: jax.tree.map(jnp.zeros_like, t)
    game_state = {'prev_g': zeros(g_params), 'prev_d': zeros(d_params)}
  return GANState(
      step=jnp.zeros((), jnp.int32),
      g_params=g_params, d_params=d_params,
      g_opt_state=g_opt.init(g_params), d_opt_state=d_opt.init(d_params),
      g_collections=g_vars, d_collections=d_vars,
      # A copy, not an alias: the train step donates the state's buffers.
      g_ema_params=(jax.tree.map(jnp.copy, g_params)
                    if config.ema_decay > 0 else None),
      stabilisers=stab or None, game_state=game_state,
  )


def eval_generator_params(state: GANState):
  """The G parameters to evaluate with: the EMA when kept, else the live ones."""
  return state.g_ema_params if state.g_ema_params is not None else state.g_params


def _mean(x):
  return jnp.mean(x.astype(jnp.float32))


def vmappable_fields(config) -> list[str]:
  """The fields of ``config``'s schema marked ``vmappable``
  (:class:`gan_stability.config.schema.Field`): those
  :func:`make_train_step` takes as ``hparams``."""
  return schema.vmappable_fields(config)


def step_hparams(config) -> dict[str, Any]:
  """The values of the vmappable fields (``Field.vmappable`` in
  :mod:`gan_stability.config.schema`) as the train step of ``config`` reads
  them (absent from old configs: the values that reproduce them)."""
  v = lambda name: float(schema.value(config, name))
  return {
      'penalty_weight': float(config.penalty_weight),
      'gp_target': float(config.gp_target),
      'd_clip': float(config.d_clip),
      'optimizer.g_lr': config.optimizer.g_lr,
      'optimizer.d_lr': config.optimizer.d_lr,
      **({'optimizer.b1': float(config.optimizer.b1),
          'optimizer.b2': float(config.optimizer.b2)}
         if 'optimizer.b1' in vmappable_fields(config) else {}),
      'ema_decay': float(config.ema_decay),
      **{name: v(name) for name in (
          'dragan_c', 'lecam_weight', 'lecam_decay', 'consensus_gamma',
          'instance_noise', 'label_smoothing', 'cr_weight_real',
          'cr_weight_fake', 'zcr_sigma', 'zcr_weight_d', 'zcr_weight_g')},
  }


def make_train_step(config, generator, discriminator, *,
                    latent_sharding: Any = None,
                    hparams: Sequence[str] = ()) -> Callable[...,
                                                     tuple[GANState, Metrics]]:
  """Builds the pure train step for ``config``.

  Args:
    config: a validated training config.
    generator, discriminator: Flax modules (``G(z, train=)`` and
      ``D(x, update_stats=, train=)``).
    latent_sharding: optional sharding for the latent batch (the batch's
      sharding without its leading ``n_critic`` axis); ``None`` on one device.
    hparams: config fields (each ``vmappable`` in the schema, e.g.
      ``('penalty_weight', 'optimizer.d_lr')``) whose values the step takes
      as an argument instead of from ``config`` (a vmapped group of runs
      that differ in them, :func:`gan_stability.train.loop.train_group`).

  Returns:
    ``train_step(state, batch, key) -> (state, metrics)`` where
    ``batch['x']`` has shape ``[n_critic, B, ...]``: real batch ``i`` feeds
    discriminator update ``i``. With ``hparams``:
    ``train_step(state, batch, key, hp)``, ``hp`` a dict of float32 scalars,
    one per field of ``hparams`` (traced: one compilation for all values).
    The state is that of ``config`` with any values of those fields; where
    the step branches on one (``instance_noise``, ``label_smoothing``,
    ``d_clip``: whether it is > 0), ``config``'s value decides (a group's
    program config takes each field's largest value,
    :func:`gan_stability.train.loop.program_config`), and a member whose
    value is 0 computes what its own step computes (noise of scale 0, label
    target 1, no clipping). Learning rates enter the optimisers as the
    member's rate (optax's updates are the rate times a direction; the
    states do not depend on it). Without ``hparams`` the step is the one
    it always was (the same jaxpr).

  ``config.game='alternating'`` (the default) makes ``n_critic`` D updates,
  then one G update at the new D. The other game updates
  (:func:`gan_stability.game.joint_update`: ``simultaneous``, ``consensus``,
  ``extragradient``, ``optimistic``) update both players together from one
  real batch and one latent batch (``n_critic = 1``): D's objective and G's
  are evaluated on the same fake samples (the same augmentation and noise),
  and each player's optimiser receives the direction the method forms.
  """
  hparams = tuple(hparams)
  allowed = vmappable_fields(config)
  bad = [f for f in hparams if f not in allowed]
  if bad or len(set(hparams)) != len(hparams):
    raise ValueError(f'make_train_step: hparams {list(hparams)}: '
                     f'{bad or "repeated"}; the vmappable fields of this '
                     f'config: {allowed}')
  d_loss_base, g_loss_fn = losses.get_losses(config.loss)
  penalty = penalties.PENALTIES.get(config.penalty)
  ema_start = int(config.ema_start)
  z_dim = config.model.z_dim
  num_classes = int(config.model.get('num_classes', 0))
  # Which labels the penalty's D sees (see the module docstring).
  penalty_on_fake = penalty is not None and penalty.at == 'fake'
  unroll = task_lib.loop_unroll(config)
  # The stabilisers (absent from configs written before 0.2.0: off).
  opts = _stabiliser_options(config)
  use_augment = opts['augment'] == 'diffaugment'
  use_ada = opts['augment'] == 'ada'
  policy = opts['policy']
  noise_steps = int(schema.value(config, 'instance_noise_steps'))
  penalty_every = int(schema.value(config, 'penalty_every'))
  consistency = schema.value(config, 'consistency')
  use_zcr = consistency == 'zcr'
  game_method = opts['game']
  # The branches on vmappable fields: config's values decide them.
  values = step_hparams(config)
  use_noise = values['instance_noise'] > 0
  use_smoothing = values['label_smoothing'] > 0
  use_clip = values['d_clip'] > 0
  use_lecam = values['lecam_weight'] > 0

  def build(hv):
    """The step with the vmappable fields' values ``hv``: Python numbers
    (from ``config``, exactly the single run's step) or traced scalars."""
    d_loss_fn = d_loss_base
    if use_smoothing:
      d_loss_fn = lambda r, f: regularizers.smoothed_d_loss(
          r, f, real_target=1.0 - hv['label_smoothing'])
    penalty_fn = penalties.get_penalty(
        config.penalty, **{arg: hv[field] for arg, field in (
            penalty.params.items() if penalty else ())})
    g_opt, d_opt = make_optimizers(config, g_lr=hv['optimizer.g_lr'],
                                   d_lr=hv['optimizer.d_lr'],
                                   b1=hv.get('optimizer.b1'),
                                   b2=hv.get('optimizer.b2'))

    def clip_d(d_params):
      """WGAN's clipping of D's weights; a traced bound of 0 (a member of a
      group that clips) leaves them unclipped."""
      if not use_clip:
        return d_params
      c = hv['d_clip']
      clipped = jax.tree.map(lambda p: jnp.clip(p, -c, c), d_params)
      if isinstance(c, (int, float)):
        return clipped
      return jax.tree.map(lambda q, p: jnp.where(c > 0, q, p), clipped,
                          d_params)

    def noise_sigma(step):
      if noise_steps > 0:
        return regularizers.noise_schedule(step, sigma0=hv['instance_noise'],
                                           anneal_steps=noise_steps)
      return jnp.float32(hv['instance_noise'])

    def d_input(x, key, side, sigma, p):
      """What D sees of a batch ``x``: DiffAugment or ADA (at probability
      ``p``), then instance noise (``sigma``; last, so that cutout and padding
      are noisy too); ``side`` (0 real, 1 fake) separates their keys."""
      if use_augment or use_ada:
        k = jax.random.fold_in(jax.random.fold_in(key, AUGMENT_STREAM), side)
        if use_augment:
          x = augment.diffaugment(x, k, policy=policy)
        else:
          x = augment.ada_augment(x, k, p, transforms=opts['ada_transforms'])
      if use_noise:
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
          z, dz_key, sigma=hv['zcr_sigma']), fake_labels(key, batch_size))
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

    def d_objective(params, d_cols, real, real_labels, fake, fake_y,
                    fake_noisy, key, k_pen, d_index, sigma, stab):
      """D's loss (adversarial + penalty + stabilisers) of one D update.

      ``fake`` (and zCR's ``fake_noisy``) are G's samples of the update;
      ``key`` is the update's key (augmentation, noise, CR), ``stab`` the
      stabilisers' state before it. Returns ``(total, out)``."""
      p = stab['ada_p'] if use_ada else None
      real_in = d_input(real, key, 0, sigma, p)
      fake_in = d_input(fake, key, 1, sigma, p)
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
        pen_labels = fake_y if penalty_on_fake else real_labels
        d_fn = lambda x: d_apply(params, d_cols, x, False, pen_labels)[0]
        if penalty_every > 1:  # lazy: every k-th D update, weighted x k
          pen = regularizers.lazy_cond(
              d_index, penalty_every,
              lambda: penalty_fn(d_fn, real_in, fake_in, k_pen))
        else:
          pen = penalty_fn(d_fn, real_in, fake_in, k_pen)
      total = adv + hv['penalty_weight'] * pen
      aux = {}
      if consistency in ('cr', 'bcr'):
        # D(x') against D(T(x')), x' what the adversarial loss saw (after
        # any augmentation and noise); T = DiffAugment with augment_policy.
        k_t = jax.random.fold_in(key, CONSISTENCY_STREAM)
        t_real = augment.diffaugment(real_in, jax.random.fold_in(k_t, 0),
                                     policy=policy)
        reg = hv['cr_weight_real'] * regularizers.consistency(
            real_logits, d_apply(params, d_cols, t_real, False,
                                 real_labels)[0])
        if consistency == 'bcr':
          t_fake = augment.diffaugment(fake_in, jax.random.fold_in(k_t, 1),
                                       policy=policy)
          reg += hv['cr_weight_fake'] * regularizers.consistency(
              fake_logits, d_apply(params, d_cols, t_fake, False, fake_y)[0])
        aux['consistency'] = reg
        total += reg
      if use_zcr:
        reg = hv['zcr_weight_d'] * regularizers.latent_consistency_d(
            fake_logits, d_apply(params, d_cols,
                                 d_input(fake_noisy, key, 1, sigma, p),
                                 False, fake_y)[0])
        aux['consistency'] = reg
        total += reg
      new_stab = dict(stab) if stab is not None else None
      if use_lecam:
        # The anchors include this update's batch means (as the authors' code
        # updates them before computing the term); constants for the gradient.
        decay = hv['lecam_decay']
        new_stab['lecam_real'] = regularizers.ema_update(
            stab['lecam_real'], _mean(real_logits), decay=decay)
        new_stab['lecam_fake'] = regularizers.ema_update(
            stab['lecam_fake'], _mean(fake_logits), decay=decay)
        reg = hv['lecam_weight'] * regularizers.lecam(
            real_logits, fake_logits, new_stab['lecam_real'],
            new_stab['lecam_fake'])
        aux['lecam'] = reg
        total += reg
      if use_ada:
        aux['ada_rt'] = augment.ada_rt(real_logits)
      return total, (adv, pen, _mean(real_logits), _mean(fake_logits),
                     new_cols, aux, new_stab)

    def after_d_update(stab, aux, d_index, batch_size):
      """The stabilisers' state after D update ``d_index``: ADA accumulates
      ``E[sign(D(x_real))]`` and adjusts ``p`` every ``ada_interval`` D
      updates (:func:`gan_stability.augment.ada_update`)."""
      if not use_ada:
        return stab
      interval = opts['ada_interval']
      signs = stab['ada_signs'] + aux['ada_rt']
      due = (d_index + 1) % interval == 0
      p = jnp.where(due, augment.ada_update(
          stab['ada_p'], signs / interval, target=opts['ada_target'],
          batch_size=batch_size, interval=interval, kimg=opts['ada_kimg']),
                    stab['ada_p'])
      return {**stab, 'ada_p': p,
              'ada_signs': jnp.where(due, jnp.float32(0), signs)}

    def d_update(carry, inputs):
      d_params, d_opt_state, d_cols, g_params, g_cols, stab = carry
      real, real_labels, key, d_index, sigma = inputs
      k_z, k_pen = jax.random.split(key)
      # No stop_gradient on G's samples: the gradient is taken in D's
      # parameters only, and forward-mode derivatives of the whole step (its
      # linearisation, experiments/reproduce/dirac.py) must see G's effect.
      fake, _, fake_y = generate(g_params, g_cols, k_z, real.shape[0])
      fake_noisy = (zcr_pair(g_params, g_cols, k_z, real.shape[0])
                    if use_zcr else None)
      (_, (adv, pen, d_real, d_fake, new_cols, aux, stab)), grads = (
          jax.value_and_grad(d_objective, has_aux=True)(
              d_params, d_cols, real, real_labels, fake, fake_y, fake_noisy,
              key, k_pen, d_index, sigma, stab))
      stab = after_d_update(stab, aux, d_index, real.shape[0])
      updates, d_opt_state = d_opt.update(grads, d_opt_state, d_params)
      d_params = clip_d(optax.apply_updates(d_params, updates))
      metrics = {'d_loss': adv, 'penalty': pen, 'd_real': d_real,
                 'd_fake': d_fake, 'd_grad_norm': optax.tree.norm(grads),
                 'd_update_norm': optax.tree.norm(updates), **aux}
      return (d_params, d_opt_state, new_cols, g_params, g_cols, stab), metrics

    def g_objective(g_params, g_cols, d_params, d_cols, key, d_key, batch_size,
                    sigma, stab):
      """G's loss at latents of ``key``, D seeing the samples as the D update
      with key ``d_key`` did. Returns ``(loss, (new G collections, mean
      D(G(z)), aux))``."""
      fake, new_g_cols, fake_y = generate(g_params, g_cols, key, batch_size)
      p = stab['ada_p'] if use_ada else None
      logits, _ = d_apply(d_params, d_cols, d_input(fake, d_key, 1, sigma, p),
                          False, fake_y)
      loss = g_loss_fn(logits)
      aux = {}
      if use_zcr:  # G pushes G(z) and G(z + dz) apart (weight zcr_weight_g)
        noisy = zcr_pair(g_params, g_cols, key, batch_size)
        aux['g_consistency'] = hv['zcr_weight_g'] * (
            regularizers.latent_consistency_g(fake, noisy))
        loss += aux['g_consistency']
      return loss, (new_g_cols, _mean(logits), aux)

    def labels_of(batch):
      if not num_classes:
        return None
      if 'label' not in batch:
        raise ValueError('config.model.num_classes: a class-conditional '
                         f'model (num_classes={num_classes}) needs '
                         "batch['label']")
      return batch['label']

    def finish(state, *, g_params, d_params, g_opt_state, d_opt_state, g_cols,
               d_cols, stab, game_state, d_metrics, g_loss_value, d_fake_after,
               g_grads, g_updates, g_aux, sigma):
      """The new state (with G's EMA) and the step's metrics."""
      g_ema = state.g_ema_params
      if g_ema is not None:
        decay = jnp.where(state.step >= ema_start, hv['ema_decay'], 0.0)
        g_ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p,
                             g_ema, g_params)
      new_state = GANState(
          step=state.step + 1, g_params=g_params, d_params=d_params,
          g_opt_state=g_opt_state, d_opt_state=d_opt_state,
          g_collections=g_cols, d_collections=d_cols, g_ema_params=g_ema,
          stabilisers=stab, game_state=game_state)
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
      if use_ada:
        metrics['ada_p'] = stab['ada_p']
      return new_state, metrics

    def train_step(state: GANState, batch: dict, key: jax.Array
                   ) -> tuple[GANState, Metrics]:
      real = batch['x']
      real_labels = labels_of(batch)
      n_critic = real.shape[0]
      keys = jax.random.split(key, n_critic + 1)
      carry = (state.d_params, state.d_opt_state, state.d_collections,
               state.g_params, state.g_collections, state.stabilisers)
      # The index of each D update in the run (lazy regularisation, ADA) and
      # the instance-noise scale of this step; None (no scan input) when
      # unused.
      d_index = (state.step * n_critic + jnp.arange(n_critic)
                 if penalty_every > 1 or use_ada else None)
      sigma = noise_sigma(state.step) if use_noise else None
      sigmas = None if sigma is None else jnp.broadcast_to(sigma, (n_critic,))
      (d_params, d_opt_state, d_cols, _, _, stab), d_metrics = jax.lax.scan(
          d_update, carry, (real, real_labels, keys[:n_critic], d_index,
                            sigmas), unroll=unroll)
      d_metrics = jax.tree.map(jnp.mean, d_metrics)  # mean over critic updates

      (g_loss_value, (g_cols, d_fake_after, g_aux)), g_grads = (
          jax.value_and_grad(g_objective, has_aux=True)(
              state.g_params, state.g_collections, d_params, d_cols, keys[-1],
              keys[-1], real.shape[1], sigma, stab))
      g_updates, g_opt_state = g_opt.update(g_grads, state.g_opt_state,
                                            state.g_params)
      g_params = optax.apply_updates(state.g_params, g_updates)
      return finish(state, g_params=g_params, d_params=d_params,
                    g_opt_state=g_opt_state, d_opt_state=d_opt_state,
                    g_cols=g_cols, d_cols=d_cols, stab=stab, game_state=None,
                    d_metrics=d_metrics, g_loss_value=g_loss_value,
                    d_fake_after=d_fake_after, g_grads=g_grads,
                    g_updates=g_updates, g_aux=g_aux, sigma=sigma)

    joint = game.joint_update(game_method, g_opt, d_opt,
                              gamma=hv['consensus_gamma'])

    def joint_train_step(state: GANState, batch: dict, key: jax.Array
                         ) -> tuple[GANState, Metrics]:
      """One update of both players by ``config.game`` (``n_critic = 1``):
      the keys are those of the alternating step with one D update, and both
      players' objectives use the D update's latents and augmentation."""
      real = batch['x'][0]
      real_labels = labels_of(batch)
      real_labels = None if real_labels is None else real_labels[0]
      batch_size = real.shape[0]
      key_d = jax.random.split(key, 2)[0]
      k_z, k_pen = jax.random.split(key_d)
      sigma = noise_sigma(state.step) if use_noise else None
      stab = state.stabilisers
      g_cols, d_cols = state.g_collections, state.d_collections

      def grad_fn(g_params, d_params):
        # G's samples depend on g (no stop_gradient), so consensus's J^T u
        # has the players' cross terms; D's gradient is taken in d only.
        fake, _, fake_y = generate(g_params, g_cols, k_z, batch_size)
        fake_noisy = (zcr_pair(g_params, g_cols, k_z, batch_size)
                      if use_zcr else None)
        (_, d_out), u_d = jax.value_and_grad(d_objective, has_aux=True)(
            d_params, d_cols, real, real_labels, fake, fake_y, fake_noisy,
            key_d, k_pen, state.step, sigma, stab)
        (g_loss_value, g_out), u_g = jax.value_and_grad(
            g_objective, has_aux=True)(g_params, g_cols, d_params, d_cols, k_z,
                                       key_d, batch_size, sigma, stab)
        return (u_g, u_d), (d_out, g_loss_value, g_out, u_g, u_d)

      game_state = state.game_state or {}
      js = game.JointState(count=state.step, g_opt=state.g_opt_state,
                           d_opt=state.d_opt_state,
                           prev_g=game_state.get('prev_g'),
                           prev_d=game_state.get('prev_d'))
      (g_params, d_params), js, aux, (g_updates, d_updates) = joint.step(
          grad_fn, state.g_params, state.d_params, js)
      d_out, g_loss_value, (new_g_cols, d_fake_after, g_aux), u_g, u_d = aux
      adv, pen, d_real, d_fake, new_d_cols, d_aux, stab = d_out
      stab = after_d_update(stab, d_aux, state.step, batch_size)
      d_params = clip_d(d_params)
      d_metrics = {'d_loss': adv, 'penalty': pen, 'd_real': d_real,
                   'd_fake': d_fake, 'd_grad_norm': optax.tree.norm(u_d),
                   'd_update_norm': optax.tree.norm(d_updates), **d_aux}
      return finish(state, g_params=g_params, d_params=d_params,
                    g_opt_state=js.g_opt, d_opt_state=js.d_opt,
                    g_cols=new_g_cols, d_cols=new_d_cols, stab=stab,
                    game_state=(None if js.prev_g is None else
                                {'prev_g': js.prev_g, 'prev_d': js.prev_d}),
                    d_metrics=d_metrics, g_loss_value=g_loss_value,
                    d_fake_after=d_fake_after, g_grads=u_g,
                    g_updates=g_updates, g_aux=g_aux, sigma=sigma)

    return train_step if game_method == 'alternating' else joint_train_step

  if not hparams:
    return build(values)

  def train_step_hp(state, batch, key, hp):
    return build({**values, **{f: hp[f] for f in hparams}})(
        state, batch, key)

  return train_step_hp


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

  def make_train_step(self, *, latent_sharding=None, hparams=()):
    return make_train_step(self.config, self.generator, self.discriminator,
                           latent_sharding=latent_sharding, hparams=hparams)

  def vmappable_fields(self):
    return vmappable_fields(self.config)

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
