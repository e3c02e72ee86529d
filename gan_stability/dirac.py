r"""The Dirac-GAN: a two-parameter GAN whose training dynamics are solvable.

Mescheder, Geiger & Nowozin [1, Definition 2.1]: data ``p_D = delta_0``,
generator ``p_theta = delta_theta`` and a linear discriminator
``D_psi(x) = psi * x``. With the paper's objective [1, eq. 1]

    L(theta, psi) = E_{p_theta}[f(D_psi(x))] + E_{p_D}[f(-D_psi(x))]
                  = f(psi * theta) + f(0),

which the generator minimises and the discriminator maximises, the training
dynamics are those of the *gradient vector field*

    v(theta, psi) = (-dL/dtheta, dL/dpsi) = (-psi f'(psi theta), theta f'(psi theta)).

``f(t) = -log(1 + exp(-t))`` gives the original GAN (``f'(0) = 1/2``,
``f''(0) = -1/4``); ``f(t) = t`` gives the WGAN (``f'(0) = 1``,
``f''(0) = 0``). The unique equilibrium is ``(theta, psi) = (0, 0)``
[1, Lemma 2.2].

**Sign convention.** The paper's discriminator scores *samples* high (the
data term is ``f(-D(x))``), whereas this library's losses take logits that
score *data* high (``minimax_d_loss = E softplus(-D(x)) + E softplus(D(G(z)))``).
To keep the paper's coordinates (and its initial point ``(1, 1)`` and figures)
the library logit of the Dirac discriminator is ``-psi * x``
(:func:`dirac_discriminator`); then ``minimax_d_loss = -L`` and
``minimax_g_loss = L - f(0)`` exactly. The penalties only see
``||grad_x D||^2 = psi^2`` and are insensitive to the sign.

Every vector field here is built from the library itself:
``v = (-d g_loss / d theta, -d d_loss / d psi)`` with the losses of
:mod:`gan_stability.losses` and, for the regularised methods, the penalty of
:mod:`gan_stability.penalties` added to ``d_loss`` (regularisers act on the
discriminator's update only). Methods (hyper-parameter defaults are those of
the paper's Dirac-GAN figures, from the authors' ``notebooks/DiracGAN.ipynb``):

=================  ==========================================================
``gan``            minimax GAN. J = [[0, -f'(0)], [f'(0), 0]],
                   eigenvalues ``+-i f'(0)`` [1, Lemma 2.2].
``nsgan``          non-saturating generator loss ``-f(-psi theta)``
                   [GAN, sec. 3]; its Jacobian at (0, 0) equals the GAN's.
``wgan``           ``f(t) = t`` with weight clipping ``|psi| <= clip``
                   (``clip = 1``: the Lipschitz-1 constraint of the linear
                   critic). Eigenvalues ``+-i`` [1, Lemma 3.1].
``wgan_gp``        ``f(t) = t`` with the WGAN-GP penalty
                   ``gamma/2 (|psi| - g0)^2`` (``gamma = 0.7``,
                   ``g0 = target = 1``) [1, Lemma 3.2]; see below.
``instance_noise`` GAN with Gaussian noise ``N(0, sigma^2)`` added to data and
                   samples (``sigma = 0.7``). J = [[0, -f'(0)],
                   [f'(0), 2 sigma^2 f''(0)]], eigenvalues
                   ``f''(0) sigma^2 +- sqrt(f''(0)^2 sigma^4 - f'(0)^2)``
                   [1, Lemma 3.4].
``r1``, ``r2``     GAN + ``gamma/2 E||grad_x D||^2`` on data (R1) or samples
                   (R2) [1, eqs. 9-10] (``gamma = 0.3``). J = [[0, -f'(0)],
                   [f'(0), -gamma]], eigenvalues
                   ``-gamma/2 +- sqrt(gamma^2/4 - f'(0)^2)`` [1, Lemma 3.5,
                   Theorem 4.1].
``consensus``      consensus optimisation [2] on the GAN:
                   ``w = v - gamma grad(1/2 ||v||^2)`` (``gamma = 1``).
                   At (0, 0): ``J_w = J - gamma J^T J``, eigenvalues
                   ``-gamma f'(0)^2 +- i f'(0)`` [1, Lemma 3.3].
=================  ==========================================================

**R1 = R2 on the Dirac-GAN.** ``grad_x D_psi(x) = psi`` for every ``x``, so
R1 (on data) and R2 (on samples) are both ``gamma/2 psi^2``; their vector
fields, Jacobians and trajectories coincide. They differ only for non-linear
discriminators.

**Critical damping.** For R1/R2 the eigenvalues are real and equal, ``-gamma/2``,
exactly when ``gamma = 2 |f'(0)|``, i.e. ``gamma = 1`` for the GAN
(``f'(0) = 1/2``); below it they are complex (damped rotation), above it real
and distinct (one slow mode). ``gamma = 1`` minimises ``max Re(eigenvalue)``
over ``gamma`` (fastest local convergence of the continuous dynamics); the
authors' notebook calls it ``gan_gradpen_critical``.

**WGAN-GP at the equilibrium.** ``||grad_x D|| = |psi|`` is not differentiable
at ``psi = 0`` and the penalty pulls ``|psi|`` towards ``g0 > 0``: the
psi-component of the exact field, ``theta - gamma (|psi| - g0) sign(psi)``,
jumps by ``2 gamma g0`` across ``psi = 0``, so ``(0, 0)`` is not a stationary
point with a Jacobian at all. The library's :func:`penalties.gradient_penalty`
uses ``||g|| = sqrt(g^2 + eps)`` with ``eps = 1e-12``; with it (0, 0) *is*
stationary but its Jacobian ``[[0, -1], [1, kappa]]``,
``kappa = gamma (g0 - sqrt(eps)) / sqrt(eps) ~ 7e5``, has two positive real
eigenvalues: a repelling node. Either way no convergence to (0, 0).

**Instance noise** is evaluated as a deterministic expectation: ``n`` equally
weighted symmetric Gaussian quantile nodes ``z_i`` (rescaled so that
``mean(z_i^2) = 1`` exactly), fed as a batch to the library losses (whose
batch mean is then the expectation). This makes the field smooth and the
Jacobian at (0, 0) exactly the analytic one (it depends only on the first two
moments of the noise). With the default 256 nodes the field is within
~1e-3 of the exact Gaussian expectation on ``[-2, 2]^2`` (checked against
Gauss-Hermite quadrature in the tests; the error falls like ``1/n``). The
authors' notebook uses 1000 fresh Monte-Carlo samples per evaluation.

References:
  [1] Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do
      actually Converge?", ICML 2018 (arXiv:1801.04406); Lemma numbers
      refer to its Sections 2-3 (Dirac-GAN) and Theorem 4.1 (R1/R2).
  [2] Mescheder, Nowozin & Geiger, "The Numerics of GANs", NeurIPS 2017.
  [GAN] Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import statistics
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_stability import losses, penalties

Array = jax.Array

METHODS = ('gan', 'nsgan', 'wgan', 'wgan_gp', 'instance_noise', 'r1', 'r2',
           'consensus')
SCHEMES = ('simultaneous', 'alternating')

# Derivatives of the paper's f at 0: f(t) = -log(1 + e^-t) for the GAN family,
# f(t) = t for the WGAN family.
F_PRIME_0 = {'gan': 0.5, 'wgan': 1.0}
F_SECOND_0 = {'gan': -0.25, 'wgan': 0.0}
# The library's floor inside the gradient norm of ``gradient_penalty``.
GP_EPS = 1e-12


def f_gan(t: Array) -> Array:
  """The paper's ``f(t) = -log(1 + exp(-t)) = log sigmoid(t)`` [1, sec. 2.1]."""
  return -jax.nn.softplus(-t)


