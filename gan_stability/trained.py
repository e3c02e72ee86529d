"""A trained model, loaded for use: sample from it, or take its networks.

::

  import gan_stability
  model = gan_stability.load('mnist_wgan_gp')      # a shipped generator
  model = gan_stability.load('/runs/my_run')       # a training run's workdir
  images = model.sample(1000, seed=0)              # uint8 [1000, 28, 28, 1]
  x = model.generator(model.generator_variables, model.latents(8), None)

:func:`load` takes a training run's directory (its latest checkpoint, or
``step``), a directory written by :func:`export`, or the name of a shipped
generator (:func:`shipped`: ``gan_stability/assets/generators/<name>``). It
rebuilds the networks from the run's ``config.json`` and the data shape in
its ``model.json`` (so the data is not needed), restores the parameters onto
the default device (a checkpoint written by several devices or processes
restores on one CPU), and returns a :class:`Trained`.

The networks are plain functions of their variables (``{'params': ...,
**collections}``), usable inside ``jax.jit``, ``grad`` or ``vmap``:
``generator(variables, z, labels) -> x`` (images in [-1, 1], or 2-D points;
the VAE's decoder means) and, for a GAN, ``discriminator(variables, x,
labels) -> logits``; both in eval mode (batch-norm running averages,
spectral-norm vectors read and not updated). ``labels`` is None for an
unconditional model.

:meth:`Trained.sample` draws ``z = normal(key, [n, z_dim])`` from
``key(seed)`` (or ``key``) in one call and runs the generator in chunks, so
the samples do not depend on the chunk size; with the run's evaluation key
and label grid they are the samples its training loop evaluated. Images
come back as uint8 NHWC, quantised as saved images are
(:func:`gan_stability.metrics.inception.quantize`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from gan_stability import checkpoint
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability.errors import ConfigError, DamagedFile, writing

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           'assets', 'generators')
VARIABLES_FILE = 'variables.npz'
CHUNK = 500  # generator batch of :meth:`Trained.sample`


def shipped() -> list[str]:
  """The names of the generators packaged with the library."""
  if not os.path.isdir(SHIPPED_DIR):
    return []
  from gan_stability.train import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  return sorted(n for n in os.listdir(SHIPPED_DIR) if os.path.exists(
      os.path.join(SHIPPED_DIR, n, workdir_lib.MODEL_FILE)))


@dataclasses.dataclass(frozen=True, eq=False)
class Trained:
  """A loaded model (:func:`load`).

  Attributes:
    config: the run's config (ConfigDict).
    step: the training step of the parameters.
    path: where it was loaded from.
    data_shape: the shape of one example (``(H, W, C)``, or ``(2,)``).
    family: ``'gan'`` or ``'vae'``.
    generator: ``generator(variables, z, labels=None) -> [n, *data_shape]``.
    generator_variables: its variables (the EMA weights when the run kept
      them).
    live_generator_variables: the non-averaged weights when the run kept an
      EMA, else None.
    discriminator: ``discriminator(variables, x, labels=None) -> [n]``
      logits, or None (a VAE; an export without it).
    discriminator_variables: its variables, or None.
    info: the ``model.json`` of an export or shipped generator (the command
      that trained it, the digest of its samples, ...); ``{}`` for a run.
  """
  config: ml_collections.ConfigDict
  step: int
  path: str
  data_shape: tuple[int, ...]
  family: str
  generator: Callable
  generator_variables: Any
  live_generator_variables: Any
  discriminator: Callable | None
  discriminator_variables: Any
  info: dict

  def __post_init__(self):
    object.__setattr__(self, '_generate', jax.jit(self.generator))

  @property
  def eval_key(self) -> jax.Array:
    """The key of the latents the training loop evaluates
    (``split(key(config.seed), 3)[2]``): ``sample(eval_samples,
    key=model.eval_key)`` gives the samples of the run's evaluations."""
    return jax.random.split(jax.random.key(self.config.seed), 3)[2]

  @property
  def z_dim(self) -> int:
    return int(self.config.model.z_dim)

  @property
  def num_classes(self) -> int:
    """0 for an unconditional model."""
    return int(self.config.model.get('num_classes', 0))

  @property
  def is_image(self) -> bool:
    return len(self.data_shape) == 3

  def latents(self, n: int, *, seed: int = 0, key: jax.Array | None = None
              ) -> jax.Array:
    """``normal(key, [n, z_dim])`` with ``key = jax.random.key(seed)`` unless
    ``key`` is given."""
    n = _positive(n, 'n')
    key = jax.random.key(seed) if key is None else key
    return jax.random.normal(key, (n, self.z_dim), jnp.float32)

  def labels(self, n: int, labels=None) -> np.ndarray | None:
    """The int32 ``[n]`` labels of ``n`` samples: ``labels`` checked (an int
    is one class for all), or for None the run's sample grid (every class
    equally often when ``n`` is a multiple of the grid's size; None for an
    unconditional model).

    Raises:
      ConfigError: labels for an unconditional model, a class outside
        ``[0, num_classes)``, or a shape other than ``[n]``.
    """
    from gan_stability.train import task as task_lib  # pylint: disable=g-import-not-at-top
    k = self.num_classes
    if labels is None:
      return task_lib.sample_labels(self.config, n) if k else None
    if not k:
      raise ConfigError(f'labels: {self.path} is an unconditional model '
                        '(model.num_classes=0)')
    out = np.asarray(labels)
    if out.ndim == 0:
      out = np.full((n,), out)
    if out.shape != (n,) or not np.issubdtype(out.dtype, np.integer):
      raise ConfigError(f'labels: expected {n} integer class labels, got '
                        f'{out.dtype} {out.shape}')
    if out.size and (out.min() < 0 or out.max() >= k):
      raise ConfigError(f'labels: class {int(out.min() if out.min() < 0 else out.max())} '
                        f'is not in [0, {k}) ({self.path} has {k} classes)')
    return out.astype(np.int32)

  def generate(self, z, labels=None, *, ema: bool = True,
               batch_size: int = CHUNK, progress: Callable | None = None
               ) -> np.ndarray:
    """The generator's float outputs for latents ``z`` ``[n, z_dim]`` (and
    int ``labels`` ``[n]`` for a conditional model), computed in jitted
    chunks of ``batch_size``; ``progress(done, n)`` after each chunk."""
    z = jnp.asarray(z, jnp.float32)
    if z.ndim != 2 or z.shape[1] != self.z_dim:
      raise ConfigError(f'z: expected [n, {self.z_dim}] latents, got '
                        f'{tuple(z.shape)}')
    n = z.shape[0]
    if labels is not None:
      labels = self.labels(n, labels)
    elif self.num_classes:
      raise ConfigError(f'labels: required, {self.path} is class-conditional '
                        f'({self.num_classes} classes)')
    variables = self.generator_variables
    if not ema and self.live_generator_variables is not None:
      variables = self.live_generator_variables
    elif not ema and self.info and self.config.get('ema_decay', 0) > 0:
      raise ConfigError(f'ema: {self.path} is an export holding only the '
                        "generator's EMA weights (ema=True)")
    fn = self._generate
    out = []
    for start in range(0, n, _positive(batch_size, 'batch_size')):
      y = None if labels is None else labels[start:start + batch_size]
      out.append(np.asarray(fn(variables, z[start:start + batch_size], y)))
      if progress is not None:
        progress(min(start + batch_size, n), n)
    return np.concatenate(out)

  def sample(self, n: int, *, seed: int = 0, labels=None, ema: bool = True,
             key: jax.Array | None = None, raw: bool = False,
             batch_size: int = CHUNK, progress: Callable | None = None
             ) -> np.ndarray:
    """``n`` samples: uint8 ``[n, H, W, C]`` images (float32 in [-1, 1] with
    ``raw``), or float32 ``[n, 2]`` points.

    Args:
      n: how many.
      seed: seeds the latents (:meth:`latents`); ignored when ``key`` is
        given.
      labels: a conditional model's classes: an int (all one class), int
        ``[n]``, or None for the run's sample grid (:meth:`labels`).
      ema: the EMA weights when the run kept them (its evaluation weights).
      key: the latents' key (e.g. a run's evaluation key).
      raw: the generator's float outputs, not quantised.
      batch_size: generator batch (the result does not depend on it).
      progress: called as ``progress(done, n)`` after each batch.
    """
    z = self.latents(n, seed=seed, key=key)
    x = self.generate(z, self.labels(n, labels), ema=ema,
                      batch_size=batch_size, progress=progress)
    if raw or not self.is_image:
      return x
    from gan_stability.metrics import inception  # pylint: disable=g-import-not-at-top
    return inception.quantize(x)


