r"""Game-aware updates of the two GAN players, as pure functions.

A GAN train step updates the generator's parameters ``g`` and the
discriminator's ``d`` from the gradients of their own losses. The methods here
act on *both* players' gradients together, so they take the gradient function
rather than the gradients:

    GradFn = Callable[[g_params, d_params], tuple[g_grads, d_grads]]

``grad_fn(g, d) = (dL_G/dg, dL_D/dd)``: each player's gradient of the loss it
*minimises* (the library's convention, :mod:`gan_stability.losses`). Stacked,
``u(w) = (dL_G/dg, dL_D/dd)`` at ``w = (g, d)`` is minus the game's vector
field ``v`` of Mescheder et al. [1, 2] (``v = -u``); every method below is
written with ``u``, so plain gradient descent is ``w <- w - eta u(w)``.

Usage (``optax``-like; ``g``, ``d`` and the state are pytrees, the step is
pure and jit-able, with no hidden state)::

    update = game_update('extragradient', lr_g=1e-4, lr_d=1e-4)
    state = update.init(g_params, d_params)
    (g_params, d_params), state = update.step(grad_fn, g_params, d_params,
                                              state)

``jax.jit(update.step, static_argnums=0)`` or ``jax.jit`` of a closure over
``grad_fn`` compiles it. Learning rates are per player (``lr_g``, ``lr_d``)
and may be numbers, scalar arrays or ``optax`` schedules (functions of the
state's ``count``, the number of steps taken). Below ``eta`` means the player's
rate; ``eta u`` multiplies each player's block by its own rate.

=====================  ========================================================
``simultaneous``       ``w <- w - eta u(w)``: both players step from the same
                       point (= two ``optax.sgd`` updates). One ``grad_fn``
                       call.
``alternating``        ``d <- d - eta_D u_D(g, d)``, then
                       ``g <- g - eta_G u_G(g, d_new)``: the generator's
                       gradient is re-evaluated at the new discriminator
                       (two calls).
``consensus``          ``w <- w - eta (u + gamma J^T u)`` with
                       ``J^T u = grad_w (1/2 ||u(w)||^2)``, ``J = du/dw`` the
                       Jacobian of the *joint* field [2, Algorithm 1]; computed
                       as one ``jax.vjp`` of ``grad_fn`` (no explicit
                       Jacobian; the cost of ~2 gradient evaluations).
``extragradient``      ``w' = w - eta u(w)``, ``w <- w - eta u(w')``
                       [Korpelevich 1976; 3, Algorithm 2] (two calls).
``optimistic``         ``w_{t+1} = w_t - 2 eta u_t + eta u_{t-1}``
                       [4, eq. (OMD)], ``u_t = u(w_t)``; the state keeps
                       ``u_{t-1}`` (one call).
``optimistic_adam``    Optimistic Adam [4, Algorithm 1]: the same correction
                       applied to Adam's direction (see
                       :func:`optimistic_adam`).
=====================  ========================================================

**First step of the optimistic methods.** ``u_{-1}`` does not exist; as in
the authors' code and in ``optax.optimistic_gradient_descent`` it is taken to
be ``u_0``, so the first step is a plain (GD or Adam) step. ``optimistic`` then
equals ``optax.optimistic_gradient_descent(eta)`` per player and
``optimistic_adam`` equals ``optax.optimistic_adam_v2(eta, nesterov=False)``
(both asserted in the tests).

**Linearisation** (``u(w) ~ A w`` near an equilibrium, one rate ``eta``):
simultaneous ``I - eta A``; consensus ``I - eta A - gamma eta A^T A``;
extragradient ``I - eta A + eta^2 A^2``; optimistic, on the state
``(w_t, u_{t-1})``, ``[[I - 2 eta A, eta I], [A, 0]]`` whose eigenvalues solve
``lambda^2 - (1 - 2 eta mu) lambda - eta mu = 0`` for each eigenvalue ``mu``
of ``A``. For the Dirac-GAN (``A = [[0, a], [-a, 0]]``, ``a = f'(0)``) these
are ``1 +- i eta a`` (diverges), ``1 - gamma eta a^2 +- i eta a``,
``1 - eta^2 a^2 +- i eta a`` and
``(1 -+ 2 i eta a +- sqrt(1 - 4 eta^2 a^2)) / 2``; alternating GD has
eigenvalues of modulus 1 (``eta a <= 2``). Derivations in
``tests/test_game.py``; the vector field analysis is in
:mod:`gan_stability.dirac`.

References:
  [1] Mescheder, Geiger & Nowozin, "Which Training Methods for GANs do
      actually Converge?", ICML 2018.
  [2] Mescheder, Nowozin & Geiger, "The Numerics of GANs", NeurIPS 2017.
  [3] Gidel, Berard, Vignoud, Vincent & Lacoste-Julien, "A Variational
      Inequality Perspective on Generative Adversarial Networks", ICLR 2019.
  [4] Daskalakis, Ilyas, Syrgkanis & Zeng, "Training GANs with Optimism",
      ICLR 2018.
  [Korpelevich 1976] G. M. Korpelevich, "The extragradient method for finding
      saddle points and other problems", Ekonomika i Matematicheskie Metody 12.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax

PyTree = Any
GradFn = Callable[[PyTree, PyTree], tuple[PyTree, PyTree]]
LearningRate = Any  # a number, a scalar array or an optax schedule


class GameUpdate(NamedTuple):
  """A game-aware update of two players (cf. ``optax.GradientTransformation``).

  Attributes:
    init: ``(g_params, d_params) -> state``.
    step: ``(grad_fn, g_params, d_params, state) ->
      ((g_params, d_params), state)``; pure, jit-able.
  """
  init: Callable[[PyTree, PyTree], PyTree]
  step: Callable[[GradFn, PyTree, PyTree, PyTree],
                 tuple[tuple[PyTree, PyTree], PyTree]]


class GameState(NamedTuple):
  """State of the memoryless methods: the number of steps taken."""
  count: jax.Array


class OptimisticState(NamedTuple):
  """State of :func:`optimistic`: ``u_{t-1}`` of each player."""
  count: jax.Array
  prev_g: PyTree
  prev_d: PyTree


class OptimisticAdamState(NamedTuple):
  """State of :func:`optimistic_adam`: Adam's moments and each player's
  previous Adam direction ``r_{t-1}``."""
  count: jax.Array
  adam_g: optax.OptState
  adam_d: optax.OptState
  prev_g: PyTree
  prev_d: PyTree


def _count0() -> jax.Array:
  return jnp.zeros([], jnp.int32)


def _rate(lr: LearningRate, count: jax.Array):
  return lr(count) if callable(lr) else lr


def _descend(params: PyTree, direction: PyTree, lr) -> PyTree:
  """``params - lr * direction``, leaf by leaf, keeping each leaf's dtype."""
  return jax.tree.map(
      lambda p, u: (p - lr * u).astype(jnp.result_type(p)), params, direction)


