"""Differentiable augmentation for GAN discriminators, as pure functions.

Two families, both applied to *every* image the discriminator sees (real and
generated alike, in the D and the G step), so that D never sees a
non-augmented image and the augmentations do not leak into the generator:

* DiffAugment [1]: ``color``, ``translation`` and ``cutout`` applied with
  probability 1 (:func:`diffaugment`, and each transform on its own).
* ADA [2]: the pixel-blitting (x-flip, 90-degree rotations, integer
  translation) and colour (brightness, contrast, saturation) groups of the
  paper's pipeline, each transform applied to each example independently with
  probability ``p`` (:func:`ada_augment`), and the heuristic that adapts
  ``p`` to the discriminator's overfitting (:func:`ada_rt`,
  :func:`ada_update`).

Conventions: images are NHWC, float, in ``[-1, 1]`` (0 is mid-grey: the
padding value of DiffAugment's translation and cutout, and the centre of
ADA's contrast). Every function is a pure function of its arrays and a PRNG
key, and works under ``jit``, ``vmap`` and ``grad``: the randomness (shifts,
masks, factors, which examples are transformed) depends on the key only, so
the output is a differentiable (piecewise linear in fact: every transform
here is affine in ``x`` for a fixed key) function of ``x`` and gradients
flow to the generator through it. Hyper-parameters (policy names, ratios,
standard deviations) are Python values fixed at trace time -- close over
them (``functools.partial``) or mark them static under ``jit``; ADA's ``p``
is an array and may be traced. Randomness is drawn per example; how each
function splits its key is stated in its docstring (the tests reproduce the
draws from the same keys).

References:
  [1] Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for
      Data-Efficient GAN Training", NeurIPS 2020
      (code: github.com/mit-han-lab/data-efficient-gans).
  [2] Karras, Aittala, Hellsten, Laine, Lehtinen & Aila, "Training Generative
      Adversarial Networks with Limited Data", NeurIPS 2020
      (code: github.com/NVlabs/stylegan2-ada).
"""

from __future__ import annotations

import functools
from typing import Sequence

import jax
import jax.numpy as jnp

Array = jax.Array


def _check_images(x: Array, fn: str) -> None:
  if x.ndim != 4:
    raise ValueError(f'{fn}: expected NHWC images [B, H, W, C], got shape '
                     f'{x.shape}')


def _per_example(v: Array) -> Array:
  """``[B]`` -> ``[B, 1, 1, 1]``, to broadcast over an NHWC batch."""
  return v.reshape(v.shape[0], 1, 1, 1)


def _gather_hw(x: Array, rows: Array, cols: Array) -> Array:
  """``out[b, i, j] = x[b, rows[b, i], cols[b, j]]`` (indices in range).

  One gather for the whole batch (no loop over examples); its gradient is
  the matching scatter-add, so it is exact for permutations and shifts.
  """
  batch = jnp.arange(x.shape[0])[:, None, None]
  return x.at[batch, rows[:, :, None], cols[:, None, :]].get(
      mode='promise_in_bounds')


# ---------------------------------------------------------------------------
# DiffAugment [1].
# ---------------------------------------------------------------------------
def rand_brightness(x: Array, key: Array) -> Array:
  """Random brightness [1]: ``x + (u - 0.5)``, ``u ~ U[0, 1)`` per example.

  ``u`` is ``jax.random.uniform(key, [B])``.
  """
  _check_images(x, 'rand_brightness')
  u = jax.random.uniform(key, (x.shape[0],), dtype=x.dtype)
  return x + _per_example(u - 0.5)


def rand_saturation(x: Array, key: Array) -> Array:
  """Random saturation [1]: ``m + 2u (x - m)``, ``u ~ U[0, 1)`` per example.

  ``m`` is each pixel's mean over the channels (so a 1-channel image is left
  unchanged); ``u`` is ``jax.random.uniform(key, [B])``.
  """
  _check_images(x, 'rand_saturation')
  u = jax.random.uniform(key, (x.shape[0],), dtype=x.dtype)
  mean = jnp.mean(x, axis=3, keepdims=True)
  return (x - mean) * _per_example(2.0 * u) + mean