def f_wgan(t: Array) -> Array:
  """The paper's ``f(t) = t`` of the Wasserstein GAN [1, sec. 2.1]."""
  return t


def family(method: str) -> str:
  """``'wgan'`` for the methods with ``f(t) = t``, else ``'gan'``."""
  _check_method(method)
  return 'wgan' if method in ('wgan', 'wgan_gp') else 'gan'


@dataclasses.dataclass(frozen=True)
class DiracHParams:
  """Hyper-parameters of the Dirac-GAN methods (hashable: a static jit arg).

  Attributes:
    gamma: regulariser weight: R1/R2 ``gamma/2 ||grad D||^2``; WGAN-GP
      ``gamma/2 (||grad D|| - target)^2`` (Gulrajani et al.'s ``lambda`` is
      ``gamma/2``); consensus ``gamma/2 ||v||^2``.
    sigma: instance-noise standard deviation.
    target: the WGAN-GP norm ``g0``.
    clip: WGAN weight clipping, ``|psi| <= clip``.
    noise_points: quadrature nodes for the instance-noise expectation.
  """
  gamma: float = 0.0
  sigma: float = 0.0
  target: float = 1.0
  clip: float = 1.0
  noise_points: int = 256


# The settings of the paper's Dirac-GAN figure (authors' notebook): WGAN
# clip 1; WGAN-GP gamma 0.7, g0 1; instance noise sigma 0.7; gradient
# penalty gamma 0.3 (and gamma 1, "critical"); consensus gamma 1.
PAPER_HPARAMS = {
    'gan': DiracHParams(),
    'nsgan': DiracHParams(),
    'wgan': DiracHParams(clip=1.0),
    'wgan_gp': DiracHParams(gamma=0.7, target=1.0),
    'instance_noise': DiracHParams(sigma=0.7),
    'r1': DiracHParams(gamma=0.3),
    'r2': DiracHParams(gamma=0.3),
    'consensus': DiracHParams(gamma=1.0),
}


