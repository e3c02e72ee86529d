"""The project's MNIST classifier: a small CNN for mode counting and
classifier-space statistics of generated digits.

Architecture (:class:`MnistClassifier`, 356,234 float32 parameters)::

  x [N, 28, 28, 1] in [-1, 1]
  -> conv 3x3, 32, SAME -> relu -> max-pool 2x2        [N, 14, 14, 32]
  -> conv 3x3, 64, SAME -> relu -> max-pool 2x2        [N,  7,  7, 64]
  -> conv 3x3, 128, SAME -> relu -> max-pool 2x2 SAME  [N,  4,  4, 128]
  -> flatten -> dense 128 -> relu                      [N, 128]  = features(x)
  -> dense 10                                          [N, 10]   = logits(x)

Inputs use the GAN's pixel scaling ``x / 127.5 - 1`` (0 -> -1, 255 -> 1;
:func:`gan_stability.data.images.scale_images`), so generator samples are
classified as they come out of a tanh generator. uint8 inputs are scaled by
this rule; inputs larger than 28 x 28 (e.g. ``config.data.pad_to=32``) are
centre-cropped back to 28 x 28, the inverse of
:func:`gan_stability.data.images.pad_images`.

Uses: per-channel digit labels for Stacked-MNIST mode counting
(:mod:`gan_stability.metrics.modes`; Metz et al. 2017, sec. 3.3; Srivastava
et al. 2017, sec. 5.2; Lin et al. 2018, sec. 4.1 all use "a pretrained MNIST
classifier"), and the 128-d penultimate-layer embedding as a feature space for
Frechet distances on MNIST-like data ("FID in classifier space": the FID
formula of Heusel et al. 2017 applied to features of a domain classifier
instead of Inception-v3, whose ImageNet features fit digits poorly).

Training (:func:`train_classifier`): softmax cross-entropy
``L = -E log softmax(f(x))_y`` minimised with Adam (Kingma & Ba 2015) under a
cosine learning-rate decay (Loshchilov & Hutter 2017), batches in the order
``numpy.random.default_rng([seed, epoch]).permutation(N)`` (the last
``N % batch_size`` examples of each epoch's permutation are dropped, as in
:mod:`gan_stability.data.images`), each image translated by a random integer
shift in ``[-max_shift, max_shift]^2`` pixels (background fill -1) drawn from
``jax.random.fold_in(PRNGKey(seed), step)``. Everything is a function of
``seed``: the same command gives the same weights on the same software stack.
(The packaged weights were trained before the learning rate became an
argument of the jitted step, which lets one compilation serve every call;
that change moves weights by float rounding only, 1.5e-8 at most in a
2-epoch check, not bitwise.)

Storage: a plain ``.npz`` whose keys are the flattened pytree paths of the
variables (``params/conv1/kernel``, ...), plus a side JSON (same stem,
``.json``) with the test accuracy, the training command, the hyper-parameters
and the sha256 of the data files. The packaged artifact is
:func:`default_classifier_path` (trained by
``python -m experiments.train_mnist_classifier``, 12 epochs, seed 0: 99.55 %
accuracy on the 10,000 t10k images; its JSON has the details).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import os
import time
import zipfile
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from gan_stability.errors import DamagedFile

IMAGE_SIZE = 28
NUM_CLASSES = 10
FEATURE_DIM = 128
DEFAULT_BATCH_SIZE = 1000  # inference batch; one compilation per size
_SEP = '/'

Params = Any  # {'params': {...}}: variables ready for MnistClassifier.apply


class MnistClassifier(nn.Module):
  """conv32-pool-conv64-pool-conv128-pool-dense128-dense10 (see the module
  docstring)."""

  def setup(self):
    self.conv1 = nn.Conv(32, (3, 3), padding='SAME')
    self.conv2 = nn.Conv(64, (3, 3), padding='SAME')
    self.conv3 = nn.Conv(128, (3, 3), padding='SAME')
    self.dense = nn.Dense(FEATURE_DIM)
    self.head = nn.Dense(NUM_CLASSES)

  def features(self, x: jax.Array) -> jax.Array:
    """``[N, 28, 28, 1]`` -> ``[N, 128]`` penultimate (post-relu) activations."""
    x = nn.max_pool(nn.relu(self.conv1(x)), (2, 2), (2, 2))
    x = nn.max_pool(nn.relu(self.conv2(x)), (2, 2), (2, 2))
    x = nn.max_pool(nn.relu(self.conv3(x)), (2, 2), (2, 2), padding='SAME')
    return nn.relu(self.dense(x.reshape(x.shape[0], -1)))

  def __call__(self, x: jax.Array) -> jax.Array:
    """``[N, 28, 28, 1]`` -> ``[N, 10]`` logits."""
    return self.head(self.features(x))


MODEL = MnistClassifier()


@jax.jit
def _init(key: jax.Array) -> Params:
  return MODEL.init(key, jnp.zeros((1, IMAGE_SIZE, IMAGE_SIZE, 1), jnp.float32))


def init_params(seed: int = 0) -> Params:
  """Freshly initialised variables (Flax default initialisers)."""
  return _init(jax.random.PRNGKey(seed))


def num_params(params: Params) -> int:
  return int(sum(np.size(x) for x in jax.tree_util.tree_leaves(params)))


# ------------------------------------------------------------- inputs ---


def prepare_images(images: np.ndarray) -> np.ndarray:
  """Any of uint8 / float ``[N, H, W]`` / ``[N, H, W, 1]`` -> float32
  ``[N, 28, 28, 1]`` in the classifier's scaling.

  uint8 pixels are scaled by ``x / 127.5 - 1``; float inputs are taken to be
  in [-1, 1] already (values are not clipped). ``H, W > 28`` are centre-cropped
  (``(H - 28) // 2`` rows before), undoing ``pad_images``.
  """
  x = np.asarray(images)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] != 1:
    raise ValueError('expected single-channel images [N, H, W] or '
                     f'[N, H, W, 1], got shape {x.shape}')
  h, w = x.shape[1:3]
  if h < IMAGE_SIZE or w < IMAGE_SIZE:
    raise ValueError(f'images of {h} x {w} are smaller than the classifier '
                     f'input {IMAGE_SIZE} x {IMAGE_SIZE}')
  top, left = (h - IMAGE_SIZE) // 2, (w - IMAGE_SIZE) // 2
  x = x[:, top:top + IMAGE_SIZE, left:left + IMAGE_SIZE]
  if x.dtype == np.uint8:
    return x.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
  if not np.issubdtype(x.dtype, np.floating):
    raise ValueError(f'images must be uint8 or float, got {x.dtype}')
  return x.astype(np.float32)


# ---------------------------------------------------------- inference ---


@jax.jit
def _logits_fn(params: Params, x: jax.Array) -> jax.Array:
  return MODEL.apply(params, x)


@jax.jit
def _features_fn(params: Params, x: jax.Array) -> jax.Array:
  return MODEL.apply(params, x, method=MnistClassifier.features)


def _batched(fn: Callable, params: Params, images: np.ndarray, batch_size: int,
             out_dim: int) -> np.ndarray:
  """Applies jitted ``fn`` in batches of exactly ``batch_size`` rows (the last
  batch is padded with zeros and the padding dropped), so one compilation
  serves every ``N``."""
  if batch_size <= 0:
    raise ValueError(f'batch_size={batch_size} must be positive')
  images = np.asarray(images)
  prepare_images(images[:1])  # validates shape and dtype, also for N = 0
  n = images.shape[0]
  out = np.empty((n, out_dim), np.float32)
  for start in range(0, n, batch_size):
    batch = prepare_images(images[start:start + batch_size])
    m = batch.shape[0]
    if m < batch_size:
      batch = np.concatenate(
          [batch, np.zeros((batch_size - m,) + batch.shape[1:], np.float32)])
    out[start:start + m] = np.asarray(fn(params, batch))[:m]
  return out


def predict_logits(params: Params, images: np.ndarray, *,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
  """float32 ``[N, 10]`` logits of ``images`` (see :func:`prepare_images`)."""
  return _batched(_logits_fn, params, images, batch_size, NUM_CLASSES)


def predict(params: Params, images: np.ndarray, *,
            batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
  """int64 ``[N]`` predicted digits, ``argmax`` of the logits."""
  logits = predict_logits(params, images, batch_size=batch_size)
  return np.argmax(logits, axis=-1).astype(np.int64)


def max_probability(logits: np.ndarray) -> np.ndarray:
  """``max_k softmax(logits)_k`` per row (float64, stable for any logits)."""
  z = np.asarray(logits, np.float64)
  z = z - z.max(axis=-1, keepdims=True)
  return 1.0 / np.exp(z).sum(axis=-1)


def features(params: Params, images: np.ndarray, *,
             batch_size: int = DEFAULT_BATCH_SIZE) -> np.ndarray:
  """float32 ``[N, 128]`` penultimate-layer embeddings (post-relu)."""
  return _batched(_features_fn, params, images, batch_size, FEATURE_DIM)


def evaluate(params: Params, images: np.ndarray, labels: np.ndarray, *,
             batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
  """``{'accuracy', 'loss'}``: top-1 accuracy in [0, 1] and the mean
  softmax cross-entropy ``-mean log softmax(logits)_y``."""
  labels = np.asarray(labels).astype(np.int64)
  logits = predict_logits(params, images, batch_size=batch_size)
  if labels.shape != logits.shape[:1]:
    raise ValueError(f'{logits.shape[0]} images but labels of shape '
                     f'{labels.shape}')
  log_p = np.asarray(jax.nn.log_softmax(logits.astype(np.float64), axis=-1))
  return {
      'accuracy': float(np.mean(np.argmax(logits, -1) == labels)),
      'loss': float(-np.mean(log_p[np.arange(labels.size), labels])),
  }


# ------------------------------------------------------------- storage ---


def default_classifier_path() -> str:
  """Path of the packaged classifier, ``gan_stability/assets/mnist_classifier.npz``."""
  return str(importlib.resources.files('gan_stability').joinpath(
      'assets', 'mnist_classifier.npz'))


def metadata_path(path: str | os.PathLike) -> str:
  """The side JSON of a weights file: same stem, ``.json``."""
  return os.path.splitext(os.fspath(path))[0] + '.json'


def save_classifier(path: str | os.PathLike, params: Params,
                    metadata: dict | None = None) -> None:
  """Writes float32 weights to ``path`` (.npz, flattened pytree paths as keys)
  and, when given, ``metadata`` plus ``'weights_sha256'`` (of the .npz just
  written) to :func:`metadata_path` ``(path)``."""
  path = os.fspath(path)
  flat = traverse_util.flatten_dict(jax.device_get(params), sep=_SEP)
  arrays = {k: np.asarray(v, np.float32) for k, v in flat.items()}
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, 'wb') as f:  # a file object: np.savez adds no suffix
    np.savez(f, **arrays)
  if metadata is not None:
    with open(path, 'rb') as f:
      digest = hashlib.sha256(f.read()).hexdigest()
    with open(metadata_path(path), 'w', encoding='utf-8') as f:
      json.dump(dict(metadata, weights_sha256=digest), f, indent=2,
                sort_keys=True)
      f.write('\n')


@functools.lru_cache(maxsize=1)
def _expected_shapes() -> dict:
  shapes = jax.eval_shape(_init, jax.random.PRNGKey(0))
  return {k: tuple(v.shape)
          for k, v in traverse_util.flatten_dict(shapes, sep=_SEP).items()}


def load_classifier(path: str | os.PathLike | None = None) -> Params:
  """Variables for :class:`MnistClassifier` from a ``.npz`` written by
  :func:`save_classifier` (default: :func:`default_classifier_path`).

  Raises:
    FileNotFoundError: no such file.
    ValueError: the keys or shapes do not match the architecture.
  """
  path = os.fspath(path if path is not None else default_classifier_path())
  if not os.path.isfile(path):
    raise FileNotFoundError(
        f'MNIST classifier weights not found at {path!r}; train them with '
        '`python -m experiments.train_mnist_classifier --data_dir=DIR '
        f'--out={path}`')
  try:
    with np.load(path) as data:
      flat = {k: np.asarray(data[k]) for k in data.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise DamagedFile(f'{path}: damaged MNIST classifier weights '
                      f'({type(e).__name__}: {e}); reinstall the package or '
                      'train them again with python -m '
                      'experiments.train_mnist_classifier') from None
  expected = _expected_shapes()
  got = {k: tuple(v.shape) for k, v in flat.items()}
  if got != expected:
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    wrong = sorted(k for k in set(got) & set(expected)
                   if got[k] != expected[k])
    raise DamagedFile(f'{path}: not MnistClassifier weights (missing {missing},'
                     f' unexpected {extra}, wrong shapes '
                     f'{[(k, got[k], expected[k]) for k in wrong]})')
  return traverse_util.unflatten_dict(
      {k: jnp.asarray(v, jnp.float32) for k, v in flat.items()}, sep=_SEP)


def load_metadata(path: str | os.PathLike | None = None) -> dict:
  """The side JSON of a weights file (default: the packaged classifier)."""
  path = path if path is not None else default_classifier_path()
  with open(metadata_path(path), encoding='utf-8') as f:
    return json.load(f)


# ------------------------------------------------------------ training ---


def random_shift(key: jax.Array, x: jax.Array, max_shift: int) -> jax.Array:
  """Translates each image of ``[N, H, W, C]`` by its own integer offset in
  ``[-max_shift, max_shift]^2``; pixels shifted in are -1 (background)."""
  if max_shift <= 0:
    return x
  n, h, w, c = x.shape
  s = max_shift
  padded = jnp.pad(x, ((0, 0), (s, s), (s, s), (0, 0)), constant_values=-1.0)
  offsets = jax.random.randint(key, (n, 2), 0, 2 * s + 1)
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c))
  return jax.vmap(crop)(padded, offsets)


def _loss_fn(params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
  logits = MODEL.apply(params, x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


# Adam without its learning rate: the (scheduled) rate is an argument of the
# jitted step, so one compilation serves every call with the same batch shape
# (``optax.adam(schedule)`` = ``scale_by_adam`` then ``-schedule(count)``).
_ADAM = optax.scale_by_adam()


@functools.partial(jax.jit, static_argnames=('max_shift',))
def _train_step(params, opt_state, x, y, key, lr, *, max_shift: int):
  x = random_shift(key, x, max_shift)
  loss, grads = jax.value_and_grad(_loss_fn)(params, x, y)
  updates, opt_state = _ADAM.update(grads, opt_state, params)
  updates = jax.tree.map(lambda u: -lr * u, updates)
  return optax.apply_updates(params, updates), opt_state, loss


def train_classifier(images: np.ndarray, labels: np.ndarray, *, epochs: int,
                     seed: int, batch_size: int = 128,
                     learning_rate: float = 1e-3, max_shift: int = 2,
                     eval_images: np.ndarray | None = None,
                     eval_labels: np.ndarray | None = None,
                     log_fn: Callable[[dict], None] | None = None
                     ) -> tuple[Params, list[dict]]:
  """Trains :class:`MnistClassifier` (see the module docstring).

  Args:
    images: ``[N, 28, 28, 1]`` uint8 digits (or float in [-1, 1]).
    labels: ``[N]`` labels in 0..9.
    epochs: passes over the data; ``epochs * (N // batch_size)`` Adam steps.
    seed: initialisation, order and augmentation seed.
    batch_size: examples per step (``<= N``).
    learning_rate: peak Adam learning rate, cosine-decayed to 0.
    max_shift: random translation range in pixels (0: no augmentation).
    eval_images, eval_labels: optional held-out set, evaluated every epoch.
    log_fn: called with each epoch's record.

  Returns:
    ``(params, history)``: the trained variables and one record per epoch,
    ``{'epoch', 'train_loss' (mean over the epoch's steps), 'seconds'}`` plus
    ``'eval_accuracy'`` / ``'eval_loss'`` when an eval set is given.
  """
  x_all = np.asarray(images)  # kept as given (uint8: 4x less memory)
  prepare_images(x_all[:1])  # validates shape and dtype
  y_all = np.asarray(labels).astype(np.int32)
  n = x_all.shape[0]
  if y_all.shape != (n,):
    raise ValueError(f'{n} images but labels of shape {y_all.shape}')
  if y_all.size and (y_all.min() < 0 or y_all.max() >= NUM_CLASSES):
    raise ValueError(f'labels must lie in 0..{NUM_CLASSES - 1}')
  if not 0 < batch_size <= n:
    raise ValueError(f'batch_size={batch_size} must be in [1, {n}]')
  if epochs <= 0:
    raise ValueError(f'epochs={epochs} must be positive')
  steps_per_epoch = n // batch_size
  schedule = optax.cosine_decay_schedule(learning_rate,
                                         epochs * steps_per_epoch)
  params = init_params(seed)
  opt_state = _ADAM.init(params)
  base_key = jax.random.PRNGKey(seed)
  step = functools.partial(_train_step, max_shift=max_shift)

  history = []
  index = 0
  for epoch in range(epochs):
    start = time.time()
    perm = np.random.default_rng([seed, epoch]).permutation(n)
    losses = []
    for j in range(steps_per_epoch):
      rows = perm[j * batch_size:(j + 1) * batch_size]
      params, opt_state, loss = step(
          params, opt_state, prepare_images(x_all[rows]), y_all[rows],
          jax.random.fold_in(base_key, index), schedule(index))
      losses.append(loss)
      index += 1
    record = {'epoch': epoch + 1,
              'train_loss': float(np.mean(jax.device_get(losses))),
              'seconds': time.time() - start}
    if eval_images is not None:
      result = evaluate(params, eval_images, eval_labels)
      record['eval_accuracy'] = result['accuracy']
      record['eval_loss'] = result['loss']
    history.append(record)
    if log_fn is not None:
      log_fn(record)
  return params, history