def rand_contrast(x: Array, key: Array) -> Array:
  """Random contrast [1]: ``m + (u + 0.5)(x - m)``, ``u ~ U[0, 1)``.

  ``m`` is the example's mean over all pixels and channels; ``u`` is
  ``jax.random.uniform(key, [B])``, per example.
  """
  _check_images(x, 'rand_contrast')
  u = jax.random.uniform(key, (x.shape[0],), dtype=x.dtype)
  mean = jnp.mean(x, axis=(1, 2, 3), keepdims=True)
  return (x - mean) * _per_example(u + 0.5) + mean


# The index arithmetic of the spatial transforms is jitted once per shape
# (inlined under an outer jit; it only saves op-by-op compilations when the
# transforms are called eagerly).
@jax.jit
def _shift_pad_zero(x: Array, shift_h: Array, shift_w: Array) -> Array:
  """``out[b, i, j] = x[b, i + shift_h[b], j + shift_w[b]]``, 0 outside."""
  _, h, w, _ = x.shape
  rows = jnp.arange(h)[None, :] + shift_h[:, None]  # [B, H]
  cols = jnp.arange(w)[None, :] + shift_w[:, None]  # [B, W]
  valid_r = (rows >= 0) & (rows < h)
  valid_c = (cols >= 0) & (cols < w)
  out = _gather_hw(x, jnp.clip(rows, 0, h - 1), jnp.clip(cols, 0, w - 1))
  valid = valid_r[:, :, None, None] & valid_c[:, None, :, None]
  return jnp.where(valid, out, jnp.zeros((), x.dtype))


def translation_shifts(x_shape: Sequence[int], key: Array, *,
                       ratio: float = 0.125) -> tuple[Array, Array]:
  """The per-example shifts ``(t_h, t_w)`` that :func:`rand_translation`
  draws: ``k_h, k_w = jax.random.split(key)``; ``t_h`` uniform integers in
  ``[-s_h, s_h]`` with ``s_h = int(H * ratio + 0.5)`` (likewise ``t_w``)."""
  b, h, w = x_shape[0], x_shape[1], x_shape[2]
  s_h, s_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
  k_h, k_w = jax.random.split(key)
  t_h = jax.random.randint(k_h, (b,), -s_h, s_h + 1)
  t_w = jax.random.randint(k_w, (b,), -s_w, s_w + 1)
  return t_h, t_w


def rand_translation(x: Array, key: Array, *, ratio: float = 0.125) -> Array:
  """Random integer translation with zero padding [1].

  ``out[b, i, j] = x[b, i + t_h, j + t_w]`` where that pixel exists and 0
  (mid-grey in ``[-1, 1]``) elsewhere, the content moving by ``(-t_h, -t_w)``
  as in the reference code; the shifts are uniform integers in
  ``[-s, s]``, ``s = int(size * ratio + 0.5)`` per axis, drawn per example
  by :func:`translation_shifts` (same key).
  """
  _check_images(x, 'rand_translation')
  t_h, t_w = translation_shifts(x.shape, key, ratio=ratio)
  return _shift_pad_zero(x, t_h, t_w)


def cutout_mask(x_shape: Sequence[int], key: Array, *,
                ratio: float = 0.5) -> Array:
  """The ``[B, H, W]`` mask (1 kept, 0 cut) of :func:`rand_cutout`.

  The square has side ``c_h = int(H * ratio + 0.5)`` (``c_w`` likewise for
  width); ``k_h, k_w = jax.random.split(key)``, its centre ``o_h`` is a
  uniform integer in ``[0, H + 1 - c_h % 2)`` (likewise ``o_w``), and it
  covers rows ``o_h - c_h // 2 <= i < o_h - c_h // 2 + c_h`` clipped to the
  image -- the square may extend past the border, as in the reference code
  (it always overlaps the image).
  """
  b, h, w = x_shape[0], x_shape[1], x_shape[2]
  c_h, c_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
  k_h, k_w = jax.random.split(key)
  o_h = jax.random.randint(k_h, (b,), 0, h + (1 - c_h % 2))
  o_w = jax.random.randint(k_w, (b,), 0, w + (1 - c_w % 2))
  return _box_mask(o_h - c_h // 2, o_w - c_w // 2, c_h, c_w, h, w)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _box_mask(start_h: Array, start_w: Array, c_h: int, c_w: int, h: int,
              w: int) -> Array:
  """``[B, H, W]``: 0 on rows ``[start_h, start_h + c_h)`` x columns
  ``[start_w, start_w + c_w)`` of each example, 1 elsewhere."""
  rows, cols = jnp.arange(h)[None, :], jnp.arange(w)[None, :]
  in_h = (rows >= start_h[:, None]) & (rows < start_h[:, None] + c_h)
  in_w = (cols >= start_w[:, None]) & (cols < start_w[:, None] + c_w)
  return 1 - (in_h[:, :, None] & in_w[:, None, :]).astype(jnp.int32)


