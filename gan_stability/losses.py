"""Adversarial losses as pure functions of discriminator outputs.

Every function takes discriminator logits (raw, pre-sigmoid scores of any
shape; the batch is averaged over all elements) and returns the scalar batch
mean. They are written in terms of ``softplus`` so they are finite for logits of
any magnitude: ``-log sigmoid(x) = softplus(-x)`` and
``-log(1 - sigmoid(x)) = softplus(x)``; neither overflows.

Conventions: ``real_logits = D(x)`` on data, ``fake_logits = D(G(z))``. The
discriminator *minimises* its loss and the generator minimises its own; the
pairs below are the ones used in the cited papers.

References:
  [GAN]   Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
  [WGAN]  Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017.
  [Hinge] Lim & Ye, "Geometric GAN", 2017; Miyato et al., "Spectral
          Normalization for Generative Adversarial Networks", ICLR 2018.
  [LSGAN] Mao et al., "Least Squares Generative Adversarial Networks",
          ICCV 2017.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array


def _mean(x: Array) -> Array:
  return jnp.mean(jnp.asarray(x, jnp.result_type(x, jnp.float32)))


def minimax_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """Discriminator loss of the original GAN [GAN, eq. 1].

  ``L_D = -E[log D(x)] - E[log(1 - D(G(z)))]
        = E[softplus(-real_logits)] + E[softplus(fake_logits)]``,
  i.e. binary cross-entropy with label 1 for data and 0 for samples.
  Its minimum over all logits is 0; at ``D = 1/2`` everywhere it is
  ``2 log 2``.
  """
  return _mean(jax.nn.softplus(-real_logits)) + _mean(
      jax.nn.softplus(fake_logits))


def minimax_g_loss(fake_logits: Array) -> Array:
  """Saturating generator loss of the minimax game [GAN, eq. 1].

  ``L_G = E[log(1 - D(G(z)))] = -E[softplus(fake_logits)]``.
  Its gradient vanishes when D confidently rejects the samples
  (``fake_logits -> -inf``), which is why [GAN, sec. 3] proposes the
  non-saturating variant.
  """
  return -_mean(jax.nn.softplus(fake_logits))


def nonsaturating_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """Discriminator loss of the non-saturating GAN [GAN, sec. 3].

  Identical to :func:`minimax_d_loss` (binary cross-entropy); only the
  generator's objective differs. Provided so that every loss family has a
  ``*_d_loss``/``*_g_loss`` pair.
  """
  return minimax_d_loss(real_logits, fake_logits)


def nonsaturating_g_loss(fake_logits: Array) -> Array:
  """Non-saturating generator loss [GAN, sec. 3].

  ``L_G = -E[log D(G(z))] = E[softplus(-fake_logits)]``.
  """
  return _mean(jax.nn.softplus(-fake_logits))


def wasserstein_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """Critic loss of the Wasserstein GAN [WGAN, Algorithm 1].

  ``L_D = E[D(G(z))] - E[D(x)]``; the critic's outputs are unbounded scores,
  and the loss is meaningful only with a Lipschitz constraint (weight
  clipping, a gradient penalty or spectral normalisation).
  """
  return _mean(fake_logits) - _mean(real_logits)


def wasserstein_g_loss(fake_logits: Array) -> Array:
  """Generator loss of the Wasserstein GAN [WGAN]: ``L_G = -E[D(G(z))]``."""
  return -_mean(fake_logits)


def hinge_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """Hinge discriminator loss [Hinge; Miyato et al. 2018, eq. 16].

  ``L_D = E[max(0, 1 - D(x))] + E[max(0, 1 + D(G(z)))]``.
  """
  return _mean(jax.nn.relu(1.0 - real_logits)) + _mean(
      jax.nn.relu(1.0 + fake_logits))


def hinge_g_loss(fake_logits: Array) -> Array:
  """Hinge generator loss [Miyato et al. 2018, eq. 17]: ``-E[D(G(z))]``."""
  return -_mean(fake_logits)


def least_squares_d_loss(real_logits: Array, fake_logits: Array) -> Array:
  """Least-squares discriminator loss [LSGAN, eq. 9 with a=0, b=c=1].

  ``L_D = 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]``, on the raw outputs.
  """
  return 0.5 * _mean(jnp.square(real_logits - 1.0)) + 0.5 * _mean(
      jnp.square(fake_logits))


def least_squares_g_loss(fake_logits: Array) -> Array:
  """Least-squares generator loss [LSGAN, eq. 9 with c=1].

  ``L_G = 1/2 E[(D(G(z)) - 1)^2]``.
  """
  return 0.5 * _mean(jnp.square(fake_logits - 1.0))


class Loss(NamedTuple):
  """A loss family: the discriminator's and the generator's objective."""
  d_loss: Callable[[Array, Array], Array]  # (real_logits, fake_logits)
  g_loss: Callable[[Array], Array]         # (fake_logits)

  @property
  def sigmoid(self) -> bool:
    """D's loss is the sigmoid cross-entropy of real (1) and fake (0)
    labels, the one one-sided label smoothing modifies
    (:func:`gan_stability.regularizers.smoothed_d_loss`)."""
    return self.d_loss in (minimax_d_loss, nonsaturating_d_loss)


# The registry of loss families, as selected by ``config.loss`` (the config
# schema takes its allowed values from here: adding a family is one entry).
LOSSES: dict[str, Loss] = {
    'minimax': Loss(minimax_d_loss, minimax_g_loss),
    'nonsaturating': Loss(nonsaturating_d_loss, nonsaturating_g_loss),
    'wasserstein': Loss(wasserstein_d_loss, wasserstein_g_loss),
    'hinge': Loss(hinge_d_loss, hinge_g_loss),
    'least_squares': Loss(least_squares_d_loss, least_squares_g_loss),
}


def get_losses(name: str) -> Loss:
  """``(d_loss_fn, g_loss_fn)`` of the loss family ``name``."""
  if name not in LOSSES:
    raise ValueError(
        f'config.loss: unknown loss {name!r}; allowed: {sorted(LOSSES)}')
  return LOSSES[name]
