"""Gradient penalties for the discriminator, as pure functions.

Each penalty takes ``d_fn``, a function mapping a batch ``x`` of shape
``[B, ...]`` to logits of shape ``[B]`` or ``[B, 1]``, and returns the
*unweighted* batch mean of its squared term. The caller multiplies by the
weight:

* WGAN-GP [1]: ``L_D += lambda * gradient_penalty(...)`` (``lambda = 10`` in
  the paper).
* R1 / R2 [2]: the paper writes the regulariser as ``gamma/2 * E||grad||^2``,
  so ``L_D += (gamma / 2) * r1_penalty(...)``. In this library's configs
  ``penalty_weight`` is always the multiplier of the returned value, i.e.
  ``penalty_weight = gamma / 2`` for R1/R2.

The per-example gradient ``grad_x D(x_i)`` is obtained as the gradient of
``sum_i D(x_i)`` with respect to the whole batch; this equals the per-example
gradient whenever ``d_fn`` treats examples independently (no batch
statistics, no minibatch features). All functions are differentiable (the
discriminator's update differentiates through them: a double gradient) and
work under ``jit``, ``vmap`` and ``grad``.

References:
  [1] Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS 2017.
  [2] Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do
      actually Converge?", ICML 2018.
  [3] Petzka, Fischer & Lukovnicov, "On the regularization of Wasserstein
      GANs", ICLR 2018 (the one-sided penalty).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping

import jax
import jax.numpy as jnp

from gan_stability import regularizers

Array = jax.Array
DFn = Callable[[Array], Array]


def gradient_penalty(d_fn: DFn, real: Array, fake: Array, key: Array, *,
                     target: float = 1.0, one_sided: bool = False) -> Array:
  """Gradient penalty on random interpolates [1, eq. 3].

  ``x_hat = eps * x + (1 - eps) * G(z)`` with ``eps ~ U[0, 1]`` drawn per
  example, and

  * two-sided [1]: ``E[(||grad D(x_hat)|| - target)^2]``;
  * one-sided [1, 3]: ``E[max(0, ||grad D(x_hat)|| - target)^2]``.

  Args:
    d_fn: batch -> logits.
    real: data batch ``[B, ...]``.
    fake: generated batch, same shape as ``real``.
    key: PRNG key for the interpolation coefficients.
    target: the norm the gradient is pulled to (1 in [1]).
    one_sided: penalise only norms above ``target``.

  Returns:
    The unweighted scalar batch mean.
  """
  if real.shape != fake.shape:
    raise ValueError(
        f'gradient_penalty: real {real.shape} and fake {fake.shape} differ')
  eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  eps = jax.random.uniform(key, eps_shape, dtype=real.dtype)
  x_hat = eps * real + (1.0 - eps) * fake
  # sqrt of 0 has an infinite derivative; a tiny floor keeps the double
  # gradient finite where D is locally flat (its effect is < 1e-6).
  norms = jnp.sqrt(regularizers.input_grad_sq_norms(d_fn, x_hat) + 1e-12)
  excess = norms - target
  if one_sided:
    excess = jax.nn.relu(excess)
  return jnp.mean(jnp.square(excess))


def r1_penalty(d_fn: DFn, real: Array) -> Array:
  """R1 regulariser on data [2, eq. 9]: ``E_x[||grad_x D(x)||^2]``.

  Weight it by ``gamma / 2`` to obtain the paper's ``R1``.
  """
  return jnp.mean(regularizers.input_grad_sq_norms(d_fn, real))


def r2_penalty(d_fn: DFn, fake: Array) -> Array:
  """R2 regulariser on samples [2, eq. 10]: ``E_z[||grad_x D(G(z))||^2]``.

  ``fake`` is treated as a constant input (the penalty constrains D only).
  Weight it by ``gamma / 2`` to obtain the paper's ``R2``.
  """
  return jnp.mean(regularizers.input_grad_sq_norms(
      d_fn, jax.lax.stop_gradient(fake)))


@dataclasses.dataclass(frozen=True)
class Penalty:
  """A registered penalty: what the train step needs to know to apply it.

  Attributes:
    fn: ``fn(d_fn, real, fake, key, **params) -> scalar``, the unweighted
      batch mean (arguments it does not use are ignored).
    at: where D's input gradient is taken: ``'interpolates'`` (between real
      and fake examples), ``'real'`` or ``'fake'``. A class-conditional D is
      evaluated there with the labels of that side (the real labels for
      interpolates, whose classes are the real examples').
    needs_key: whether ``fn`` draws random numbers from ``key``.
    per_example: the penalty is a mean of per-example input gradients, so it
      is undefined for a discriminator that mixes examples (batch norm in D,
      PacGAN packing); config validation refuses those combinations.
    params: keyword arguments of ``fn`` and the config fields that set them.
  """
  fn: Callable[..., Array]
  at: str
  needs_key: bool = False
  per_example: bool = True
  params: Mapping[str, str] = dataclasses.field(default_factory=dict)


# The stabilising regularisers of gan_stability.regularizers (one
# implementation, two import paths): D-side terms added to D's loss like the
# penalties above.
dragan = regularizers.dragan_penalty
consistency = regularizers.consistency
balanced_consistency = regularizers.balanced_consistency
lecam = regularizers.lecam

NONE = 'none'

# The registry of penalties, as selected by ``config.penalty`` (with
# ``'none'``); the config schema takes its allowed values from here, and the
# train step reads ``at`` and ``params`` from the entry, never the name.
PENALTIES: dict[str, Penalty] = {
    'gp': Penalty(
        lambda d_fn, real, fake, key, *, target: gradient_penalty(
            d_fn, real, fake, key, target=target),
        at='interpolates', needs_key=True, params={'target': 'gp_target'}),
    'gp_one_sided': Penalty(
        lambda d_fn, real, fake, key, *, target: gradient_penalty(
            d_fn, real, fake, key, target=target, one_sided=True),
        at='interpolates', needs_key=True, params={'target': 'gp_target'}),
    'r1': Penalty(lambda d_fn, real, fake, key: r1_penalty(d_fn, real),
                  at='real'),
    'r2': Penalty(lambda d_fn, real, fake, key: r2_penalty(d_fn, fake),
                  at='fake'),
    # Kodali et al. 2017: (|grad D| - k)^2 at noisy points near the data
    # (gan_stability.regularizers.dragan_penalty; k = gp_target).
    'dragan': Penalty(
        lambda d_fn, real, fake, key, *, k, c: regularizers.dragan_penalty(
            d_fn, real, key, k=k, c=c),
        at='real', needs_key=True, params={'k': 'gp_target', 'c': 'dragan_c'}),
}


def names() -> list[str]:
  """The values ``config.penalty`` accepts: ``'none'`` and the registry's."""
  return [NONE] + list(PENALTIES)


def get_penalty(name: str, **params):
  """``fn(d_fn, real, fake, key) -> scalar`` of penalty ``name`` with its
  hyper-parameters bound (``params``: those of the entry, e.g. ``target``);
  ``None`` for ``'none'``."""
  if name == NONE:
    return None
  if name not in PENALTIES:
    raise ValueError(f'config.penalty: unknown penalty {name!r}; allowed: '
                     f'{names()}')
  fn = PENALTIES[name].fn
  kwargs = {k: params[k] for k in PENALTIES[name].params}
  return lambda d_fn, real, fake, key: fn(d_fn, real, fake, key, **kwargs)