def _rates(lr_g, lr_d, count):
  return _rate(lr_g, count), _rate(lr_d, count)


def _stateless_init(g_params, d_params) -> GameState:
  del g_params, d_params
  return GameState(count=_count0())


# ---------------------------------------------------------------------------
# The methods.
# ---------------------------------------------------------------------------
def simultaneous(*, lr_g: LearningRate, lr_d: LearningRate) -> GameUpdate:
  """Simultaneous gradient descent: both players step from the same point.

  ``(g, d) <- (g - eta_G dL_G/dg(g, d), d - eta_D dL_D/dd(g, d))``. On the
  Dirac-GAN its Jacobian at the equilibrium has eigenvalues ``1 +- i eta f'(0)``
  of modulus > 1: it spirals out [1, Lemma 2.4].
  """

  def step(grad_fn, g_params, d_params, state):
    eta_g, eta_d = _rates(lr_g, lr_d, state.count)
    u_g, u_d = grad_fn(g_params, d_params)
    return ((_descend(g_params, u_g, eta_g), _descend(d_params, u_d, eta_d)),
            GameState(count=state.count + 1))

  return GameUpdate(_stateless_init, step)


def alternating(*, lr_g: LearningRate, lr_d: LearningRate) -> GameUpdate:
  """Alternating gradient descent: the discriminator, then the generator.

  ``d <- d - eta_D dL_D/dd(g, d)``; ``g <- g - eta_G dL_G/dg(g, d_new)`` (the
  generator's gradient re-evaluated at the new discriminator). Two ``grad_fn``
  calls; each uses only one player's output (XLA drops the other under
  ``jit``). The order does not change the eigenvalues of the linearised step
  (``AB`` and ``BA`` are similar), only the trajectory;
  :func:`gan_stability.dirac.update` steps the generator first. On the
  Dirac-GAN the eigenvalues have modulus 1 for ``eta f'(0) <= 2``: it neither
  converges nor diverges [1, Lemma 2.5].
  """

  def step(grad_fn, g_params, d_params, state):
    eta_g, eta_d = _rates(lr_g, lr_d, state.count)
    _, u_d = grad_fn(g_params, d_params)
    d_params = _descend(d_params, u_d, eta_d)
    u_g, _ = grad_fn(g_params, d_params)
    return ((_descend(g_params, u_g, eta_g), d_params),
            GameState(count=state.count + 1))

  return GameUpdate(_stateless_init, step)