def rand_cutout(x: Array, key: Array, *, ratio: float = 0.5) -> Array:
  """Random cutout [1]: one square per example set to 0 (mid-grey).

  ``out = x * mask`` with ``mask = cutout_mask(x.shape, key, ratio=ratio)``
  broadcast over the channels, so ``d sum(out) / dx = mask``.
  """
  _check_images(x, 'rand_cutout')
  mask = cutout_mask(x.shape, key, ratio=ratio).astype(x.dtype)
  return x * mask[..., None]


DIFFAUGMENT_POLICIES = ('color', 'translation', 'cutout')


def parse_policy(policy: str | Sequence[str]) -> list[str]:
  """The policy names of ``policy`` (comma-separated, or a sequence), in
  order, blanks dropped; ValueError naming the allowed ones if one is
  unknown."""
  names = policy.split(',') if isinstance(policy, str) else list(policy)
  names = [n.strip() for n in names if n.strip()]
  for n in names:
    if n not in DIFFAUGMENT_POLICIES:
      raise ValueError(
          f'diffaugment: unknown policy {n!r}; allowed: '
          f'{", ".join(DIFFAUGMENT_POLICIES)} (comma-separated)')
  return names


def diffaugment(x: Array, key: Array, *,
                policy: str | Sequence[str] = 'color,translation,cutout',
                translation_ratio: float = 0.125,
                cutout_ratio: float = 0.5) -> Array:
  """DiffAugment [1]: the policies, applied in the order given.

  * ``color``: :func:`rand_brightness`, then :func:`rand_saturation`, then
    :func:`rand_contrast` (the reference code's order);
  * ``translation``: :func:`rand_translation` (``ratio=translation_ratio``);
  * ``cutout``: :func:`rand_cutout` (``ratio=cutout_ratio``).

  Keys: ``jax.random.split(key, n)`` gives one key per policy, in order
  (``n`` the number of policies); ``color`` splits its key in three (for
  brightness, saturation, contrast). An empty policy is the identity.

  Args:
    x: images ``[B, H, W, C]`` in ``[-1, 1]``.
    key: PRNG key.
    policy: comma-separated names (or a sequence of them) among ``color``,
      ``translation``, ``cutout``.
    translation_ratio: the maximal shift as a fraction of the image size.
    cutout_ratio: the cutout square's side as a fraction of the image size.

  Returns:
    The augmented images, same shape and dtype.

  Raises:
    ValueError: an unknown policy name, or ``x`` is not 4-D.
  """
  names = parse_policy(policy)
  _check_images(x, 'diffaugment')
  if not names:
    return x
  for name, k in zip(names, jax.random.split(key, len(names))):
    if name == 'color':
      kb, ks, kc = jax.random.split(k, 3)
      x = rand_contrast(rand_saturation(rand_brightness(x, kb), ks), kc)
    elif name == 'translation':
      x = rand_translation(x, k, ratio=translation_ratio)
    else:
      x = rand_cutout(x, k, ratio=cutout_ratio)
  return x


# ---------------------------------------------------------------------------
# ADA [2].
# ---------------------------------------------------------------------------
def ada_gate(key: Array, p: Array | float, batch: int) -> Array:
  """Which examples a transform applies to: ``U[0, 1) < p``, per example.

  Every ``ada_*`` transform splits its key as ``k_gate, k_param =
  jax.random.split(key)`` and calls ``ada_gate(k_gate, p, B)``; ``p`` may be
  traced (no Python branching on it): ``p = 0`` selects no example, ``p = 1``
  all of them.
  """
  return jax.random.uniform(key, (batch,)) < p


