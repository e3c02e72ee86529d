"""Stabilising regularisers for GAN training, as pure functions.

Every function here is a pure function of arrays (and, for the DRAGAN
penalty, of ``d_fn``, a function mapping a batch ``[B, ...]`` to logits
``[B]`` or ``[B, 1]``); hyper-parameters are keyword-only; all work under
``jit``, ``vmap`` and ``grad``. The functions return *unweighted* terms unless
their docstring says otherwise (:func:`balanced_consistency` returns the
weighted sum of its two terms, :func:`lazy` and :func:`lazy_cond` the
lazily-scaled value); the caller adds ``weight * term`` to the loss of the
player named in each docstring. The default weights of the papers are given
as module constants (``*_LAMBDA*``).

* DRAGAN [DRAGAN]: :func:`dragan_penalty`, a gradient penalty around the data.
* Consistency regularisation [CR, ICR]: :func:`consistency` (CR),
  :func:`balanced_consistency` (bCR), :func:`perturb_latents`,
  :func:`latent_consistency_d` and :func:`latent_consistency_g` (zCR). They
  are functions of D's (or G's) outputs: the caller applies the augmentation
  ``T`` and passes the outputs on the augmented batch.
* LeCam regularisation [LeCam]: :func:`lecam` with :func:`ema_update` for its
  anchors.
* Instance noise [IN1, IN2]: :func:`instance_noise` and
  :func:`noise_schedule`.
* One-sided label smoothing [Improved]: :func:`smoothed_d_loss`.
* Lazy regularisation [StyleGAN2]: :func:`lazy` and :func:`lazy_cond`.

References:
  [DRAGAN] Kodali, Abernethy, Hays & Kira, "On Convergence and Stability of
           GANs", arXiv:1705.07215, 2017; released code
           github.com/kodalinaveen3/DRAGAN (DRAGAN.ipynb).
  [CR]     Zhang, Zhang, Odena & Lee, "Consistency Regularization for
           Generative Adversarial Networks", ICLR 2020.
  [ICR]    Zhao, Singh, Zhang, Odena & Lee, "Improved Consistency
           Regularization for GANs", AAAI 2021 (bCR and zCR).
  [LeCam]  Tseng, Jiang, Liu, Yang & Yang, "Regularizing Generative
           Adversarial Networks under Limited Data", CVPR 2021; released code
           github.com/google/lecam-gan (biggan_cifar/losses.py,
           stylegan2/lecam_loss.py).
  [IN1]    Sønderby, Caballero, Theis, Shi & Huszár, "Amortised MAP Inference
           for Image Super-resolution", ICLR 2017 (instance noise).
  [IN2]    Arjovsky & Bottou, "Towards Principled Methods for Training
           Generative Adversarial Networks", ICLR 2017.
  [Improved] Salimans et al., "Improved Techniques for Training GANs",
           NeurIPS 2016, sec. 3.4.
  [StyleGAN2] Karras et al., "Analyzing and Improving the Image Quality of
           StyleGAN", CVPR 2020, sec. 4 (lazy regularisation).
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

Array = jax.Array
DFn = Callable[[Array], Array]

# Default weights and scales of the papers (the caller multiplies by them).
DRAGAN_LAMBDA = 10.0       # [DRAGAN]: lambda = 10 (``lambd = 10`` in the code)
CR_LAMBDA = 10.0           # [CR]: lambda = 10
BCR_LAMBDA_REAL = 10.0     # [ICR]: lambda_real = lambda_fake = 10
BCR_LAMBDA_FAKE = 10.0
ZCR_LAMBDA_DIS = 5.0       # [ICR]: lambda_dis = 5
ZCR_LAMBDA_GEN = 0.5       # [ICR]: lambda_gen = 0.5
ZCR_SIGMA_NOISE = 0.03     # [ICR]: sigma_noise = 0.03
LECAM_DECAY = 0.99         # [LeCam] stylegan2 code (BigGAN code: 0.9)

_NOISE_KINDS = ('linear', 'exponential', 'constant')


def _float(x: Array) -> Array:
  """``x`` as an array of at least float32 precision (keeps float64)."""
  return jnp.asarray(x, jnp.result_type(x, jnp.float32))


def _per_example_sq(diff: Array) -> Array:
  """``||diff_i||^2`` summed over all but the batch axis, shape ``[B]``."""
  diff = _float(diff)
  if diff.ndim == 0:
    raise ValueError('regularizers: expected a batch [B, ...], got a scalar')
  return jnp.sum(jnp.square(diff).reshape(diff.shape[0], -1), axis=-1)


def _check_same_shape(name: str, a: Array, b: Array):
  if jnp.shape(a) != jnp.shape(b):
    raise ValueError(
        f'{name}: shapes {jnp.shape(a)} and {jnp.shape(b)} differ')


# ---------------------------------------------------------------------------
# DRAGAN.
# ---------------------------------------------------------------------------
def input_grad_sq_norms(d_fn: DFn, x: Array) -> Array:
  """``||grad_x D(x_i)||^2`` for every example of the batch, shape ``[B]``
  (the gradient of ``sum_i D(x_i)``: per-example when D treats examples
  independently)."""
  grads = jax.grad(lambda inp: jnp.sum(d_fn(inp)))(x)
  return jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=-1)


def dragan_points(real: Array, key: Array, *, c: float = 0.5,
                  interpolate: bool = True) -> Array:
  """The points where :func:`dragan_penalty` takes D's input gradient.

  As in the authors' released code [DRAGAN, DRAGAN.ipynb]:

  * perturbed data ``x_tilde = x + c * std(x) * u`` with ``u ~ U[0, 1)``
    drawn per element and ``std(x)`` the (population, ``ddof=0``) standard
    deviation of the *whole batch*, a scalar (the code:
    ``minibatch + 0.5 * minibatch.std() * np.random.random(shape)``);
  * with ``interpolate=True`` (the code), ``x_hat = x + alpha (x_tilde - x)``
    with ``alpha ~ U[0, 1)`` drawn per example; with ``interpolate=False``,
    ``x_hat = x_tilde``.

  The perturbation ``c * std(x) * u`` is a constant (``stop_gradient``), as
  in the code, where it is computed outside the graph.

  Random numbers: ``key_u, key_alpha = jax.random.split(key)``;
  ``u = jax.random.uniform(key_u, real.shape, real.dtype)``;
  ``alpha = jax.random.uniform(key_alpha, (B, 1, ..., 1), real.dtype)``.
  """
  real = _float(real)
  key_u, key_alpha = jax.random.split(key)
  u = jax.random.uniform(key_u, real.shape, dtype=real.dtype)
  delta = jax.lax.stop_gradient(c * jnp.std(real) * u)
  if not interpolate:
    return real + delta
  alpha_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
  alpha = jax.random.uniform(key_alpha, alpha_shape, dtype=real.dtype)
  return real + alpha * delta


def dragan_penalty(d_fn: DFn, real: Array, key: Array, *, k: float = 1.0,
                   c: float = 0.5, interpolate: bool = True) -> Array:
  """DRAGAN gradient penalty around the data [DRAGAN].

  ``E[(||grad_x D(x_hat)|| - k)^2]`` at points ``x_hat`` near the data (see
  :func:`dragan_points` for how they are drawn). The paper writes the
  penalty as ``lambda * E_{x, delta ~ N(0, cI)}[(||grad D(x + delta)|| -
  k)^2]``; its released code, followed here, perturbs with
  ``delta = c * std(x) * U[0, 1)`` (``c = 0.5``), per element, and then takes
  the gradient at a random point between ``x`` and ``x + delta``
  (``interpolate=True``). The penalty constrains D only: the caller adds
  ``DRAGAN_LAMBDA * dragan_penalty(...)`` (``lambda = 10``, ``k = 1``) to D's
  loss.

  Args:
    d_fn: batch -> logits ``[B]`` or ``[B, 1]``.
    real: data batch ``[B, ...]``.
    key: PRNG key for the perturbation and the interpolation.
    k: the gradient norm D is pulled to.
    c: the perturbation's scale in units of the batch's standard deviation.
    interpolate: take the gradient between ``x`` and ``x_tilde`` (the code)
      rather than at ``x_tilde``.

  Returns:
    The unweighted scalar batch mean.
  """
  x_hat = dragan_points(real, key, c=c, interpolate=interpolate)
  # sqrt of 0 has an infinite derivative; a tiny floor keeps the double
  # gradient finite where D is locally flat (its effect is < 1e-6).
  norms = jnp.sqrt(input_grad_sq_norms(d_fn, x_hat) + 1e-12)
  return jnp.mean(jnp.square(norms - k))


# ---------------------------------------------------------------------------
# Consistency regularisation.
# ---------------------------------------------------------------------------
def consistency(d_x: Array, d_aug_x: Array) -> Array:
  """Consistency regularisation [CR]: ``E[||D(x) - D(T(x))||^2]``.

  ``d_x = D(x)`` and ``d_aug_x = D(T(x))`` for a semantics-preserving
  augmentation ``T`` chosen by the caller; logits ``[B]`` or ``[B, 1]`` (any
  ``[B, ...]``: the squared difference is summed per example, then averaged
  over the batch). Both arguments carry gradients (D minimises the term).
  CR-GAN adds ``CR_LAMBDA * consistency(D(x), D(T(x)))`` (``lambda = 10``)
  on real data to D's loss.
  """
  _check_same_shape('consistency', d_x, d_aug_x)
  return jnp.mean(_per_example_sq(_float(d_x) - _float(d_aug_x)))


def balanced_consistency(d_real: Array, d_real_aug: Array, d_fake: Array,
                         d_fake_aug: Array, *,
                         lambda_real: float = BCR_LAMBDA_REAL,
                         lambda_fake: float = BCR_LAMBDA_FAKE) -> Array:
  """Balanced consistency regularisation (bCR) [ICR].

  ``lambda_real * E||D(x) - D(T(x))||^2 +
  lambda_fake * E||D(G(z)) - D(T(G(z)))||^2`` -- the *weighted* sum (the
  paper's defaults ``lambda_real = lambda_fake = 10``), to be added to D's
  loss as is. ``d_fake``/``d_fake_aug`` are D's outputs on generated samples
  (treated as constants for D's update, like the other fake inputs of D's
  loss).
  """
  return (lambda_real * consistency(d_real, d_real_aug) +
          lambda_fake * consistency(d_fake, d_fake_aug))


def perturb_latents(z: Array, key: Array, *,
                    sigma: float = ZCR_SIGMA_NOISE) -> Array:
  """The augmented latents of zCR [ICR]: ``T(z) = z + dz`` with
  ``dz ~ N(0, sigma^2 I)`` (``sigma_noise = 0.03`` in the paper).

  Random numbers: ``jax.random.normal(key, z.shape, z.dtype)``.
  """
  z = _float(z)
  return z + sigma * jax.random.normal(key, z.shape, dtype=z.dtype)


def latent_consistency_d(d_gz: Array, d_gz_noisy: Array) -> Array:
  """zCR's discriminator term [ICR]:
  ``L_dis = E||D(G(z)) - D(G(T(z)))||^2`` (D minimises it: D should not be
  sensitive to small changes of the latent). D's loss adds
  ``ZCR_LAMBDA_DIS * L_dis`` (``lambda_dis = 5``)."""
  _check_same_shape('latent_consistency_d', d_gz, d_gz_noisy)
  return consistency(d_gz, d_gz_noisy)


def latent_consistency_g(g_z: Array, g_z_noisy: Array) -> Array:
  """zCR's generator term [ICR]:
  ``L_gen = -E||G(z) - G(T(z))||^2``, the squared distance summed over each
  sample's pixels and averaged over the batch, negated: G *minimises*
  ``L_gen``, i.e. it is pushed to map nearby latents to different samples
  (against mode collapse). G's loss adds ``ZCR_LAMBDA_GEN * L_gen``
  (``lambda_gen = 0.5``)."""
  _check_same_shape('latent_consistency_g', g_z, g_z_noisy)
  return -jnp.mean(_per_example_sq(_float(g_z) - _float(g_z_noisy)))


# ---------------------------------------------------------------------------
# LeCam.
# ---------------------------------------------------------------------------
def lecam(d_real: Array, d_fake: Array, ema_real: Array, ema_fake: Array, *,
          hinge: bool = True) -> Array:
  """LeCam regulariser [LeCam] with the authors' code's hinge.

  * ``hinge=True`` (default; the released code, both its BigGAN and its
    StyleGAN2 version): ``mean(relu(D(x) - a_F)^2) +
    mean(relu(a_R - D(G(z)))^2)``: only real outputs *above* the fake anchor
    and fake outputs *below* the real anchor are pulled back;
  * ``hinge=False`` (the paper's equation): ``mean((D(x) - a_F)^2) +
    mean((D(G(z)) - a_R)^2)``.

  ``a_R = ema_real``, ``a_F = ema_fake``: exponential moving averages of D's
  batch-mean outputs on real and generated data, kept in the train state by
  the caller (:func:`ema_update`). They are constants here
  (``stop_gradient``). The term constrains D: D's loss adds ``lambda *
  lecam(...)`` (the code's CIFAR scripts use ``--LC 0.3``; the BigGAN code
  adds it only after iteration 1000).
  """
  _check_same_shape('lecam', ema_real, ema_fake)
  ema_real = jax.lax.stop_gradient(_float(ema_real))
  ema_fake = jax.lax.stop_gradient(_float(ema_fake))
  real_excess = _float(d_real) - ema_fake
  fake_excess = ema_real - _float(d_fake)
  if hinge:
    real_excess = jax.nn.relu(real_excess)
    fake_excess = jax.nn.relu(fake_excess)
  return jnp.mean(jnp.square(real_excess)) + jnp.mean(jnp.square(fake_excess))


def ema_update(ema: Array, value: Array, *,
               decay: float = LECAM_DECAY) -> Array:
  """``decay * ema + (1 - decay) * value``, the update of a LeCam anchor.

  ``value`` is the batch mean of D's outputs (``jnp.mean(d_real)`` for
  ``ema_real``); it is taken as a constant (``stop_gradient``). The authors'
  StyleGAN2 code uses ``decay = 0.99`` (with TF's zero-debiasing), their
  BigGAN code ``decay = 0.9`` (after 1000 iterations, ``decay = 0`` before:
  the anchor is the last batch mean); no debiasing is done here.
  """
  return decay * _float(ema) + (1.0 - decay) * jax.lax.stop_gradient(
      _float(value))


# ---------------------------------------------------------------------------
# Instance noise.
# ---------------------------------------------------------------------------
def instance_noise(x: Array, key: Array, sigma) -> Array:
  """Instance noise [IN1, IN2]: ``x + sigma * N(0, I)``.

  Applied by the caller to *both* the real and the generated batch (with
  independent keys) before D sees them, so that the two distributions
  overlap; ``sigma`` (possibly traced, e.g. :func:`noise_schedule`'s value)
  is annealed towards 0 during training. ``sigma = 0`` returns ``x``.

  Random numbers: ``jax.random.normal(key, x.shape, x.dtype)``.
  """
  x = _float(x)
  sigma = jnp.asarray(sigma, x.dtype)
  return x + sigma * jax.random.normal(key, x.shape, dtype=x.dtype)


def noise_schedule(step, *, sigma0: float, anneal_steps: int,
                   kind: str = 'linear', final_ratio: float = 0.01) -> Array:
  """The instance-noise scale ``sigma(step)``; ``step`` may be traced.

  With ``t = step / anneal_steps``:

  * ``'linear'``: ``sigma0 * max(0, 1 - t)``: from ``sigma0`` at step 0 to 0
    at ``anneal_steps``, 0 afterwards;
  * ``'exponential'``: ``sigma0 * final_ratio ** t``: geometric decay,
    ``final_ratio * sigma0`` (1% by default) at ``anneal_steps``, and on
    decaying by the same factor every ``anneal_steps`` steps (never exactly
    0);
  * ``'constant'``: ``sigma0``.

  Returns a float32 scalar (float64 when ``sigma0`` or ``step`` are).
  """
  if kind not in _NOISE_KINDS:
    raise ValueError(f'noise_schedule: unknown kind {kind!r}; allowed: '
                     f'{list(_NOISE_KINDS)}')
  if not anneal_steps > 0:
    raise ValueError(
        f'noise_schedule: anneal_steps must be > 0, got {anneal_steps}')
  if kind == 'exponential' and not 0 < final_ratio < 1:
    raise ValueError(
        f'noise_schedule: final_ratio must be in (0, 1), got {final_ratio}')
  dtype = jnp.result_type(jnp.float32, sigma0, step)
  t = jnp.asarray(step, dtype) / anneal_steps
  sigma0 = jnp.asarray(sigma0, dtype)
  if kind == 'constant':
    return sigma0 * jnp.ones_like(t)
  if kind == 'linear':
    return sigma0 * jnp.maximum(0.0, 1.0 - t)
  return sigma0 * jnp.power(jnp.asarray(final_ratio, dtype), t)


# ---------------------------------------------------------------------------
# One-sided label smoothing.
# ---------------------------------------------------------------------------
def smoothed_d_loss(real_logits: Array, fake_logits: Array, *,
                    real_target: float = 0.9) -> Array:
  """D loss with one-sided label smoothing [Improved, sec. 3.4].

  Sigmoid cross-entropy with target ``real_target`` (0.9 in the paper's
  example) for data and 0 for samples -- only the real labels are smoothed
  (with smoothed fake targets D's optimum stays positive where the data
  density is ~0 but the model's is large, so such samples get no incentive
  to move towards the data):

  ``L_D = E_x[t softplus(-D(x)) + (1 - t) softplus(D(x))]
        + E_z[softplus(D(G(z)))]``,

  in softplus form, finite for logits of any magnitude. With
  ``real_target=1`` it is :func:`gan_stability.losses.minimax_d_loss`. Its
  minimum over the real logits is at ``D(x) = logit(t)`` (not at ``+inf``),
  where the real part equals the binary entropy of ``t``.
  """
  real_logits = _float(real_logits)
  fake_logits = _float(fake_logits)
  real_part = (real_target * jax.nn.softplus(-real_logits) +
               (1.0 - real_target) * jax.nn.softplus(real_logits))
  return jnp.mean(real_part) + jnp.mean(jax.nn.softplus(fake_logits))


# ---------------------------------------------------------------------------
# Lazy regularisation.
# ---------------------------------------------------------------------------
def _check_every(name: str, every):
  if not isinstance(every, int) or isinstance(every, bool) or every < 1:
    raise ValueError(f'{name}: every must be a Python int >= 1, got '
                     f'{every!r}')


def lazy(penalty_value: Array, step, *, every: int) -> Array:
  """Lazy regularisation [StyleGAN2, sec. 4]: ``every * penalty_value`` on
  steps with ``step % every == 0``, else 0.

  The regulariser is applied once every ``every`` minibatches (16 for R1 in
  the paper) and scaled by ``every`` so that its expected strength is
  unchanged. Written with ``jnp.where``, so ``step`` may be traced -- but the
  penalty is then still *computed* on every step (no compute is saved), and
  a non-finite penalty or gradient off-step still poisons the gradient
  (``0 * nan``). To skip the computation use :func:`lazy_cond`.
  """
  _check_every('lazy', every)
  penalty_value = _float(penalty_value)
  on = jnp.asarray(step) % every == 0
  return jnp.where(on, every * penalty_value, jnp.zeros_like(penalty_value))


def lazy_cond(step, every: int, fn: Callable[..., Array], *args) -> Array:
  """:func:`lazy` that evaluates ``fn(*args)`` only on the regularisation
  steps: ``every * fn(*args)`` when ``step % every == 0``, else zeros of
  ``fn``'s output shape and dtype, through ``jax.lax.cond`` (``step`` may be
  traced).

  Off-step, ``fn`` is not executed (``jax.lax.cond`` runs one branch; both
  are traced) and its gradient is exactly 0. Under ``vmap`` with a batched
  ``step`` the ``cond`` becomes a ``select`` and both branches run.
  """
  _check_every('lazy_cond', every)
  out = jax.eval_shape(fn, *args)

  def on_step(*a):
    return jax.tree.map(lambda v: every * v, fn(*a))

  def off_step(*a):
    return jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), out)

  return jax.lax.cond(jnp.asarray(step) % every == 0, on_step, off_step,
                      *args)