def consensus(*, lr_g: LearningRate, lr_d: LearningRate,
              gamma: float) -> GameUpdate:
  """Consensus optimisation [2, Algorithm 1].

  With ``u = (dL_G/dg, dL_D/dd)`` the joint gradient and
  ``J = du/d(g, d)`` its Jacobian, each player descends its gradient plus the
  gradient of ``gamma/2 ||u||^2`` (the ``L = 1/2 ||v||^2`` of [2], ``v = -u``)
  with respect to its own parameters:

      ``(g, d) <- (g, d) - eta (u + gamma J^T u)``,
      ``J^T u = grad_{(g, d)} 1/2 ||u(g, d)||^2``.

  ``J^T u`` is the vector-Jacobian product of ``grad_fn`` at ``u``
  (``jax.vjp``; ``grad_fn`` is differentiated once more, no Jacobian is
  formed). Near an equilibrium with ``u ~ A w`` the step is
  ``I - eta A - gamma eta A^T A``; on the Dirac-GAN (``A^T A = f'(0)^2 I``)
  its eigenvalues are ``1 - gamma eta f'(0)^2 +- i eta f'(0)``
  [1, Lemma 3.3].

  Args:
    lr_g, lr_d: the players' learning rates.
    gamma: the consensus weight (``gamma = 0``: simultaneous GD).
  """

  def step(grad_fn, g_params, d_params, state):
    eta_g, eta_d = _rates(lr_g, lr_d, state.count)
    u, vjp = jax.vjp(grad_fn, g_params, d_params)
    reg_g, reg_d = vjp(u)
    u_g, u_d = u
    dir_g = jax.tree.map(lambda a, b: a + gamma * b, u_g, reg_g)
    dir_d = jax.tree.map(lambda a, b: a + gamma * b, u_d, reg_d)
    return ((_descend(g_params, dir_g, eta_g),
             _descend(d_params, dir_d, eta_d)),
            GameState(count=state.count + 1))

  return GameUpdate(_stateless_init, step)


def extragradient(*, lr_g: LearningRate, lr_d: LearningRate) -> GameUpdate:
  """Extragradient [Korpelevich 1976; 3, Algorithm 2 with GD].

  Extrapolate, then update the *original* point with the gradient at the
  extrapolated one:

      ``w' = w - eta u(w)``,  ``w <- w - eta u(w')``,

  per player (``eta_G`` for ``g``, ``eta_D`` for ``d``, the same rate for both
  half-steps). Two ``grad_fn`` calls. Linearised: ``I - eta A + eta^2 A^2``;
  on the Dirac-GAN (``A^2 = -f'(0)^2 I``) eigenvalues
  ``1 - eta^2 f'(0)^2 +- i eta f'(0)``, modulus < 1 for ``eta f'(0) < 1``.
  """

  def step(grad_fn, g_params, d_params, state):
    eta_g, eta_d = _rates(lr_g, lr_d, state.count)
    u_g, u_d = grad_fn(g_params, d_params)
    g_half = _descend(g_params, u_g, eta_g)
    d_half = _descend(d_params, u_d, eta_d)
    u_g, u_d = grad_fn(g_half, d_half)
    return ((_descend(g_params, u_g, eta_g), _descend(d_params, u_d, eta_d)),
            GameState(count=state.count + 1))

  return GameUpdate(_stateless_init, step)