def _select(gate: Array, new: Array, x: Array) -> Array:
  """``new`` for the gated examples, ``x`` (bit-exact) for the others."""
  return jnp.where(_per_example(gate), new, x)


def ada_xflip(x: Array, key: Array, p: Array | float) -> Array:
  """x-flip [2]: with probability ``p`` per example, ``i ~ U{0, 1}`` and the
  image is mirrored left-right if ``i = 1`` (as in [2]'s code, so an example
  is flipped with probability ``p / 2``). ``i = jax.random.randint(k_param,
  [B], 0, 2)``."""
  _check_images(x, 'ada_xflip')
  k_gate, k_param = jax.random.split(key)
  gate = ada_gate(k_gate, p, x.shape[0])
  i = jax.random.randint(k_param, (x.shape[0],), 0, 2)
  return _select(gate & (i == 1), x[:, :, ::-1, :], x)


def ada_rotate90(x: Array, key: Array, p: Array | float) -> Array:
  """90-degree rotations [2]: with probability ``p`` per example, rotate by
  ``k * 90`` degrees, ``k ~ U{0, 1, 2, 3}`` (``k = 0`` included, as in [2],
  so an example changes with probability ``3p / 4``); the rotation is
  ``jnp.rot90(image, k)`` on the (H, W) axes, counter-clockwise as
  displayed. ``k = jax.random.randint(k_param, [B], 0, 4)``. Needs square
  images.
  """
  _check_images(x, 'ada_rotate90')
  if x.shape[1] != x.shape[2]:
    raise ValueError(f'ada_rotate90: needs square images, got {x.shape}')
  k_gate, k_param = jax.random.split(key)
  b = x.shape[0]
  gate = ada_gate(k_gate, p, b)
  k = jax.random.randint(k_param, (b,), 0, 4)
  return _rotate90_select(x, jnp.where(gate, k, 0))


@jax.jit
def _rotate90_select(x: Array, k: Array) -> Array:
  """Example ``b`` rotated by ``k[b]`` quarter turns (exact: a selection)."""
  rots = jnp.stack([jnp.rot90(x, r, axes=(1, 2)) for r in range(4)])
  return rots[k, jnp.arange(x.shape[0])]


def _reflect(idx: Array, n: int) -> Array:
  """Index into ``[0, n)`` with reflection without repeating the edge
  (``-1 -> 1``, ``n -> n - 2``: NumPy's / PyTorch's ``'reflect'``)."""
  if n == 1:
    return jnp.zeros_like(idx)
  period = 2 * (n - 1)
  m = jnp.mod(idx, period)
  return jnp.where(m < n, m, period - m)


def ada_translate_shifts(x_shape: Sequence[int], key: Array, *,
                         ratio: float = 0.125) -> tuple[Array, Array]:
  """The shifts ``(t_h, t_w)`` :func:`ada_translate` draws from ``k_param``
  (before gating): ``t = jax.random.uniform(k_param, [B, 2], minval=-1,
  maxval=1) * ratio``; ``t_w = round(t[:, 0] * W)``, ``t_h = round(t[:, 1] *
  H)`` (round half to even), as in [2]'s code."""
  b, h, w = x_shape[0], x_shape[1], x_shape[2]
  t = jax.random.uniform(key, (b, 2), minval=-1.0, maxval=1.0) * ratio
  t_w = jnp.round(t[:, 0] * w).astype(jnp.int32)
  t_h = jnp.round(t[:, 1] * h).astype(jnp.int32)
  return t_h, t_w


def ada_translate(x: Array, key: Array, p: Array | float, *,
                  ratio: float = 0.125) -> Array:
  """Integer translation with reflection padding [2].

  With probability ``p`` per example, the content moves by ``(t_h, t_w)``
  pixels (:func:`ada_translate_shifts`, up to ``ratio`` of the size in each
  direction): ``out[b, i, j] = x[b, reflect(i - t_h), reflect(j - t_w)]``,
  the missing border filled by mirroring the image (without repeating the
  edge pixel, PyTorch's ``'reflect'``, the padding of [2]'s code).
  """
  _check_images(x, 'ada_translate')
  k_gate, k_param = jax.random.split(key)
  gate = ada_gate(k_gate, p, x.shape[0])
  t_h, t_w = ada_translate_shifts(x.shape, k_param, ratio=ratio)
  return _select(gate, _shift_reflect(x, t_h, t_w), x)


