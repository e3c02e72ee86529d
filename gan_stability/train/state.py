"""The GAN training state: everything that changes during training, explicitly."""

from __future__ import annotations

from typing import Any

import flax
import flax.struct
import jax
import jax.numpy as jnp
import optax

from gan_stability.models import SPECTRAL_STATS


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


def make_optimizer(o, lr: float, total_steps: int
                   ) -> optax.GradientTransformation:
  """The optimiser ``o.name`` (adam | rmsprop | sgd; ``o`` a
  ``config.optimizer``) at rate ``lr``, decayed linearly to 0 over
  ``total_steps`` updates when ``o.lr_schedule == 'linear'``."""
  if o.lr_schedule == 'linear':
    lr = optax.linear_schedule(lr, 0.0, total_steps)
  if o.name == 'adam':
    return optax.adam(lr, b1=o.b1, b2=o.b2)
  if o.name == 'rmsprop':
    return optax.rmsprop(lr)
  if o.name == 'sgd':
    return optax.sgd(lr, momentum=o.b1 or None)
  raise ValueError(f'config.optimizer.name: unknown {o.name!r}; '
                   "allowed: ['adam', 'rmsprop', 'sgd']")


def make_optimizers(config) -> tuple[optax.GradientTransformation,
                                     optax.GradientTransformation]:
  """(G optimiser, D optimiser) from ``config.optimizer``.

  With ``lr_schedule='linear'`` the rate decays linearly to 0 over
  ``num_steps`` generator updates (the D schedule counts its
  ``n_critic * num_steps`` updates).
  """
  o = config.optimizer
  return (make_optimizer(o, o.g_lr, config.num_steps),
          make_optimizer(o, o.d_lr, config.num_steps * config.n_critic))


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


__all__ = ['GANState', 'SPECTRAL_STATS', 'init_state', 'make_optimizer',
           'make_optimizers', 'eval_generator_params']