def optimistic(*, lr_g: LearningRate, lr_d: LearningRate) -> GameUpdate:
  """Optimistic gradient descent (optimistic mirror descent) [4, sec. 3].

  ``w_{t+1} = w_t - 2 eta u_t + eta u_{t-1}``, ``u_t = u(w_t)``, per player;
  ``u_{t-1}`` is kept in the state and ``u_{-1} := u_0`` (the first step is a
  GD step; = ``optax.optimistic_gradient_descent(eta)``). One ``grad_fn``
  call. Linearised on the state ``(w_t, u_{t-1})``:
  ``[[I - 2 eta A, eta I], [A, 0]]``, eigenvalues the roots of
  ``lambda^2 - (1 - 2 eta mu) lambda - eta mu`` for each eigenvalue ``mu`` of
  ``A``.
  """

  def init(g_params, d_params):
    return OptimisticState(count=_count0(),
                           prev_g=jax.tree.map(jnp.zeros_like, g_params),
                           prev_d=jax.tree.map(jnp.zeros_like, d_params))

  def step(grad_fn, g_params, d_params, state):
    eta_g, eta_d = _rates(lr_g, lr_d, state.count)
    u_g, u_d = grad_fn(g_params, d_params)
    new_g = _optimistic_descend(g_params, u_g, state.prev_g, eta_g,
                                state.count)
    new_d = _optimistic_descend(d_params, u_d, state.prev_d, eta_d,
                                state.count)
    return (new_g, new_d), OptimisticState(count=state.count + 1,
                                           prev_g=u_g, prev_d=u_d)

  return GameUpdate(init, step)


def _optimistic_descend(params, current, previous, lr, count):
  """``params - lr (2 current - previous)``, ``previous := current`` at step
  0 (the first step has no previous direction)."""

  def leaf(p, c, q):
    q = jnp.where(count == 0, c, q)
    return (p - lr * (2 * c - q)).astype(jnp.result_type(p))

  return jax.tree.map(leaf, params, current, previous)


def optimistic_adam(*, lr_g: LearningRate, lr_d: LearningRate,
                    b1: float = 0.9, b2: float = 0.999,
                    eps: float = 1e-8) -> GameUpdate:
  """Optimistic Adam [4, Algorithm 1], per player.

  Exactly, with ``g_t`` the player's gradient at ``w_{t-1}`` (``t >= 1``):

      ``m_t = b1 m_{t-1} + (1 - b1) g_t``,
      ``v_t = b2 v_{t-1} + (1 - b2) g_t^2``,
      ``r_t = (m_t / (1 - b1^t)) / (sqrt(v_t / (1 - b2^t)) + eps)``,
      ``w_t = w_{t-1} - 2 eta r_t + eta r_{t-1}``,

  with ``m_0 = v_0 = 0`` and ``r_0 := r_1`` (the first step is a plain Adam
  step, as in the authors' code). ``r_t`` is ``optax.scale_by_adam`` (no
  Nesterov, ``eps_root = 0``); the whole is
  ``optax.optimistic_adam_v2(eta, alpha=1, beta=1, b1, b2, eps,
  nesterov=False)``. Both players use the same ``b1``, ``b2``, ``eps``.
  (Daskalakis et al. use ``b1 = 0.5``, ``b2 = 0.9`` for their WGANs.)
  """
  adam = optax.scale_by_adam(b1=b1, b2=b2, eps=eps)

  def init(g_params, d_params):
    return OptimisticAdamState(
        count=_count0(), adam_g=adam.init(g_params), adam_d=adam.init(d_params),
        prev_g=jax.tree.map(jnp.zeros_like, g_params),
        prev_d=jax.tree.map(jnp.zeros_like, d_params))

  def step(grad_fn, g_params, d_params, state):
    eta_g, eta_d = _rates(lr_g, lr_d, state.count)
    u_g, u_d = grad_fn(g_params, d_params)
    r_g, adam_g = adam.update(u_g, state.adam_g, g_params)
    r_d, adam_d = adam.update(u_d, state.adam_d, d_params)
    new_g = _optimistic_descend(g_params, r_g, state.prev_g, eta_g,
                                state.count)
    new_d = _optimistic_descend(d_params, r_d, state.prev_d, eta_d,
                                state.count)
    return (new_g, new_d), OptimisticAdamState(
        count=state.count + 1, adam_g=adam_g, adam_d=adam_d,
        prev_g=r_g, prev_d=r_d)

  return GameUpdate(init, step)