def default_hparams(method: str, **overrides) -> DiracHParams:
  """The paper's hyper-parameters for ``method``, with ``overrides``."""
  _check_method(method)
  return dataclasses.replace(PAPER_HPARAMS[method], **overrides)


def _check_method(method: str):
  if method not in METHODS:
    raise ValueError(f'dirac: unknown method {method!r}; allowed: {METHODS}')


def dirac_discriminator(psi: Array) -> Callable[[Array], Array]:
  """The Dirac discriminator as a library ``d_fn``: ``[B, 1] -> [B]`` logits.

  The library logit is ``-psi * x`` (see the module's sign convention), so the
  paper's ``D_psi(x) = psi * x`` is minus the logit.
  """
  return lambda x: -psi * x[:, 0]


def noise_nodes(n: int) -> Array:
  """``n`` symmetric, equally weighted standard-normal quantile nodes.

  ``z_i = Phi^-1((i - 1/2) / n)``, rescaled so that ``mean(z_i^2) = 1``;
  ``mean(z_i) = 0`` by symmetry.
  """
  return jnp.asarray(_noise_nodes(int(n)), jnp.float32)


@functools.lru_cache(maxsize=None)
def _noise_nodes(n: int) -> np.ndarray:
  # A constant of the traced computation: computed once, in float64.
  inv_cdf = statistics.NormalDist().inv_cdf
  z = np.array([inv_cdf((i + 0.5) / n) for i in range(n)])
  z = 0.5 * (z - z[::-1])  # exact antisymmetry
  return z / np.sqrt(np.mean(np.square(z)))


def losses_at(method: str, theta: Array, psi: Array, *,
              hparams: DiracHParams | None = None) -> tuple[Array, Array]:
  """``(g_loss, d_loss)`` of the Dirac-GAN at ``(theta, psi)``.

  Both players minimise their loss; ``d_loss`` includes the method's
  regulariser. Built from :mod:`gan_stability.losses` and
  :mod:`gan_stability.penalties` with the batch ``real = [[0]]``,
  ``fake = [[theta]]`` (noisy batches for instance noise).
  Consensus optimisation is not a loss change (see :func:`vector_field`); its
  losses are the GAN's.
  """
  _check_method(method)
  hp = hparams or default_hparams(method)
  theta = jnp.asarray(theta, jnp.float32)
  psi = jnp.asarray(psi, jnp.float32)
  d_fn = dirac_discriminator(psi)
  real = jnp.zeros((1, 1), jnp.float32)
  fake = jnp.reshape(theta, (1, 1))
  if method == 'instance_noise':
    eps = hp.sigma * noise_nodes(hp.noise_points)[:, None]
    real, fake = real + eps, fake + eps
  real_logits, fake_logits = d_fn(real), d_fn(fake)

  if method in ('wgan', 'wgan_gp'):
    g_loss = losses.wasserstein_g_loss(fake_logits)
    d_loss = losses.wasserstein_d_loss(real_logits, fake_logits)
  elif method == 'nsgan':
    g_loss = losses.nonsaturating_g_loss(fake_logits)
    d_loss = losses.nonsaturating_d_loss(real_logits, fake_logits)
  else:
    g_loss = losses.minimax_g_loss(fake_logits)
    d_loss = losses.minimax_d_loss(real_logits, fake_logits)

  if method == 'wgan_gp':
    # grad_x D = psi everywhere, so the interpolates (and the key) are moot.
    d_loss += 0.5 * hp.gamma * penalties.gradient_penalty(
        d_fn, real, fake, jax.random.PRNGKey(0), target=hp.target)
  elif method == 'r1':
    d_loss += 0.5 * hp.gamma * penalties.r1_penalty(d_fn, real)
  elif method == 'r2':
    d_loss += 0.5 * hp.gamma * penalties.r2_penalty(d_fn, fake)
  return g_loss, d_loss


