"""Classifier-based scores of class-conditional generators: Classification
Accuracy Score (CAS) and GAN-test label agreement.

* **Classification Accuracy Score** (Ravuri & Vinyals 2019, "Classification
  Accuracy Score for Conditional Generative Models", NeurIPS): train
  a fixed classifier architecture *from scratch* on labelled generated
  samples ``{(G(z_i, y_i), y_i)}``, with the labels ``y_i`` that were
  requested from the conditional generator, then report its top-1 accuracy
  on the *real* test split,
  ``CAS = 1/T sum_t 1[argmax_k f_theta(x_t)_k = y_t]``,
  ``theta = argmin -sum_i log softmax(f_theta(G(z_i, y_i)))_{y_i}``.
  A generator whose class-conditionals match the data gives the accuracy of
  the same classifier trained on real data ("real-data baseline", CAS with
  the real training split); class-confused or low-diversity samples give
  less. :func:`combine` builds real + synthetic mixtures (the paper's
  augmentation experiments).
* **GAN-test** (Shmelkov, Schmid & Alahari 2018, "How good is my GAN?",
  ECCV): the converse, a classifier trained on *real* data
  classifies conditional samples; the score is the accuracy with respect to
  the requested labels, ``1/M sum_j 1[argmax_k f(G(z_j, y_j))_k = y_j]``
  (:func:`label_agreement`; a precision-like measure: high for recognisable
  class-consistent samples, blind to diversity). The paper's GAN-train is
  CAS under another name.

The classifier is the project's :class:`~gan_stability.metrics.classifier.
MnistClassifier` trained by :func:`~gan_stability.metrics.classifier.
train_classifier` (Adam, cosine decay, batches and initialisation from
``seed``), so any 28 x 28 single-channel 10-class data set works (MNIST,
Fashion-MNIST, ...). Images are uint8 (scaled ``x / 127.5 - 1``) or float in
``[-1, 1]`` (see :func:`as_float_images`); labels are integers in
``0..9``. Everything is a function of ``seed``: the same call gives the same
score on the same software stack.
"""

from __future__ import annotations

import time
from typing import Any

import jax
import numpy as np

from gan_stability.metrics import classifier

NUM_CLASSES = classifier.NUM_CLASSES


def _check_int(name: str, value, *, minimum: int, where: str) -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
      value < minimum:
    raise ValueError(f'{where}: {name} must be an integer >= {minimum}, got '
                     f'{value!r}')
  return int(value)


def balanced_labels(n: int, *, num_classes: int = NUM_CLASSES) -> np.ndarray:
  """Class labels ``y_i = i mod num_classes`` for ``i = 0..n-1``: int32
  ``[n]``.

  Every class occurs ``floor(n / num_classes)`` or one more times (exactly
  equally often when ``n`` is a multiple of ``num_classes``): the labels to
  request from a conditional generator for CAS / GAN-test.

  Raises:
    ValueError: ``n < 0`` or ``num_classes < 1`` (or not integers).
  """
  n = _check_int('n', n, minimum=0, where='balanced_labels')
  num_classes = _check_int('num_classes', num_classes, minimum=1,
                           where='balanced_labels')
  return (np.arange(n, dtype=np.int64) % num_classes).astype(np.int32)


def as_float_images(images) -> np.ndarray:
  """float32 ``[N, 28, 28, 1]`` in the classifier's ``[-1, 1]`` scaling.

  uint8 pixels ``x`` become ``x / 127.5 - 1`` (0 -> -1, 255 -> 1); float
  inputs are taken to be in ``[-1, 1]`` already and passed through (cast to
  float32, not clipped). ``[N, H, W]`` and ``[N, H, W, 1]`` are accepted;
  ``H, W > 28`` are centre-cropped
  (:func:`gan_stability.metrics.classifier.prepare_images`).
  """
  return classifier.prepare_images(images)


def _labels(labels, n: int, name: str, where: str) -> np.ndarray:
  y = np.asarray(labels)
  if y.ndim != 1 or y.shape[0] != n:
    raise ValueError(f'{where}: {name} must have shape [{n}] (one label per '
                     f'image), got {y.shape}')
  if y.size and not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f'{where}: {name} must be integers, got {y.dtype}')
  if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
    raise ValueError(f'{where}: {name} must lie in 0..{NUM_CLASSES - 1}, got '
                     f'values in {int(y.min())}..{int(y.max())}')
  return y.astype(np.int32)


def combine(*sets) -> tuple[np.ndarray, np.ndarray]:
  """Concatenates labelled sets, e.g. real + synthetic training data.

  Args:
    *sets: one or more ``(images, labels)`` pairs; images as accepted by
      :func:`as_float_images`, labels ``[N_s]`` integers in ``0..9``.

  Returns:
    ``(images, labels)``: float32 ``[sum N_s, 28, 28, 1]`` in ``[-1, 1]``
    (each set converted by :func:`as_float_images`) and int32
    ``[sum N_s]``, in the order given.

  Raises:
    ValueError: no sets, a set that is not a pair, or images and labels of
      different lengths.
  """
  if not sets:
    raise ValueError('combine: sets must hold at least one (images, labels) '
                     'pair, got none')
  xs, ys = [], []
  for s, pair in enumerate(sets):
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
      raise ValueError(f'combine: sets[{s}] must be an (images, labels) pair, '
                       f'got {type(pair).__name__}')
    x = as_float_images(pair[0])
    xs.append(x)
    ys.append(_labels(pair[1], x.shape[0], f'sets[{s}] labels', 'combine'))
  return np.concatenate(xs), np.concatenate(ys)