# ---------------------------------------------------------------------------
# Registry.
# ---------------------------------------------------------------------------
GAME_UPDATES: dict[str, Callable[..., GameUpdate]] = {
    'simultaneous': simultaneous,
    'alternating': alternating,
    'consensus': consensus,
    'extragradient': extragradient,
    'optimistic': optimistic,
    'optimistic_adam': optimistic_adam,
}


def game_update(method: str, *, lr_g: LearningRate, lr_d: LearningRate,
                **hparams) -> GameUpdate:
  """The game update ``method`` (one of :data:`GAME_UPDATES`).

  ``hparams`` are the method's own keyword arguments (``gamma`` for
  ``consensus``; ``b1``, ``b2``, ``eps`` for ``optimistic_adam``); a missing or
  unknown one is a ``TypeError``.
  """
  if method not in GAME_UPDATES:
    raise ValueError(f'game: unknown method {method!r}; allowed: '
                     f'{tuple(GAME_UPDATES)}')
  return GAME_UPDATES[method](lr_g=lr_g, lr_d=lr_d, **hparams)


# ---------------------------------------------------------------------------
# The same methods with any optax optimiser (the train step's form).
# ---------------------------------------------------------------------------
JOINT_METHODS = ('alternating', 'simultaneous', 'consensus', 'extragradient',
                 'optimistic')


class JointState(NamedTuple):
  """State of :func:`joint_update`: the players' optax states and, for
  ``optimistic``, each player's previous update ``Delta_{t-1}`` (``None``
  for the other methods)."""
  count: jax.Array
  g_opt: optax.OptState
  d_opt: optax.OptState
  prev_g: PyTree = None
  prev_d: PyTree = None


class JointUpdate(NamedTuple):
  """:func:`joint_update`'s pair of pure functions.

  Attributes:
    init: ``(g_params, d_params) -> JointState``.
    step: ``(grad_fn, g_params, d_params, state) -> ((g_params, d_params),
      state, aux, (g_updates, d_updates))`` with ``grad_fn(g, d) ->
      ((u_g, u_d), aux)``; ``aux`` (metrics, new collections, anything) is
      that of the evaluation at the current point ``(g, d)``.
  """
  init: Callable[[PyTree, PyTree], JointState]
  step: Callable[..., Any]


def _apply(params: PyTree, updates: PyTree) -> PyTree:
  return optax.apply_updates(params, updates)