def _game_field(z: Array, method: str, hp: DiracHParams) -> Array:
  theta, psi = z[0], z[1]
  g_grad = jax.grad(lambda t: losses_at(method, t, psi, hparams=hp)[0])(theta)
  d_grad = jax.grad(lambda p: losses_at(method, theta, p, hparams=hp)[1])(psi)
  return -jnp.stack([g_grad, d_grad])


def vector_field(z: Array, method: str, *,
                 hparams: DiracHParams | None = None) -> Array:
  """The (regularised) gradient vector field ``v(theta, psi)``, shape ``[2]``.

  ``v = (-d g_loss/d theta, -d d_loss/d psi)``; for the minimax GAN this is the
  paper's ``(-dL/dtheta, dL/dpsi) = (-psi f'(psi theta), theta f'(psi theta))``.
  For ``consensus``, ``w = v - gamma * grad_z(1/2 ||v(z)||^2)`` with ``v`` the
  GAN's field [2, Algorithm 1]. WGAN clipping is a projection, applied by the
  simulators (:func:`project`), not part of the field.

  Args:
    z: ``[2]`` array ``(theta, psi)``.
    method: one of :data:`METHODS`.
    hparams: defaults to :func:`default_hparams` of the method.
  """
  _check_method(method)
  hp = hparams or default_hparams(method)
  z = jnp.asarray(z, jnp.float32)
  if method == 'consensus':
    base = functools.partial(_game_field, method='gan', hp=hp)
    reg = jax.grad(lambda y: 0.5 * jnp.sum(jnp.square(base(y))))(z)
    return base(z) - hp.gamma * reg
  return _game_field(z, method, hp)


@functools.partial(jax.jit, static_argnames=('method', 'hparams'))
def _field_batch(zs, *, method, hparams):
  return jax.vmap(functools.partial(
      vector_field, method=method, hparams=hparams))(zs)


def vector_field_batch(zs: Array, method: str, *,
                       hparams: DiracHParams | None = None) -> Array:
  """:func:`vector_field` at a batch of points ``[N, 2] -> [N, 2]`` (jitted)."""
  _check_method(method)
  hp = hparams or default_hparams(method)
  return _field_batch(jnp.asarray(zs, jnp.float32), method=method, hparams=hp)


def project(z: Array, method: str, *,
            hparams: DiracHParams | None = None) -> Array:
  """WGAN weight clipping ``psi <- clip(psi, -c, c)``; identity otherwise."""
  hp = hparams or default_hparams(method)
  if method == 'wgan':
    return z.at[1].set(jnp.clip(z[1], -hp.clip, hp.clip))
  return z


