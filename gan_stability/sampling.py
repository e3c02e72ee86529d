"""Drawing samples from a loaded model and writing them to files: the
library behind ``python -m experiments.sample`` (whose docstring describes
the outputs).

:func:`run` loads a model (:func:`gan_stability.trained.load`), draws
(:func:`draw`, with :func:`interpolate` for interpolation rows) and writes
(:func:`write`); bad requests are ConfigErrors naming the CLI's flag.
"""

from __future__ import annotations

import math
import os
import re
import shutil

import numpy as np

from gan_stability.errors import ConfigError, writing

OUTPUTS = ('.png grid', '.npz arrays', 'a folder of PNGs')


def output_kind(out: str) -> str:
  """``'png'``, ``'npz'`` or ``'folder'`` of an ``--out`` path."""
  if not out.strip():
    raise ConfigError('--out: empty; give FILE.png, FILE.npz or a folder')
  ext = os.path.splitext(out.rstrip('/'))[1].lower()
  if out.endswith('/') or not ext:
    return 'folder'
  if ext in ('.png', '.npz'):
    return ext[1:]
  raise ConfigError(f'--out: {out!r} has suffix {ext!r}; allowed: {OUTPUTS}')


_SAMPLE_FILE = re.compile(r'^\d{6}\.png$')


def _foreign_files(folder: str) -> list[str]:
  """What in ``folder`` the sampler would not have written (its files are
  ``NNNNNN.png``, in class subfolders named by numbers)."""
  foreign = []
  for name in sorted(os.listdir(folder)):
    path = os.path.join(folder, name)
    if os.path.isdir(path) and not os.path.islink(path) and name.isdigit():
      foreign += [os.path.join(name, f) for f in sorted(os.listdir(path))
                  if not _SAMPLE_FILE.match(f)
                  or not os.path.isfile(os.path.join(path, f))]
    elif not (_SAMPLE_FILE.match(name) and os.path.isfile(path)):
      foreign.append(name)
  return foreign


def check_output(out: str, *, overwrite: bool, model=None) -> str:
  """:func:`output_kind` of ``out``, refused (ConfigError naming --out)
  when it exists without ``overwrite`` (an empty folder is fine), when a
  folder to replace holds anything the sampler did not write (``--overwrite``
  never deletes other files), when it is or holds the run being sampled,
  when its parent folder is missing, or for a folder of PNGs of a 2-D
  model."""
  kind = output_kind(out)
  exists = os.path.lexists(out)
  if kind == 'folder' and exists and not os.path.isdir(out):
    raise ConfigError(f'--out: {out} is a file; a folder of PNGs was asked '
                      'for (give a .png or .npz name for a file)')
  if kind != 'folder' and os.path.isdir(out):
    raise ConfigError(f'--out: {out} is a folder; a .{kind} file was asked for')
  if exists and kind == 'folder' and os.listdir(out):
    foreign = _foreign_files(out)
    if foreign:
      raise ConfigError(f'--out: {out} holds files the sampler did not write '
                        f'({foreign[:3]}); give a new or empty folder')
    if not overwrite:
      raise ConfigError(f'--out: {out} holds samples; add --overwrite to '
                        'replace them')
  elif exists and kind != 'folder' and not overwrite:
    raise ConfigError(f'--out: {out} exists; add --overwrite to replace it')
  if model is not None:
    run = os.path.realpath(model.path)
    target = os.path.realpath(out.rstrip('/') or '.')
    if run == target or run.startswith(target + os.sep):
      raise ConfigError(f'--out: {out} would replace the run {model.path}')
  parent = os.path.dirname(os.path.abspath(out.rstrip('/')))
  if not os.path.isdir(parent):
    raise ConfigError(f'--out: the folder {parent} does not exist')
  if model is not None and kind == 'folder' and not model.is_image:
    raise ConfigError('--out: a folder of PNGs is for image models; '
                      f'{model.path} draws 2-D points (use .npz or .png)')
  return kind


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, how: str
                ) -> np.ndarray:
  """``[n, steps, d]`` points from ``z0`` to ``z1`` (``[n, d]``), ends
  included: ``lerp`` (1 - t) z0 + t z1; ``slerp`` the great circle
  sin((1 - t) w) / sin w z0 + sin(t w) / sin w z1 with w the angle between
  them (Shoemake 1985; White 2016, "Sampling Generative Networks"), which
  keeps Gaussian latents at their typical norm; lerp where w ~ 0."""
  t = np.linspace(0.0, 1.0, steps)[None, :, None]
  a, b = z0[:, None, :].astype(np.float64), z1[:, None, :].astype(np.float64)
  line = (1 - t) * a + t * b
  if how == 'lerp':
    return line.astype(np.float32)
  cos = np.sum(a * b, -1, keepdims=True) / (
      np.linalg.norm(a, axis=-1, keepdims=True) *
      np.linalg.norm(b, axis=-1, keepdims=True))
  w = np.arccos(np.clip(cos, -1.0, 1.0))
  sin = np.sin(w)
  safe = np.where(sin < 1e-6, 1.0, sin)
  arc = (np.sin((1 - t) * w) * a + np.sin(t * w) * b) / safe
  return np.where(sin < 1e-6, line, arc).astype(np.float32)


def _check_counts(num: int, steps: int) -> None:
  """``--num`` >= 1 and ``--interpolate`` 0 (off) or >= 2."""
  if num < 1:
    raise ConfigError(f'--num: expected >= 1, got {num}')
  if steps < 0 or steps == 1:
    raise ConfigError(f'--interpolate: expected 0 (off) or >= 2 steps, got '
                      f'{steps}')