def classification_accuracy_score(train_images, train_labels, test_images,
                                  test_labels, *, epochs: int, seed: int,
                                  batch_size: int = 128,
                                  learning_rate: float = 1e-3,
                                  max_shift: int = 0) -> dict:
  """Classification Accuracy Score (Ravuri & Vinyals 2019).

  Trains a fresh :class:`~gan_stability.metrics.classifier.MnistClassifier`
  on ``(train_images, train_labels)`` (generated samples and the labels they
  were conditioned on; or real data for the baseline; or a :func:`combine`
  mixture) and evaluates it on the real ``(test_images, test_labels)``:
  ``accuracy = 1/T sum_t 1[argmax_k f(x_t)_k = y_t]`` and
  ``loss = -1/T sum_t log softmax(f(x_t))_{y_t}``.

  Args:
    train_images: ``[N, 28, 28(, 1)]`` uint8 or float in ``[-1, 1]``.
    train_labels: ``[N]`` integers in ``0..9``.
    test_images, test_labels: the real test split, same conventions.
    epochs: passes over the training set (``epochs * (N // batch_size)``
      Adam steps; the last ``N % batch_size`` examples of each epoch's
      permutation are skipped).
    seed: initialisation, batch-order and augmentation seed.
    batch_size: training examples per step, in ``1..N``.
    learning_rate: peak Adam learning rate (cosine-decayed to 0).
    max_shift: random translation augmentation in pixels (0: none; the
      paper trains without augmentation tricks that could hide sample
      defects).

  Returns:
    ``{'accuracy', 'loss', 'num_train', 'train_seconds'}``: test accuracy in
    ``[0, 1]`` and mean test cross-entropy (Python floats), the number of
    training examples, and the wall-clock training time in seconds.

  Raises:
    ValueError: empty train or test set, labels outside ``0..9`` or of the
      wrong length, ``batch_size`` outside ``1..N``, ``epochs < 1``.
  """
  where = 'classification_accuracy_score'
  train_x = np.asarray(train_images)
  test_x = np.asarray(test_images)
  for name, x in (('train_images', train_x), ('test_images', test_x)):
    if x.ndim < 1 or x.shape[0] == 0:
      raise ValueError(f'{where}: {name} is empty (shape {x.shape}); at '
                       'least one image is needed')
    classifier.prepare_images(x[:1])  # shape and dtype
  n = train_x.shape[0]
  train_y = _labels(train_labels, n, 'train_labels', where)
  test_y = _labels(test_labels, test_x.shape[0], 'test_labels', where)
  epochs = _check_int('epochs', epochs, minimum=1, where=where)
  batch_size = _check_int('batch_size', batch_size, minimum=1, where=where)
  if batch_size > n:
    raise ValueError(f'{where}: batch_size={batch_size} exceeds the number of '
                     f'training images; allowed 1..{n}')
  max_shift = _check_int('max_shift', max_shift, minimum=0, where=where)
  start = time.perf_counter()
  params, _ = classifier.train_classifier(
      train_x, train_y, epochs=epochs, seed=seed, batch_size=batch_size,
      learning_rate=learning_rate, max_shift=max_shift)
  params = jax.block_until_ready(params)
  seconds = time.perf_counter() - start
  result = classifier.evaluate(
      params, test_x, test_y,
      batch_size=min(classifier.DEFAULT_BATCH_SIZE, test_x.shape[0]))
  return {'accuracy': result['accuracy'], 'loss': result['loss'],
          'num_train': int(n), 'train_seconds': float(seconds)}


def label_agreement(params: Any, images, labels, *,
                    batch_size: int = classifier.DEFAULT_BATCH_SIZE) -> dict:
  """GAN-test label agreement (Shmelkov et al. 2018).

  With ``p_j = argmax_k f(x_j)_k`` the prediction of a classifier trained on
  real data (``params``, e.g.
  :func:`~gan_stability.metrics.classifier.load_classifier`) for the
  generated sample ``x_j`` requested with label ``y_j``:

  * ``'accuracy'``: ``1/M sum_j 1[p_j = y_j]``;
  * ``'per_class'``: list of length 10, entry ``k`` the accuracy over the
    samples requested with label ``k``,
    ``sum_j 1[y_j = k, p_j = k] / sum_j 1[y_j = k]``, or ``None`` when no
    sample was requested with label ``k`` (never NaN);
  * ``'class_counts'``: list of length 10, the number of samples per
    requested label;
  * ``'num_samples'``: ``M``.

  Raises:
    ValueError: no images, or labels of the wrong length / outside 0..9.
  """
  where = 'label_agreement'
  x = np.asarray(images)
  if x.ndim < 1 or x.shape[0] == 0:
    raise ValueError(f'{where}: images is empty (shape {x.shape}); at least '
                     'one image is needed')
  y = _labels(labels, x.shape[0], 'labels', where).astype(np.int64)
  pred = np.asarray(classifier.predict(params, x, batch_size=batch_size))
  correct = pred == y
  counts = np.bincount(y, minlength=NUM_CLASSES)
  hits = np.bincount(y[correct], minlength=NUM_CLASSES)
  per_class = [float(hits[k] / counts[k]) if counts[k] else None
               for k in range(NUM_CLASSES)]
  return {'accuracy': float(np.mean(correct)), 'per_class': per_class,
          'class_counts': [int(c) for c in counts],
          'num_samples': int(y.shape[0])}