def _positive(n, name: str) -> int:
  if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
    raise ConfigError(f'{name}: expected a positive integer, got {n!r}')
  return int(n)


def _variables(params, cols) -> dict:
  return {'params': params, **(cols or {})}


def _split(variables: dict):
  cols = dict(variables)
  return cols.pop('params'), cols


def _networks(task):
  """``(generator, discriminator)`` pure functions of variables."""
  generate = task.make_generate_fn()
  critic = task.make_critic_fn()

  def generator(variables, z, labels=None):
    return generate(*_split(variables), z, labels)

  def discriminator(variables, x, labels=None):
    return critic(*_split(variables), x, labels)

  return generator, (discriminator if critic is not None else None)


def _task(config, data_shape):
  from gan_stability.train import tasks  # pylint: disable=g-import-not-at-top
  return tasks.TASKS[config_lib.family(config)](config, tuple(data_shape))


def _template(task):
  # The state's structure, shapes and dtypes; its values are never used.
  key = jax.random.split(jax.random.key(task.config.seed), 3)[0]
  return jax.eval_shape(task.init_state, key)


def _run_config(path: str) -> ml_collections.ConfigDict:
  from gan_stability.train import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = workdir_lib.load_run_config(path)
  # Devices are the loading machine's: a run trained on 8 devices (or
  # processes) is sampled on one.
  config.num_devices = 0
  try:
    config_lib.validate(config, num_devices=1)
  except ConfigError as e:
    raise DamagedFile(f'{os.path.join(path, workdir_lib.CONFIG_FILE)}: not '
                      f'a valid config ({e})') from None
  return config