def update(z: Array, method: str, *, lr: float | Array,
           scheme: str = 'alternating', n_g: int = 1, n_d: int = 1,
           hparams: DiracHParams | None = None) -> Array:
  """One iteration of gradient descent on the game, ``z -> F_h(z)``.

  * ``simultaneous``: ``z <- P(z + h v(z))`` (``n_g``, ``n_d`` ignored).
  * ``alternating``: ``n_g`` generator steps ``theta <- theta + h v_theta(z)``,
    then ``n_d`` discriminator steps ``psi <- P(psi + h v_psi(z))``, each at
    the current point (the order of the authors' code; the order does not
    change the eigenvalues of the linearised map, ``AB`` and ``BA`` being
    similar).

  ``P`` is :func:`project` (WGAN clipping).
  """
  if scheme not in SCHEMES:
    raise ValueError(f'dirac: unknown scheme {scheme!r}; allowed: {SCHEMES}')
  hp = hparams or default_hparams(method)
  field = functools.partial(vector_field, method=method, hparams=hp)
  z = jnp.asarray(z, jnp.float32)
  if scheme == 'simultaneous':
    return project(z + lr * field(z), method, hparams=hp)
  for _ in range(n_g):
    z = z.at[0].add(lr * field(z)[0])
  for _ in range(n_d):
    z = project(z.at[1].add(lr * field(z)[1]), method, hparams=hp)
  return z


@functools.partial(jax.jit, static_argnames=(
    'method', 'steps', 'scheme', 'n_g', 'n_d', 'hparams'))
def _simulate(z0, lr, *, method, steps, scheme, n_g, n_d, hparams):
  step = functools.partial(update, method=method, lr=lr, scheme=scheme,
                           n_g=n_g, n_d=n_d, hparams=hparams)

  def body(z, _):
    z = step(z)
    return z, z

  z0 = project(jnp.asarray(z0, jnp.float32), method, hparams=hparams)
  _, zs = jax.lax.scan(body, z0, None, length=steps)
  return jnp.concatenate([z0[None], zs], axis=0)


def simulate(method: str, z0=(1.0, 1.0), *, steps: int, lr: float,
             scheme: str = 'alternating', n_g: int = 1, n_d: int = 1,
             hparams: DiracHParams | None = None) -> Array:
  """The trajectory ``z_0, ..., z_steps`` of :func:`update`, ``[steps + 1, 2]``.

  Jit-compiled ``jax.lax.scan``; ``z0`` is projected first (WGAN). The paper's
  figures start at ``(theta, psi) = (1, 1)`` with ``h = 0.2``.
  """
  _check_method(method)
  if scheme not in SCHEMES:
    raise ValueError(f'dirac: unknown scheme {scheme!r}; allowed: {SCHEMES}')
  hp = hparams or default_hparams(method)
  return _simulate(jnp.asarray(z0, jnp.float32), jnp.float32(lr),
                   method=method, steps=int(steps), scheme=scheme,
                   n_g=int(n_g), n_d=int(n_d), hparams=hp)


# ---------------------------------------------------------------------------
# Linearisation at the equilibrium (0, 0).
# ---------------------------------------------------------------------------
def jacobian_at_equilibrium(method: str, *,
                            hparams: DiracHParams | None = None) -> np.ndarray:
  """``dv/dz`` at ``(0, 0)`` by ``jax.jacfwd`` of :func:`vector_field`, ``[2, 2]``.

  Rows: ``(v_theta, v_psi)``; columns: ``(theta, psi)``.
  """
  hp = hparams or default_hparams(method)
  return np.asarray(_field_jacobian(jnp.zeros(2, jnp.float32), method=method,
                                    hparams=hp), np.float64)


@functools.partial(jax.jit, static_argnames=('method', 'hparams'))
def _field_jacobian(z, *, method, hparams):
  return jax.jacfwd(functools.partial(
      vector_field, method=method, hparams=hparams))(z)


@functools.partial(jax.jit,
                   static_argnames=('method', 'scheme', 'n_g', 'n_d', 'hparams'))
def _update_jacobian(z, lr, *, method, scheme, n_g, n_d, hparams):
  return jax.jacfwd(functools.partial(
      update, method=method, lr=lr, scheme=scheme, n_g=n_g, n_d=n_d,
      hparams=hparams))(z)


def update_jacobian_at_equilibrium(method: str, *, lr: float,
                                   scheme: str = 'alternating', n_g: int = 1,
                                   n_d: int = 1,
                                   hparams: DiracHParams | None = None
                                   ) -> np.ndarray:
  """``dF_h/dz`` of the update operator at ``(0, 0)`` by ``jax.jacfwd``.

  GD is locally convergent iff its spectral radius is < 1 [1, App. A].
  """
  hp = hparams or default_hparams(method)
  return np.asarray(_update_jacobian(
      jnp.zeros(2, jnp.float32), jnp.float32(lr), method=method,
      scheme=scheme, n_g=int(n_g), n_d=int(n_d), hparams=hp), np.float64)


