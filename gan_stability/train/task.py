"""What the training loop needs of a kind of model: the :class:`Task`.

The loop (:mod:`gan_stability.train.loop`) owns the workdir contract: resume,
data position, log / evaluation cadence, divergence policy, checkpoints,
SIGTERM. A task owns what differs between kinds of model: its state, its
pure train step ``(state, batch, key) -> (state, metrics)``, how many real
batches one step consumes, and how to sample from the state for
evaluation. :class:`gan_stability.train.gan.GANTask` and
:class:`gan_stability.train.vae.VAETask` are the two tasks; a vmapped group
of seeds is the GAN task run by the loop on a stacked state
(:mod:`gan_stability.train.seeds`).

The generic step helpers are here too: :func:`make_multi_step` (``k`` steps
per compiled call, keys folded from the step), the labels of a conditional
sample grid, and a chunked sampler for offline use.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from gan_stability import kernels, models
from gan_stability.kernels import compile_options

State = Any
Metrics = dict[str, jax.Array]
TrainStep = Callable[[State, dict, jax.Array], tuple[State, Metrics]]


class Task:
  """A kind of model the loop can train. Subclasses set the attributes in
  ``__init__`` and implement the methods that raise NotImplementedError.

  Attributes:
    config: the validated training config.
    data_shape: the shape of one example (``iterator.element_shape``).
    draws_per_step: real batches one train step consumes (the GAN's
      ``n_critic``; 1 for the VAE).
    critic_axis: whether a step's batches are stacked on an axis of their
      own (``[n_critic, B, ...]``), which then is the GAN's train step's
      input; without it a step takes ``[B, ...]``.
    batch_names: the keys of a batch (``'x'``, and ``'label'`` for a
      class-conditional model).
    on_divergence, max_rollbacks: the divergence policy (``'stop'`` or
      ``'rollback'``).
    alarm_grad_factor, alarm_collapse_ratio: the online alarms'
      thresholds (0 disables;
      :class:`gan_stability.metrics.dynamics.DynamicsMonitor`).
  """
  config: Any
  data_shape: tuple[int, ...]
  draws_per_step: int = 1
  critic_axis: bool = False
  batch_names: tuple[str, ...] = ('x',)
  on_divergence: str = 'stop'
  max_rollbacks: int = 0
  alarm_grad_factor: float = 0.0
  alarm_collapse_ratio: float = 0.0

  def init_state(self, key: jax.Array) -> State:
    """The initial state (unsharded), a pure function of ``key``."""
    raise NotImplementedError

  def make_train_step(self, *, latent_sharding=None) -> TrainStep:
    """The pure train step; ``latent_sharding`` constrains latents drawn
    for the global batch (data parallelism), ``None`` on one device.

    A task with :meth:`vmappable_fields` also takes ``hparams=`` (some of
    those fields): the step is then ``step(state, batch, key, hp)`` with
    ``hp`` a dict of float32 scalars, the members' values of those fields
    (:func:`gan_stability.train.loop.train_group` vmaps it over a group of
    runs that differ in them); without ``hparams`` it is the ordinary
    step."""
    raise NotImplementedError

  def vmappable_fields(self) -> list[str]:
    """The config fields a group of runs may vary in one vmapped program
    (``Field.vmappable`` in the config schema; none by default)."""
    return []

  def metric_names(self) -> frozenset[str]:
    """The names of the train step's metrics (traced abstractly, not run):
    a member of a vmapped group logs exactly those its own run logs."""
    key = jax.random.key(0)
    state = jax.eval_shape(self.init_state, key)
    lead = (self.draws_per_step,) if self.critic_axis else ()
    shape = lead + (self.config.batch_size,)
    batch = {n: (jax.ShapeDtypeStruct(shape + tuple(self.data_shape),
                                      jnp.float32) if n == 'x' else
                 jax.ShapeDtypeStruct(shape, jnp.int32))
             for n in self.batch_names}
    _, metrics = jax.eval_shape(self.make_train_step(), state, batch, key)
    return frozenset(metrics)

  def make_generate_fn(self) -> Callable:
    """``generate(params, collections, z, labels=None) -> [n, ...]``: the
    sampling network in eval mode applied to latents ``z`` ``[n, z_dim]``
    (outputs in the data's scale, images in [-1, 1]), given
    :meth:`sampler_variables` of a state."""
    raise NotImplementedError

  def make_sample_fn(self) -> Callable:
    """``sample(params, collections, key, n, labels) -> [n, ...]`` in eval
    mode (``n`` static): :meth:`make_generate_fn` at
    ``z = normal(key, [n, z_dim])``."""
    generate = self.make_generate_fn()
    z_dim = self.config.model.z_dim

    def sample(params, cols, key, n, labels=None):
      z = jax.random.normal(key, (n, z_dim), jnp.float32)
      return generate(params, cols, z, labels)

    return sample

  def sampler_variables(self, state: State, *, ema: bool = True
                        ) -> tuple[Any, Any]:
    """``(params, collections)`` of the network that samples (the GAN's
    generator, its EMA weights when kept and ``ema``; the VAE's decoder)."""
    raise NotImplementedError

  def make_critic_fn(self) -> Callable | None:
    """``critic(params, collections, x, labels=None) -> [n]`` logits of the
    discriminator in eval mode (no statistics updated), or None for a task
    without one (the VAE)."""
    return None

  def critic_variables(self, state: State) -> tuple[Any, Any] | None:
    """``(params, collections)`` of :meth:`make_critic_fn`'s network."""
    del state
    return None

  def log_inputs(self, state: State) -> Any:
    """The parts of a state :meth:`log_extras` reads (they are copied to
    the host at log steps)."""
    return None

  def log_extras(self, host_inputs: Any) -> dict:
    """Metrics of the state itself for a log record (e.g. per-layer
    spectral norms), from the host copy of :meth:`log_inputs`."""
    del host_inputs
    return {}

  def blame(self, bad: list[str]) -> dict:
    """What a divergence record says about which network diverged first."""
    del bad
    return {}

  @property
  def unroll(self) -> bool:
    """Whether the compiled loops are unrolled (:func:`loop_unroll`)."""
    return loop_unroll(self.config)

  @property
  def compiler_options(self) -> dict[str, str]:
    """XLA compiler options of the compiled steps (``cpu_ynn_fusions``)."""
    return compile_options.compiler_options(self.config.cpu_ynn_fusions)

  def eval_labels(self, n: int):
    """The labels of ``n`` evaluation samples (:func:`sample_labels`)."""
    return sample_labels(self.config, n)


def loop_unroll(config) -> bool:
  """Whether the ``n_critic`` and ``steps_per_dispatch`` loops of
  ``config``'s steps are unrolled: :func:`gan_stability.kernels.unroll_loops`
  of ``config.loop_impl`` (``'auto'`` for the VAE, whose schema has no such
  field) for the config's model."""
  model = config.model
  return kernels.unroll_loops(
      config.get('loop_impl', 'auto'),
      conv_model=models.MODELS[model.name].data == 'image',
      conv_impl=model.get('conv_impl', 'auto'))


def make_multi_step(train_step: TrainStep, *, unroll: bool = False,
                    hparams: bool = False):
  """Fuses ``k`` train steps into one call: ``(state, batches, root_key)``.

  ``batches`` has a leading axis of ``k`` steps; step ``s`` uses the key
  ``fold_in(root_key, s)`` with ``s = state.step`` before that step, so the
  key stream depends only on the root key and the step (resumable, and
  independent of ``k``). Returns the final state and metrics stacked ``[k]``.
  ``unroll`` emits the ``k`` steps as straight-line code instead of a scan.
  ``hparams``: ``train_step`` takes a fourth argument ``hp`` (a step built
  with ``hparams``, :meth:`Task.make_train_step`), which the fused call
  takes too, ``(state, batches, root_key, hp)``, and passes to every step.
  """
  if hparams:
    def multi_step_hp(state, batches, root_key, hp):
      def body(st, batch):
        return train_step(st, batch, jax.random.fold_in(root_key, st.step),
                          hp)
      return jax.lax.scan(body, state, batches, unroll=unroll)
    return multi_step_hp

  def multi_step(state, batches, root_key):
    def body(st, batch):
      return train_step(st, batch, jax.random.fold_in(root_key, st.step))
    return jax.lax.scan(body, state, batches, unroll=unroll)

  return multi_step


def grid_labels(n: int, *, samples_per_row: int, num_classes: int):
  """int32 ``[n]`` labels of a conditional sample grid, or None for
  ``num_classes == 0``: sample ``i`` sits in row ``i // samples_per_row`` and
  gets class ``row mod num_classes`` (class k in row k, k + K, ...). Every
  class is equally frequent when ``n`` is a multiple of ``samples_per_row *
  num_classes`` (the conditional configs use a K x K grid): metrics of the
  class histogram are biased otherwise."""
  if not num_classes:
    return None
  rows = np.arange(n) // samples_per_row
  return (rows % num_classes).astype(np.int32)


def sample_labels(config, n: int):
  """The labels of ``n`` evaluation samples of ``config``'s model: the
  :func:`grid_labels` of its sample grid (``config.data.samples_per_row``),
  or None for an unconditional model."""
  num_classes = int(config.model.get('num_classes', 0))
  if not num_classes:
    return None
  return grid_labels(n, num_classes=num_classes,
                     samples_per_row=config.data.samples_per_row)


def chunked_sampler(sample, config, chunk: int):
  """``sample_fn(key, n, labels=None) -> np.ndarray [n, ...]`` from a jitted
  ``sample(key, m, labels_or_None)``: ``n`` samples in chunks of at most
  ``chunk`` (chunk ``i`` uses ``fold_in(key, i)``). A conditional model's
  labels default to :func:`sample_labels` ``(config, n)``."""
  conditional = bool(config.model.get('num_classes', 0))

  def sample_fn(key, n, labels=None):
    if labels is None:
      labels = sample_labels(config, n)
    elif not conditional:
      raise ValueError('labels=: the model is unconditional '
                       '(config.model.num_classes=0)')
    else:
      labels = np.asarray(labels, np.int32)
      if labels.shape != (n,):
        raise ValueError(f'labels=: expected shape ({n},), got {labels.shape}')
    chunks = []
    for i, start in enumerate(range(0, n, chunk)):
      m = min(chunk, n - start)
      y = None if labels is None else labels[start:start + m]
      chunks.append(np.asarray(sample(jax.random.fold_in(key, i), m, y)))
    return np.concatenate(chunks)

  return sample_fn