def _data_shape(config, path: str, info: dict | None):
  if info is not None:
    return tuple(info['data_shape'])
  # A run written before model.json existed: its data says the shape.
  try:
    it = data_lib.make_iterator(config, seed=config.seed)
  except (OSError, ValueError) as e:
    raise FileNotFoundError(
        f'{path}: no model.json (a run written before 0.2.0), so its data '
        f'is needed to learn the example shape, and it cannot be read '
        f'({type(e).__name__}: {e}); give the data (config.data.dir) or '
        'rerun any training command on the run to write model.json') from None
  return tuple(it.element_shape)


def load(path: str, *, step: int | None = None) -> Trained:
  """Loads a trained model (module docstring).

  Args:
    path: a training run's directory, an :func:`export` directory, or a
      shipped generator's name (:func:`shipped`).
    step: a run's checkpoint step (default: the latest).

  Raises:
    FileNotFoundError: nothing to load at ``path`` (the message lists the
      shipped names), or no checkpoint (of ``step``).
    DamagedFile: a damaged ``config.json`` / ``model.json`` / variables.
  """
  from gan_stability.train import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  path = os.fspath(path)
  if not os.path.isdir(path):
    names = shipped()
    if path in names:
      path = os.path.join(SHIPPED_DIR, path)
    else:
      raise FileNotFoundError(
          f'{path}: not a run directory, an exported model or a shipped '
          f'generator (shipped: {names})')
  if os.path.exists(os.path.join(path, VARIABLES_FILE)):
    if step is not None:
      raise ConfigError(f'step: {path} is an exported model of one step '
                        'only; step= is for training runs')
    return _load_export(path)
  if not os.path.exists(os.path.join(path, workdir_lib.CONFIG_FILE)):
    raise FileNotFoundError(
        f'{path}: neither a training run (no config.json) nor an exported '
        f'model (no {VARIABLES_FILE})')
  config = _run_config(path)
  data_shape = _data_shape(config, path,
                           workdir_lib.read_model_file(path))
  task = _task(config, data_shape)
  template = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype),
                          _template(task))
  try:
    state, step = checkpoint.restore_run_state(path, template, step)
  except RuntimeError as e:
    if not str(e).startswith('cannot restore checkpoint'):
      raise
    raise DamagedFile(str(e)) from e
  generator, discriminator = _networks(task)
  g = task.sampler_variables(state, ema=True)
  live = task.sampler_variables(state, ema=False)
  d = task.critic_variables(state)
  return Trained(
      config=config, step=int(step), path=path, data_shape=tuple(data_shape),
      family=config_lib.family(config), generator=generator,
      generator_variables=_variables(*g),
      live_generator_variables=(_variables(*live) if live[0] is not g[0]
                                else None),
      discriminator=discriminator,
      discriminator_variables=None if d is None else _variables(*d),
      info={})


def _flat(prefix: str, variables) -> dict[str, np.ndarray]:
  flat = flax.traverse_util.flatten_dict(
      flax.core.unfreeze(jax.device_get(variables)), sep='/')
  return {f'{prefix}/{k}': np.asarray(v) for k, v in flat.items()}