def analytic_jacobian(method: str, *,
                      hparams: DiracHParams | None = None) -> np.ndarray:
  """The paper's Jacobian of the vector field at ``(0, 0)``, ``[2, 2]``.

  ``a = f'(0)``, ``b = f''(0)``:

  * gan, nsgan, wgan: ``[[0, -a], [a, 0]]`` [1, Lemmas 2.2, 3.1];
  * instance_noise: ``[[0, -a], [a, 2 sigma^2 b]]`` [1, Lemma 3.4];
  * r1, r2: ``[[0, -a], [a, -gamma]]`` [1, Lemma 3.5, Theorem 4.1];
  * consensus: ``J - gamma J^T J = [[-gamma a^2, -a], [a, -gamma a^2]]``
    [1, Lemma 3.3];
  * wgan_gp: undefined for the exact penalty; returned for the library's
    smoothed norm ``sqrt(psi^2 + eps)``: ``[[0, -1], [1, kappa]]`` with
    ``kappa = gamma (g0 - sqrt(eps)) / sqrt(eps)``.
  """
  hp = hparams or default_hparams(method)
  fam = family(method)
  a, b = F_PRIME_0[fam], F_SECOND_0[fam]
  rot = np.array([[0.0, -a], [a, 0.0]])
  if method in ('gan', 'nsgan', 'wgan'):
    return rot
  if method == 'instance_noise':
    return rot + np.array([[0.0, 0.0], [0.0, 2.0 * hp.sigma**2 * b]])
  if method in ('r1', 'r2'):
    return rot + np.array([[0.0, 0.0], [0.0, -hp.gamma]])
  if method == 'consensus':
    return rot - hp.gamma * rot.T @ rot
  # wgan_gp (smoothed)
  s = math.sqrt(GP_EPS)
  return rot + np.array([[0.0, 0.0], [0.0, hp.gamma * (hp.target - s) / s]])


def analytic_eigenvalues(method: str, *,
                         hparams: DiracHParams | None = None) -> np.ndarray:
  """The paper's closed-form eigenvalues of the Jacobian at ``(0, 0)``.

  Sorted by (real, imaginary) part, complex ``[2]``. See
  :func:`analytic_jacobian` for the sources; ``a = f'(0)``, ``b = f''(0)``:
  ``+-i a``; ``b sigma^2 +- sqrt(b^2 sigma^4 - a^2)``;
  ``-gamma/2 +- sqrt(gamma^2/4 - a^2)``; ``-gamma a^2 +- i a``; for the
  smoothed WGAN-GP ``(kappa +- sqrt(kappa^2 - 4)) / 2``.
  """
  hp = hparams or default_hparams(method)
  fam = family(method)
  a, b = F_PRIME_0[fam], F_SECOND_0[fam]
  sq = lambda x: np.sqrt(complex(x))
  if method in ('gan', 'nsgan', 'wgan'):
    mid, rad = 0.0, sq(-a * a)
  elif method == 'instance_noise':
    mid, rad = b * hp.sigma**2, sq(b * b * hp.sigma**4 - a * a)
  elif method in ('r1', 'r2'):
    mid, rad = -hp.gamma / 2, sq(hp.gamma**2 / 4 - a * a)
  elif method == 'consensus':
    mid, rad = -hp.gamma * a * a, sq(-a * a)
  else:  # wgan_gp, smoothed
    s = math.sqrt(GP_EPS)
    kappa = hp.gamma * (hp.target - s) / s
    mid, rad = kappa / 2, sq(kappa * kappa / 4 - 1.0)
  return sort_complex(np.array([mid - rad, mid + rad]))


def critical_gamma(method: str = 'r1') -> float:
  """``gamma = 2 |f'(0)|``: R1/R2 eigenvalues real and equal (``= 1`` for GAN)."""
  return 2.0 * abs(F_PRIME_0[family(method)])


