"""The evidence lower bound of a variational auto-encoder, as pure functions.

Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (eq. 10 and
appendix B): with an encoder ``q(z | x) = N(mu(x), diag sigma^2(x))``, the
prior ``p(z) = N(0, I)`` and a decoder ``p(x | z)``, the negative ELBO of one
example is::

    -ELBO(x) = E_{z ~ q(z|x)} [-log p(x | z)] + beta * KL(q(z | x) || p(z))

estimated with one reparameterised draw ``z = mu + sigma * eps``,
``eps ~ N(0, I)``. ``beta = 1`` is the ELBO; ``beta != 1`` the beta-VAE
objective (Higgins et al., ICLR 2017). Conditional VAEs (Sohn, Lee & Yan,
"Learning Structured Output Representation using Deep Conditional
Generative Models", NeurIPS 2015) condition encoder and decoder on a label;
the formulas are the same.

Images are in the GANs' pixel scale ``x in [-1, 1]``. Every function returns
per-example values in nats, summed over the latent or pixel dimensions (the
caller averages over the batch). Decoder likelihoods:

* :func:`bernoulli_nll` - pixel intensities ``t = (x + 1) / 2`` as Bernoulli
  probabilities (Kingma & Welling 2014, appendix C.1, used for MNIST) with
  logits ``l``::

      -log p(x | z) = sum_pixels softplus(l) - t * l

  For grey-level ``t`` strictly inside (0, 1) this is the cross-entropy, not a
  normalised density (the continuous Bernoulli of Loaiza-Ganem &
  Cunningham, NeurIPS 2019, adds the missing normaliser); it is the common
  practice and its minimiser is still ``sigmoid(l) = t``.
* :func:`gaussian_nll` - ``N(x; m, sigma^2 I)`` with a fixed ``sigma``::

      -log p(x | z) = sum_pixels (x - m)^2 / (2 sigma^2) + log sigma + log(2 pi) / 2

The DCGAN generator used as the decoder ends in ``tanh(h)``; the VAE reads its
pre-tanh output ``h`` (``tanh_output=False``). Since
``sigmoid(2h) = (tanh(h) + 1) / 2``, Bernoulli logits ``l = 2h`` give the mean
image ``tanh(h)`` in the GAN scale; the Gaussian mean is ``m = tanh(h)``
(:func:`decoder_mean`).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

LIKELIHOODS = ('bernoulli', 'gaussian')


def _sum_but_batch(x: jax.Array) -> jax.Array:
  return jnp.sum(x.reshape(x.shape[0], -1), axis=-1)


def gaussian_kl(mean: jax.Array, log_var: jax.Array) -> jax.Array:
  """``KL(N(mean, diag exp(log_var)) || N(0, I))`` per example ``[B]``::

      KL = 1/2 sum_j (mean_j^2 + exp(log_var_j) - log_var_j - 1)

  (Kingma & Welling 2014, appendix B). ``mean`` and ``log_var`` are
  ``[B, z_dim]``.
  """
  return 0.5 * jnp.sum(mean ** 2 + jnp.exp(log_var) - log_var - 1.0, axis=-1)


def reparameterize(key: jax.Array, mean: jax.Array,
                   log_var: jax.Array) -> jax.Array:
  """One draw ``z = mean + exp(log_var / 2) * eps``, ``eps ~ N(0, I)``."""
  eps = jax.random.normal(key, mean.shape, mean.dtype)
  return mean + jnp.exp(0.5 * log_var) * eps


def bernoulli_nll(h: jax.Array, x: jax.Array) -> jax.Array:
  """Bernoulli negative log-likelihood ``[B]`` of images ``x in [-1, 1]``
  under the decoder's pre-tanh output ``h`` (logits ``2h``, targets
  ``(x + 1) / 2``); see the module docstring."""
  logits = 2.0 * h
  t = (x + 1.0) / 2.0
  return _sum_but_batch(jax.nn.softplus(logits) - t * logits)


def gaussian_nll(h: jax.Array, x: jax.Array, *, sigma: float) -> jax.Array:
  """Gaussian negative log-likelihood ``[B]`` of ``x`` with mean
  ``tanh(h)`` and a fixed standard deviation ``sigma`` (in the [-1, 1]
  scale); see the module docstring."""
  if sigma <= 0:
    raise ValueError(f'sigma={sigma} must be > 0')
  m = jnp.tanh(h)
  per_pixel = ((x - m) ** 2 / (2.0 * sigma ** 2) + math.log(sigma)
               + 0.5 * math.log(2.0 * math.pi))
  return _sum_but_batch(per_pixel)


def reconstruction_nll(h: jax.Array, x: jax.Array, *, likelihood: str,
                       sigma: float = 1.0) -> jax.Array:
  """:func:`bernoulli_nll` or :func:`gaussian_nll`, chosen by name."""
  if likelihood == 'bernoulli':
    return bernoulli_nll(h, x)
  if likelihood == 'gaussian':
    return gaussian_nll(h, x, sigma=sigma)
  raise ValueError(f'likelihood: unknown {likelihood!r}; allowed: '
                   f'{list(LIKELIHOODS)}')


def negative_elbo(h: jax.Array, x: jax.Array, mean: jax.Array,
                  log_var: jax.Array, *, likelihood: str, sigma: float = 1.0,
                  beta: float = 1.0) -> tuple[jax.Array, jax.Array, jax.Array]:
  """``(loss, nll, kl)``, each ``[B]``: ``loss = nll + beta * kl`` for
  decoder output ``h`` (at one draw of ``z``), data ``x`` and the encoder's
  ``mean``, ``log_var``."""
  nll = reconstruction_nll(h, x, likelihood=likelihood, sigma=sigma)
  kl = gaussian_kl(mean, log_var)
  return nll + beta * kl, nll, kl


def decoder_mean(h: jax.Array) -> jax.Array:
  """The mean image in the GAN scale, ``tanh(h)``, for either likelihood:
  what the VAE's samples are (the decoder's mean, no pixel noise)."""
  return jnp.tanh(h)