def _unflat(prefix: str, arrays: dict, like, path: str):
  """The variables under ``prefix/`` of ``arrays``, checked against the
  structure and shapes of ``like``."""
  want = flax.traverse_util.flatten_dict(flax.core.unfreeze(like), sep='/')
  got = {k[len(prefix) + 1:]: v for k, v in arrays.items()
         if k.startswith(prefix + '/')}
  if set(got) != set(want):
    missing = sorted(set(want) - set(got))[:3]
    extra = sorted(set(got) - set(want))[:3]
    raise DamagedFile(f'{path}: the {prefix} variables do not match its '
                      f'config (missing {missing}, unexpected {extra})')
  for k, w in want.items():
    if got[k].shape != tuple(w.shape) or got[k].dtype != w.dtype:
      raise DamagedFile(f'{path}: {prefix}/{k} is {got[k].dtype} '
                        f'{got[k].shape}, its config makes {w.dtype} '
                        f'{tuple(w.shape)}')
  return flax.traverse_util.unflatten_dict(
      {k: jnp.asarray(v) for k, v in got.items()}, sep='/')


def sample_digest(images: np.ndarray) -> str:
  """sha256 of an array's shape, dtype and bytes (the golden digest of a
  shipped generator's samples)."""
  h = hashlib.sha256(f'{images.dtype.str}{images.shape}'.encode())
  h.update(np.ascontiguousarray(images).tobytes())
  return h.hexdigest()


DIGEST_SAMPLES = 64  # the digest is of sample(64, seed=0)


def export(model: Trained, out: str, *, discriminator: bool = True,
           about: dict | None = None) -> dict:
  """Writes ``model`` as a directory :func:`load` reads without its run:
  ``config.json``, ``model.json`` (data shape, step, the digest of
  ``sample(64, seed=0)``, ``about``) and ``variables.npz`` (the generator's
  evaluation variables, and the discriminator's with ``discriminator``;
  no optimiser state). Returns the ``model.json`` content."""
  from gan_stability.train import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  os.makedirs(out, exist_ok=True)
  arrays = _flat('generator', model.generator_variables)
  if discriminator and model.discriminator_variables is not None:
    arrays.update(_flat('discriminator', model.discriminator_variables))
  config = model.config.to_dict()
  config['num_devices'] = 0
  info = {**(about or {}), 'data_shape': list(model.data_shape),
          'step': model.step,
          'discriminator': any(k.startswith('discriminator/') for k in arrays),
          'sample_digest': sample_digest(model.sample(DIGEST_SAMPLES, seed=0))}
  for name, write in (
      (workdir_lib.CONFIG_FILE,
       lambda f: f.write(json.dumps(config, indent=2, sort_keys=True))),
      (workdir_lib.MODEL_FILE,
       lambda f: f.write(json.dumps(info, indent=2, sort_keys=True))),
      (VARIABLES_FILE, lambda f: np.savez_compressed(f, **arrays))):
    path = os.path.join(out, name)
    with writing('exported model', path):
      with open(path + '.tmp', 'wb' if name == VARIABLES_FILE else 'w') as f:
        write(f)
      os.replace(path + '.tmp', path)
  return info


def _load_export(path: str) -> Trained:
  from gan_stability.train import workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = _run_config(path)
  info = workdir_lib.read_model_file(path)
  if info is None:
    raise DamagedFile(f'{path}: an exported model without model.json')
  task = _task(config, info['data_shape'])
  state = _template(task)
  g_like = _variables(*task.sampler_variables(state))
  d_like = task.critic_variables(state)
  file = os.path.join(path, VARIABLES_FILE)
  try:
    with np.load(file) as f:
      arrays = {k: f[k] for k in f.files}
  except Exception as e:  # pylint: disable=broad-except
    raise DamagedFile(f'{file}: cannot be read ({type(e).__name__}: {e})'
                      ) from None
  g = _unflat('generator', arrays, g_like, file)
  d = None
  if d_like is not None and any(k.startswith('discriminator/') for k in arrays):
    d = _unflat('discriminator', arrays, _variables(*d_like), file)
  generator, discriminator = _networks(task)
  return Trained(
      config=config, step=int(info.get('step', 0)), path=path,
      data_shape=tuple(info['data_shape']), family=config_lib.family(config),
      generator=generator, generator_variables=g,
      live_generator_variables=None,
      discriminator=discriminator if d is not None else None,
      discriminator_variables=d, info=info)