def draw(model, *, num: int, seed: int = 0, label: int | None = None,
         ema: bool = True, steps: int = 0, how: str = 'slerp',
         batch_size: int = 500, progress=None):
  """``(x, z, labels)`` of ``num`` samples (``steps > 0``: ``num``
  interpolation rows ``[num, steps, ...]``) of a loaded model."""
  import jax  # pylint: disable=g-import-not-at-top
  _check_counts(num, steps)
  if label is not None and not model.num_classes:
    raise ConfigError(f'--class: {model.path} is an unconditional model')
  if label is not None and not 0 <= label < model.num_classes:
    raise ConfigError(f'--class: {label} is not in [0, {model.num_classes}) '
                      f'({model.num_classes} classes)')
  labels = model.labels(num, label)
  key = jax.random.key(seed)
  if not steps:
    z = np.asarray(model.latents(num, key=key))
  else:
    ends = np.asarray(model.latents(2 * num, key=key))
    z = interpolate(ends[:num], ends[num:], steps, how)
    if labels is not None:
      labels = np.repeat(labels, steps)
  flat = z.reshape(-1, z.shape[-1])
  x = model.generate(flat, labels, ema=ema, batch_size=batch_size,
                     progress=progress)
  if model.is_image:
    from gan_stability.metrics import inception  # pylint: disable=g-import-not-at-top
    x = inception.quantize(x)
  if steps:
    x = x.reshape((num, steps) + x.shape[1:])
    if labels is not None:
      labels = labels.reshape(num, steps)
  return x, z, labels


def write(out: str, model, x, z, labels, *, seed: int, ncols: int | None,
          overwrite: bool = False) -> str:
  """Writes what :func:`draw` returned to ``out`` (module docstring);
  returns a one-line description."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  from gan_stability import plotting  # pylint: disable=g-import-not-at-top
  kind = check_output(out, overwrite=overwrite, model=model)
  steps = x.shape[1] if x.ndim == len(model.data_shape) + 2 else 0
  if kind == 'npz':
    arrays = {'x': x, 'z': z, 'step': np.int64(model.step),
              'seed': np.int64(seed)}
    if labels is not None:
      arrays['label'] = labels.astype(np.int32)
    with writing('samples', out):
      with open(out + '.tmp', 'wb') as f:
        np.savez(f, **arrays)
      os.replace(out + '.tmp', out)
    return f'wrote {out}: x {x.dtype} {list(x.shape)}'
  flat = x.reshape((-1,) + x.shape[(2 if steps else 1):])
  # Written beside the output, then renamed over it: a crash leaves the
  # old output whole.
  tmp = f'{out.rstrip("/")}.tmp-{os.getpid()}'
  if kind == 'png':
    tmp += '.png'
    with writing('samples', out):
      if model.is_image:
        cols = ncols or steps or _grid_width(model, len(flat))
        plotting.save_image_grid(tmp, flat.astype(np.float32) / 127.5 - 1.0,
                                 cols)
      else:
        from gan_stability.data import mixtures  # pylint: disable=g-import-not-at-top
        centers = mixtures.from_config(model.config).centers
        plotting.save_scatter(tmp, flat, centers,
                              title=f'{model.path} step {model.step}')
      os.replace(tmp, out)
    return f'wrote {out}: {len(flat)} samples'
  flat_labels = None if labels is None else labels.reshape(-1)
  width = len(str(model.num_classes - 1)) if model.num_classes else 0
  with writing('samples', out):
    os.makedirs(tmp)
    for i, image in enumerate(flat):
      folder = tmp
      if flat_labels is not None:
        folder = os.path.join(tmp, f'{int(flat_labels[i]):0{width}d}')
        os.makedirs(folder, exist_ok=True)
      pixels = image[..., 0] if image.shape[-1] == 1 else image
      Image.fromarray(pixels).save(os.path.join(folder, f'{i:06d}.png'))
    if os.path.isdir(out):  # checked: only the sampler's own files
      shutil.rmtree(out)
    os.replace(tmp, out.rstrip('/'))
  return f'wrote {out}: {len(flat)} PNG files'


def _grid_width(model, n: int) -> int:
  if model.num_classes and model.num_classes <= 16:
    return model.config.data.samples_per_row
  return max(1, math.ceil(math.sqrt(n)))


def run(*, run_path: str, out: str, num: int = 64, seed: int = 0,
        step: int | None = None, label: int | None = None, ema: bool = True,
        steps: int = 0, how: str = 'slerp', ncols: int | None = None,
        batch_size: int = 500, overwrite: bool = False,
        progress_every_s: float = 5.0) -> str:
  """The CLI without its flags: loads ``run_path``, draws, writes ``out``."""
  from gan_stability import trained  # pylint: disable=g-import-not-at-top
  from gan_stability.eval import score  # pylint: disable=g-import-not-at-top
  check_output(out, overwrite=overwrite)  # before anything loads
  if ncols is not None and ncols < 1:
    raise ConfigError(f'--ncols: expected >= 1, got {ncols}')
  if batch_size < 1:
    raise ConfigError(f'--batch_size: expected >= 1, got {batch_size}')
  _check_counts(num, steps)  # before anything loads
  try:
    model = trained.load(run_path, step=step)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'--run: {e}') from None
  check_output(out, overwrite=overwrite, model=model)
  x, z, labels = draw(model, num=num, seed=seed, label=label, ema=ema,
                      steps=steps, how=how, batch_size=batch_size,
                      progress=score.Progress('sampled', progress_every_s))
  return write(out, model, x, z, labels, seed=seed, ncols=ncols,
               overwrite=overwrite)