def joint_update(method: str, g_opt: optax.GradientTransformation,
                 d_opt: optax.GradientTransformation, *,
                 gamma: float = 0.0) -> JointUpdate:
  r"""The game update ``method`` with the players' own optax optimisers.

  The methods above, with the descent step ``w - eta u`` replaced by the
  optimiser's update ``w + Delta``, ``(Delta, s) = opt.update(u, s, w)`` (for
  ``optax.sgd(eta)``, ``Delta = -eta u``: exactly the forms above; asserted
  in ``tests/test_game.py``):

  * ``simultaneous``: ``Delta`` of ``u(w)`` for both players;
  * ``alternating``: D's update from ``u_D(g, d)``, then G's from
    ``u_G(g, d_new)``;
  * ``consensus``: the optimisers receive ``u + gamma J^T u`` (Mescheder et
    al. used RMSProp on this direction);
  * ``extragradient``: ``w' = w + Delta(u(w))`` with the optimiser's state
    *not* advanced, then ``w <- w + Delta(u(w'))`` with it advanced (with
    Adam this is an extra-Adam whose moments see only the second gradient;
    Gidel et al.'s Extra-Adam updates them at both);
  * ``optimistic``: ``w_{t+1} = w_t + 2 Delta_t - Delta_{t-1}``
    (``Delta_{-1} := Delta_0``); with ``optax.adam`` this is Optimistic Adam
    (Daskalakis et al. 2018, Algorithm 1, :func:`optimistic_adam`).

  Args:
    method: one of :data:`JOINT_METHODS`.
    g_opt, d_opt: the generator's and the discriminator's optimisers.
    gamma: ``consensus``' weight (ignored by the other methods).

  Returns:
    A :class:`JointUpdate`.
  """
  if method not in JOINT_METHODS:
    raise ValueError(f'game: unknown method {method!r}; allowed: '
                     f'{JOINT_METHODS}')
  optimistic_ = method == 'optimistic'

  def init(g_params, d_params):
    zeros = lambda t: jax.tree.map(jnp.zeros_like, t) if optimistic_ else None
    return JointState(count=_count0(), g_opt=g_opt.init(g_params),
                      d_opt=d_opt.init(d_params), prev_g=zeros(g_params),
                      prev_d=zeros(d_params))

  def step(grad_fn, g_params, d_params, state):
    g_s, d_s = state.g_opt, state.d_opt
    prev_g = prev_d = None
    if method == 'alternating':
      (_, u_d), aux = grad_fn(g_params, d_params)
      d_up, d_s = d_opt.update(u_d, d_s, d_params)
      d_params = _apply(d_params, d_up)
      (u_g, _), _ = grad_fn(g_params, d_params)
      g_up, g_s = g_opt.update(u_g, g_s, g_params)
      g_params = _apply(g_params, g_up)
    elif method == 'extragradient':
      (u_g, u_d), aux = grad_fn(g_params, d_params)
      g_half = _apply(g_params, g_opt.update(u_g, g_s, g_params)[0])
      d_half = _apply(d_params, d_opt.update(u_d, d_s, d_params)[0])
      (u_g, u_d), _ = grad_fn(g_half, d_half)
      g_up, g_s = g_opt.update(u_g, g_s, g_params)
      d_up, d_s = d_opt.update(u_d, d_s, d_params)
      g_params, d_params = _apply(g_params, g_up), _apply(d_params, d_up)
    else:
      if method == 'consensus':
        (u_g, u_d), vjp, aux = jax.vjp(grad_fn, g_params, d_params,
                                       has_aux=True)
        reg_g, reg_d = vjp((u_g, u_d))
        u_g = jax.tree.map(lambda a, b: a + gamma * b, u_g, reg_g)
        u_d = jax.tree.map(lambda a, b: a + gamma * b, u_d, reg_d)
      else:
        (u_g, u_d), aux = grad_fn(g_params, d_params)
      g_up, g_s = g_opt.update(u_g, g_s, g_params)
      d_up, d_s = d_opt.update(u_d, d_s, d_params)
      if optimistic_:
        first = state.count == 0
        prev_g, prev_d = g_up, d_up
        g_up, d_up = (jax.tree.map(
            lambda c, q: 2 * c - jnp.where(first, c, q), up, prev)
                      for up, prev in ((g_up, state.prev_g),
                                       (d_up, state.prev_d)))
      g_params, d_params = _apply(g_params, g_up), _apply(d_params, d_up)
    new_state = JointState(count=state.count + 1, g_opt=g_s, d_opt=d_s,
                           prev_g=prev_g, prev_d=prev_d)
    return (g_params, d_params), new_state, aux, (g_up, d_up)

  return JointUpdate(init, step)
