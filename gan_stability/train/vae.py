"""The VAE baseline as a training task: state, train step, sampler.

A variational auto-encoder (Kingma & Welling 2014; class-conditional: Sohn
et al. 2015) on the GANs' data, with the GANs' networks
(:mod:`gan_stability.models.vae`: the DCGAN generator as decoder, the DCGAN
discriminator body as encoder), trained by Adam on the negative ELBO of
:mod:`gan_stability.elbo`, and evaluated by the same evaluators as the GANs
(:mod:`gan_stability.eval`). Samples are the decoder means ``tanh(h(z))`` of
``z ~ N(0, I)``.

The training loop and the workdir contract are the GANs'
(:mod:`gan_stability.train.loop`): ``metrics.jsonl`` has ``neg_elbo``,
``nll``, ``kl_prior`` (nats per image), ``grad_norm``, ``param_norm`` and
the evaluation metrics; the key of step ``s`` is ``fold_in(train_key, s)``;
a non-finite loss stops the run. The batch is split over
``config.num_devices`` devices, so the batch-norm statistics and the loss
are those of the global batch, whatever the device count.
"""

from __future__ import annotations

import flax
import flax.struct
import jax
import jax.numpy as jnp
import optax

from gan_stability import elbo, optimizers
from gan_stability.models import vae as vae_models
from gan_stability.train import task as task_lib


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
  return optimizers.make_optimizer(config.optimizer, config.optimizer.lr,
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


def make_generate_fn(decoder):
  """``generate(dec_params, dec_collections, z, labels=None) -> [n, ...]``:
  the decoder means ``tanh(h(z))`` in eval mode (sampled with
  ``z ~ N(0, I)``)."""

  def generate(dec_params, dec_cols, z, labels=None):
    h = decoder.apply({'params': dec_params, **dec_cols}, z, train=False,
                      **_cond(labels))
    return elbo.decoder_mean(h)

  return generate


class VAETask(task_lib.Task):
  """A VAE run of ``config`` (``family='vae'``) for the training loop."""

  def __init__(self, config, data_shape: tuple[int, ...]):
    self.config = config
    self.data_shape = tuple(data_shape)
    self.decoder, self.encoder = vae_models.build(config.model,
                                                  self.data_shape)
    self.batch_names = ('x', 'label') if config.model.num_classes else ('x',)

  def init_state(self, key):
    return init_state(self.config, self.decoder, self.encoder, key,
                      self.data_shape)

  def make_train_step(self, *, latent_sharding=None):
    del latent_sharding  # the VAE draws its noise per example, unsharded
    return make_train_step(self.config, self.decoder, self.encoder)

  def make_generate_fn(self):
    return make_generate_fn(self.decoder)

  def sampler_variables(self, state, *, ema=True):
    del ema  # the VAE keeps no average
    return state.params['decoder'], state.dec_collections