@jax.jit
def _shift_reflect(x: Array, t_h: Array, t_w: Array) -> Array:
  """``out[b, i, j] = x[b, reflect(i - t_h[b]), reflect(j - t_w[b])]``."""
  _, h, w, _ = x.shape
  rows = _reflect(jnp.arange(h)[None, :] - t_h[:, None], h)
  cols = _reflect(jnp.arange(w)[None, :] - t_w[:, None], w)
  return _gather_hw(x, rows, cols)


def ada_brightness(x: Array, key: Array, p: Array | float, *,
                   std: float = 0.2) -> Array:
  """Brightness [2]: with probability ``p`` per example, ``x + b``,
  ``b ~ N(0, std^2)`` (``b = std * jax.random.normal(k_param, [B])``)."""
  _check_images(x, 'ada_brightness')
  k_gate, k_param = jax.random.split(key)
  gate = ada_gate(k_gate, p, x.shape[0])
  b = std * jax.random.normal(k_param, (x.shape[0],), dtype=x.dtype)
  return _select(gate, x + _per_example(b), x)


def ada_contrast(x: Array, key: Array, p: Array | float, *,
                 std: float = 0.5) -> Array:
  """Contrast [2]: with probability ``p`` per example, ``c * x`` with
  ``c = 2^n``, ``n ~ N(0, std^2)``, i.e. ``c ~ lognormal(0, (std ln 2)^2)``
  (``n = std * jax.random.normal(k_param, [B])``). As in [2], the scaling is
  around 0 (mid-grey), not around the image mean."""
  _check_images(x, 'ada_contrast')
  k_gate, k_param = jax.random.split(key)
  gate = ada_gate(k_gate, p, x.shape[0])
  c = jnp.exp2(std * jax.random.normal(k_param, (x.shape[0],), dtype=x.dtype))
  return _select(gate, x * _per_example(c), x)


def ada_saturation(x: Array, key: Array, p: Array | float, *,
                   std: float = 1.0) -> Array:
  """Saturation [2]: with probability ``p`` per example, ``m + s (x - m)``.

  ``m`` is each pixel's mean over the channels (the projection on [2]'s luma
  axis ``(1, 1, 1) / sqrt(3)``), ``s = 2^n``, ``n ~ N(0, std^2)``, i.e.
  ``s ~ lognormal(0, (std ln 2)^2)`` (``n = std * jax.random.normal(k_param,
  [B])``). The identity for 1-channel images (as in [2]).
  """
  _check_images(x, 'ada_saturation')
  if x.shape[3] == 1:
    return x
  k_gate, k_param = jax.random.split(key)
  gate = ada_gate(k_gate, p, x.shape[0])
  s = jnp.exp2(std * jax.random.normal(k_param, (x.shape[0],), dtype=x.dtype))
  mean = jnp.mean(x, axis=3, keepdims=True)
  return _select(gate, mean + _per_example(s) * (x - mean), x)


ADA_TRANSFORMS = {
    'xflip': ada_xflip,
    'rotate90': ada_rotate90,
    'translate': ada_translate,
    'brightness': ada_brightness,
    'contrast': ada_contrast,
    'saturation': ada_saturation,
}


# ADA's transforms in [2]'s order (geometric, then colour): the default of
# ada_augment and of config.ada_transforms.
ADA_DEFAULT_TRANSFORMS = 'xflip,rotate90,translate,brightness,contrast,saturation'


def parse_ada_transforms(transforms: str | Sequence[str]) -> list[str]:
  """``'xflip,rotate90'`` (or a sequence) -> names; ValueError naming an
  unknown one."""
  if isinstance(transforms, str):
    transforms = [t.strip() for t in transforms.split(',') if t.strip()]
  for name in transforms:
    if name not in ADA_TRANSFORMS:
      raise ValueError(f'ada_augment: unknown transform {name!r}; allowed: '
                       f'{", ".join(ADA_TRANSFORMS)}')
  return list(transforms)