def analytic_update_eigenvalues(method: str, *, lr: float,
                                scheme: str = 'alternating', n_g: int = 1,
                                n_d: int = 1,
                                hparams: DiracHParams | None = None
                                ) -> np.ndarray:
  """Eigenvalues of the linearised update operator at ``(0, 0)``.

  Simultaneous: ``1 + h lambda`` for each eigenvalue ``lambda`` of ``J``
  (``1 +- i h f'(0)`` for the GAN, modulus ``sqrt(1 + h^2 f'(0)^2) > 1``
  [1, Lemma 2.4]). Alternating: eigenvalues of
  ``(I + h J_D)^{n_d} (I + h J_G)^{n_g}`` with ``J_G``/``J_D`` the
  generator/discriminator rows of ``J``; for the GAN they are
  ``1 - alpha^2/2 +- sqrt((1 - alpha^2/2)^2 - 1)``,
  ``alpha = sqrt(n_g n_d) h f'(0)``, on the unit circle for ``alpha <= 2``
  [1, Lemma 2.5].
  """
  jac = analytic_jacobian(method, hparams=hparams)
  return eigenvalues(linear_update_operator(jac, lr=lr, scheme=scheme,
                                            n_g=n_g, n_d=n_d))


def linear_update_operator(jac, *, lr: float, scheme: str = 'alternating',
                           n_g: int = 1, n_d: int = 1) -> np.ndarray:
  """The update operator of GD on the linear field ``v(z) = jac @ z``, ``[2, 2]``.

  Simultaneous: ``I + h J``. Alternating: ``(I + h J_D)^{n_d} (I + h J_G)^{n_g}``
  with ``J_G = [J[0]; 0]`` and ``J_D = [0; J[1]]``. At an interior fixed point
  this is the Jacobian of :func:`update` (``update_jacobian_at_equilibrium``).
  """
  jac = np.asarray(jac, np.float64)
  eye = np.eye(2)
  if scheme == 'simultaneous':
    return eye + lr * jac
  gen = eye + lr * np.array([jac[0], [0.0, 0.0]])
  dis = eye + lr * np.array([[0.0, 0.0], jac[1]])
  return np.linalg.matrix_power(dis, n_d) @ np.linalg.matrix_power(gen, n_g)


def sort_complex(x) -> np.ndarray:
  """Complex array sorted by real then imaginary part."""
  x = np.asarray(x, np.complex128)
  return x[np.lexsort((x.imag, x.real))]


def eigenvalues(matrix) -> np.ndarray:
  """Eigenvalues of a 2x2 matrix, sorted (:func:`sort_complex`)."""
  return sort_complex(np.linalg.eigvals(np.asarray(matrix, np.float64)))


# ---------------------------------------------------------------------------
# Reading a trajectory.
# ---------------------------------------------------------------------------
CONVERGENCE_TOL = 1e-2


def describe(trajectory, *, tol: float = CONVERGENCE_TOL) -> dict:
  """Summary of a trajectory ``[T + 1, 2]``.

  ``converged``: ``||z_T|| < tol`` (the equilibrium is (0, 0)). ``behaviour``:
  ``'converges'``; ``'diverges'`` if not finite or ``||z_T|| > 10 ||z_0||``;
  ``'spirals out'`` if ``||z_T|| > 1.25 ||z_0||`` and the norm grew in more
  than 95% of the steps; ``'decays slowly'`` if the norm over the last 10% of
  steps stays below half the mean norm over the first 10% (but not below
  ``tol``); else ``'oscillates'`` (bounded, not converging).
  """
  traj = np.asarray(trajectory, np.float64)
  norms = np.linalg.norm(traj, axis=-1)
  k = max(1, len(norms) // 10)
  final = float(norms[-1])
  finite = bool(np.all(np.isfinite(traj)))
  if not finite:
    behaviour = 'diverges'
  elif final < tol:
    behaviour = 'converges'
  elif final > 10.0 * norms[0]:
    behaviour = 'diverges'
  elif final > 1.25 * norms[0] and np.mean(np.diff(norms) >= 0) > 0.95:
    behaviour = 'spirals out'
  elif norms[-k:].max() < 0.5 * norms[:k].mean():
    behaviour = 'decays slowly'
  else:
    behaviour = 'oscillates'
  return {
      'initial_norm': float(norms[0]),
      'final_norm': final,
      'min_norm_last10': float(norms[-k:].min()),
      'max_norm_last10': float(norms[-k:].max()),
      'converged': finite and final < tol,
      'behaviour': behaviour,
  }