def ada_augment(x: Array, key: Array, p: Array | float, *,
                transforms: str | Sequence[str] = ADA_DEFAULT_TRANSFORMS,
                translate_ratio: float = 0.125,
                brightness_std: float = 0.2,
                contrast_std: float = 0.5,
                saturation_std: float = 1.0) -> Array:
  """ADA's augmentation pipeline [2] (pixel blitting and colour subsets).

  Applies the named transforms in the order given (the default is [2]'s
  order: geometric first, then colour), each to each example independently
  with probability ``p`` (:func:`ada_xflip`, :func:`ada_rotate90`,
  :func:`ada_translate`, :func:`ada_brightness`, :func:`ada_contrast`,
  :func:`ada_saturation`). ``p`` may be a traced scalar (the train state
  holds it); ``p = 0`` returns ``x`` exactly. Keys: ``jax.random.split(key,
  n)``, one per transform in order.

  Args:
    x: images ``[B, H, W, C]`` in ``[-1, 1]`` (square for ``rotate90``).
    key: PRNG key.
    p: augmentation probability in ``[0, 1]``.
    transforms: names among ``xflip``, ``rotate90``, ``translate``,
      ``brightness``, ``contrast``, ``saturation``.
    translate_ratio: maximal translation as a fraction of the size (1/8).
    brightness_std: std of the added brightness offset (0.2).
    contrast_std: std of ``log2`` of the contrast factor (0.5).
    saturation_std: std of ``log2`` of the saturation factor (1).

  Raises:
    ValueError: an unknown transform name, or ``x`` is not 4-D.
  """
  transforms = parse_ada_transforms(transforms)
  _check_images(x, 'ada_augment')
  if not transforms:
    return x
  kwargs = {'translate': {'ratio': translate_ratio},
            'brightness': {'std': brightness_std},
            'contrast': {'std': contrast_std},
            'saturation': {'std': saturation_std}}
  for name, k in zip(transforms, jax.random.split(key, len(transforms))):
    x = ADA_TRANSFORMS[name](x, k, p, **kwargs.get(name, {}))
  return x


def ada_rt(d_real_logits: Array) -> Array:
  """ADA's overfitting heuristic [2, eq. 1]: ``r_t = E[sign(D(x_real))]``.

  The mean over all the given logits; for the paper's ``r_t`` pass the real
  logits of the last ``interval`` D steps concatenated (or average the
  per-step values, the same thing for equal batch sizes). ``r_t = 1`` means
  D calls every real example real (overfitting), ``0`` no overfitting.
  """
  logits = jnp.asarray(d_real_logits)
  return jnp.mean(jnp.sign(logits).astype(jnp.result_type(logits, jnp.float32)))


def ada_update(p: Array | float, r_t: Array | float, *,
               target: float = 0.6, batch_size: int, interval: int = 4,
               kimg: float = 500) -> Array:
  """ADA's adjustment of ``p`` [2, sec. 3], every ``interval`` D steps.

  ``p <- clip(p + sign(r_t - target) * batch_size * interval /
  (kimg * 1000), 0, 1)``: ``p`` rises when D overfits (``r_t > target``),
  falls otherwise (no change when ``r_t == target``), and the step is sized
  so that ``p`` can go from 0 to 1 in ``kimg`` thousand real images (500k
  in [2], with ``target = 0.6`` and ``interval = 4``).

  Args:
    p: the current probability (a scalar; may be traced).
    r_t: :func:`ada_rt` over the last ``interval`` D steps.
    target: the value of ``r_t`` ADA steers to.
    batch_size: real images per D step.
    interval: D steps between two updates.
    kimg: thousands of images for ``p`` to go from 0 to 1.

  Returns:
    The new ``p``, a float32 scalar in ``[0, 1]``.
  """
  step = batch_size * interval / (kimg * 1000.0)
  p = jnp.asarray(p, jnp.float32)
  r_t = jnp.asarray(r_t, jnp.float32)
  return jnp.clip(p + jnp.sign(r_t - target) * step, 0.0, 1.0)
