"""Scores one set of images against another: FID, KID, precision / recall,
density / coverage on FID-Inception features, outside any training run.

An input (:func:`read_input`) is any of

* a folder of image files (PNG / JPEG ..., recursive;
  :mod:`gan_stability.data.folder`),
* an ``.npy`` or ``.npz`` array of images: uint8 (or float in ``[0, 255]``)
  ``[N, H, W, C]`` with C = 1 or 3, or ``[N, H, W]`` grey (an ``.npz`` with
  several arrays must name it ``images``),
* a statistics file (an ``.npz`` with ``mu`` and ``sigma``: the TTUR /
  pytorch-fid layout, or the packed one of
  :func:`gan_stability.metrics.fid_kid.save_stats`):
  FID only,
* ``data:NAME/SPLIT`` (e.g. ``data:mnist/test``): a data set of the
  library's registry, its IDX files read from ``data_dir``,
* ``tfds:NAME/SPLIT`` (e.g. ``tfds:cifar10/train``), read with
  ``tfds.data_source`` from ``data_dir`` (no download),
* a training run's directory: ``num`` samples of its generator (the EMA
  weights when kept) at checkpoint ``step`` (default the latest), drawn from
  ``seed`` and quantised to uint8 like saved images.

``A`` is the reference (real) side and ``B`` the evaluated one: precision
and density ask how much of B lies on A's manifold, recall and coverage the
converse. CLI: ``experiments/score.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import jax
import numpy as np

from gan_stability import data as data_lib
from gan_stability.errors import ConfigError
from gan_stability.eval import registry
from gan_stability.metrics import fid_kid, inception, manifold

METRICS = ('fid', 'kid', 'pr', 'dc')
DATA_PREFIX = 'data:'
TFDS_PREFIX = data_lib.TFDS_PREFIX


@dataclasses.dataclass
class Side:
  """One input: its images, or only its statistics (``mu``, ``sigma``)."""
  name: str
  kind: str  # folder | array | stats | data | tfds | run
  images: np.ndarray | None = None
  stats: tuple[np.ndarray, np.ndarray] | None = None
  num_stats: int | None = None  # images behind a statistics file

  @property
  def count(self) -> int | None:
    """Images (None for a statistics file that does not say)."""
    if self.images is not None:
      return len(self.images)
    return self.num_stats


def _check_images(x, what: str, num: int | None = None) -> np.ndarray:
  """The first ``num`` images of ``x`` if they are uint8 (or float in
  [0, 255]) ``[N, H, W, C]`` with C = 1 or 3 (or ``[N, H, W]``), N, H,
  W >= 1; else a ConfigError naming ``what``. Arrays are not copied (a
  memory-mapped ``.npy`` stays on disk; features convert one batch at a
  time)."""
  x = np.asarray(x)  # a memory map stays one (no copy)
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3) or min(x.shape) < 1:
    raise ConfigError(f'{what}: expected images [N, H, W, C] with C = 1 or '
                      f'3 (or [N, H, W]), N, H, W >= 1; got shape {x.shape}')
  x = x[:num]
  if x.dtype == np.uint8:
    return x
  if x.dtype == bool or not (np.issubdtype(x.dtype, np.floating) or
                             np.issubdtype(x.dtype, np.integer)):
    raise ConfigError(f'{what}: expected uint8 or float images, got '
                      f'{x.dtype}')
  lo, hi = float(np.min(x)), float(np.max(x))
  if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
    raise ConfigError(f'{what}: pixel values must lie in [0, 255]; these '
                      f'span [{lo:.4g}, {hi:.4g}] (generator output in '
                      '[-1, 1]? map it with (x + 1) * 127.5)')
  if hi <= 1.0 and np.any(x != np.round(x)):
    raise ConfigError(f'{what}: pixel values span [{lo:.4g}, {hi:.4g}]: '
                      'images in [0, 1]? multiply by 255 (values must be in '
                      '[0, 255])')
  return x


def _read_array(path: str, what: str) -> np.ndarray:
  """The image array of an ``.npy`` (memory-mapped) or ``.npz`` file; any
  failure is a ConfigError naming ``what`` and the file."""
  try:
    if path.endswith('.npy'):
      return np.load(path, mmap_mode='r', allow_pickle=False)
    loaded = np.load(path, allow_pickle=False)
    if isinstance(loaded, np.ndarray):  # an .npy under an .npz name
      return loaded
    with loaded:
      names = loaded.files
      if 'images' in names:
        return loaded['images']
      if len(names) == 1:
        return loaded[names[0]]
      raise ConfigError(f'{what}: {path} holds {sorted(names)}; name the '
                        "image array 'images'")
  except ConfigError:
    raise
  except Exception as e:  # pylint: disable=broad-except
    raise ConfigError(f'{what}: cannot read {path} ({type(e).__name__}: '
                      f'{e})') from e


def _is_run(path: str) -> bool:
  return (os.path.isfile(os.path.join(path, 'config.json'))
          and os.path.isdir(os.path.join(path, 'checkpoints')))


def _run_samples(path: str, *, num: int | None, step: int | None, seed: int,
                 quantize: bool, what: str) -> np.ndarray:
  from gan_stability import config as config_lib  # pylint: disable=g-import-not-at-top
  from gan_stability.train import tasks  # pylint: disable=g-import-not-at-top
  from gan_stability.train.workdir import load_run_config  # pylint: disable=g-import-not-at-top
  config = load_run_config(path)
  config_lib.validate(config)
  if 'eval' not in config:
    raise ConfigError(f'{what}: {path} is a run on 2-D points, not images')
  n = num if num is not None else config.eval_samples
  sample_fn, step = tasks.restore_sampler(config, path, step)
  samples = sample_fn(jax.random.fold_in(jax.random.key(seed), step), n)
  return inception.to_pixels(samples, quantize_samples=quantize)


def _dataset_images(spec: str, data_dir: str | None, what: str
                    ) -> np.ndarray:
  """``data:NAME/SPLIT`` (a data set of the library's registry, its IDX
  files in ``data_dir``) or ``tfds:NAME/SPLIT`` (``tfds.data_source`` from
  ``data_dir``, no download): read as a training config of that data set
  reads it (:func:`gan_stability.data.load_split`)."""
  from gan_stability.config import schema  # pylint: disable=g-import-not-at-top
  tfds = spec.startswith(data_lib.TFDS_PREFIX)
  prefix = data_lib.TFDS_PREFIX if tfds else DATA_PREFIX
  name, _, split = spec[len(prefix):].partition('/')
  if tfds:
    if not (name and split):
      raise ConfigError(f'{what}: {spec!r}: expected tfds:NAME/SPLIT, e.g. '
                        'tfds:cifar10/train')
    name = data_lib.TFDS_PREFIX + name
  else:
    info = data_lib.dataset_info(name)
    # 'custom' data is a folder or an .npz file: give that path instead.
    if not split or info is None or info.kind != 'image' or (
        name == data_lib.CUSTOM):
      allowed = [d for d in data_lib.DATASETS if d != data_lib.CUSTOM
                 and data_lib.dataset_info(d).kind == 'image']
      raise ConfigError(f'{what}: {spec!r}: expected data:NAME/SPLIT with '
                        f'NAME one of {allowed}')
    if not data_dir:
      raise ConfigError(f'{what}: {spec!r} reads IDX files: give --data_dir')
  config = schema.defaults(model='dcgan', dataset=name)
  config.data.dir = data_dir or ''
  if not tfds:
    try:
      return data_lib.load_split(config, split, pad=False)
    except ValueError as e:  # e.g. a split the IDX files do not have
      raise ConfigError(f'{what}: {spec!r}: {e}') from e
  config.data.source = 'tfds'
  try:
    return data_lib.load_split(config, split, pad=False)
  except Exception as e:  # pylint: disable=broad-except
    # TFDS's messages run to hundreds of lines (e.g. every data set's name
    # for an unknown one): the first says what went wrong.
    first = (str(e).strip().splitlines() or [''])[0]
    if isinstance(e, ValueError):
      raise ConfigError(f'{what}: {first}') from e
    raise ConfigError(f'{what}: cannot read TFDS {name[len(prefix):]!r} '
                      f'split {split!r} from data_dir {data_dir!r} '
                      f'({type(e).__name__}: {first})') from e


def read_input(spec: str, *, what: str, num: int | None = None,
               data_dir: str | None = None, step: int | None = None,
               seed: int = 0, quantize: bool = True) -> Side:
  """Reads one input (see the module docstring); ``num`` keeps the first
  ``num`` images (samples drawn, for a run). Bad input raises ConfigError
  (or FileNotFoundError / DamagedFile) naming ``what``."""
  if spec.startswith((DATA_PREFIX, TFDS_PREFIX)):
    kind = 'data' if spec.startswith(DATA_PREFIX) else 'tfds'
    return Side(spec, kind, _check_images(
        _dataset_images(spec, data_dir, what), what, num))
  if not os.path.exists(spec):
    raise FileNotFoundError(f'{what}: {spec}: no such file or directory')
  if os.path.isdir(spec):
    if _is_run(spec):
      samples = _run_samples(spec, num=num, step=step, seed=seed,
                             quantize=quantize, what=what)
      return Side(spec, 'run', _check_images(samples, what))
    from gan_stability.data import folder  # pylint: disable=g-import-not-at-top
    images, _ = folder.read_folder(spec, what=what, limit=num)
    return Side(spec, 'folder', images)
  if fid_kid.is_stats_file(spec):
    mu, sigma = fid_kid.load_stats(spec, dim=inception.FEATURE_DIM)
    n, _ = fid_kid.stats_info(spec)
    return Side(spec, 'stats', stats=(mu, sigma), num_stats=n)
  if spec.endswith(('.npy', '.npz')):
    return Side(spec, 'array', _check_images(_read_array(spec, what), what,
                                             num))
  raise ConfigError(f'{what}: {spec}: not a folder, .npy / .npz array, '
                    'statistics file, tfds:NAME/SPLIT or run directory')


class Progress:
  """Prints ``label: done/total images, R images/s, ETA`` to stderr at most
  every ``every_s`` seconds and at the end."""

  def __init__(self, label: str, every_s: float = 10.0, stream=None):
    self.label, self.every_s = label, every_s
    self.stream = stream or sys.stderr
    self.start = time.monotonic()
    self.last = self.start

  def __call__(self, done: int, total: int) -> None:
    now = time.monotonic()
    if done < total and now - self.last < self.every_s:
      return
    self.last = now
    rate = done / max(now - self.start, 1e-9)
    eta = (total - done) / rate if rate > 0 else float('inf')
    print(f'{self.label}: {done}/{total} images, {rate:.1f} images/s, '
          f'ETA {_duration(eta)}', file=self.stream, flush=True)


def _duration(s: float) -> str:
  if not np.isfinite(s):
    return '?'
  s = int(round(s))
  return f'{s // 3600}h{s // 60 % 60:02d}m' if s >= 3600 else (
      f'{s // 60}m{s % 60:02d}s')


def parse_metrics(spec: str) -> tuple[str, ...]:
  names = tuple(n.strip() for n in spec.split(',') if n.strip())
  bad = [n for n in names if n not in METRICS]
  if bad or not names:
    raise ConfigError(f'--metrics: unknown {bad or spec!r}; allowed: '
                      f'{list(METRICS)} (comma-separated)')
  return names


def check_request(a: Side, b: Side | None, metrics, *, save_stats: str | None
                  ) -> None:
  """Refuses requests that the inputs cannot answer (before any feature is
  computed)."""
  if save_stats and a.kind == 'stats':
    raise ConfigError(f'--save_stats: A ({a.name}) is already a statistics '
                      'file')
  if b is None:
    if not save_stats:
      raise ConfigError('give two inputs A B to compare, or one with '
                        '--save_stats=FILE')
    return
  for side, label in ((a, 'A'), (b, 'B')):
    if side.kind == 'stats':
      other = [m for m in metrics if m != 'fid']
      if other:
        raise ConfigError(
            f'--metrics: {other} need the features of both sides; {label} '
            f'({side.name}) is a statistics file (FID only)')
  # The fewest images each metric accepts (k-NN metrics need n > k).
  fewest = max({'fid': 2, 'kid': 2, 'pr': registry.PR_K + 1,
                'dc': registry.DC_K + 1}[m] for m in metrics)
  for side, label in ((a, 'A'), (b, 'B')):
    if side.images is not None and len(side.images) < fewest:
      raise ConfigError(f'{label} ({side.name}): {len(side.images)} images; '
                        f'--metrics={",".join(metrics)} needs at least '
                        f'{fewest}')


def side_features(side: Side, params, *, resize: str, batch_size: int,
                  label: str, progress_every_s: float = 10.0) -> np.ndarray:
  return inception.features(
      params, side.images, resize=resize, batch_size=batch_size,
      progress=Progress(f'{label} features', progress_every_s))


def score(feats_a, feats_b, stats_a, stats_b, metrics, *, seed: int = 0
          ) -> dict:
  """The metrics of B against A from features (or, for FID, statistics),
  with the evaluator's settings (:mod:`gan_stability.eval.registry`): KID
  x 1e3 over 100 subsets of ``min(1000, n)`` drawn from ``key(seed)``,
  precision / recall with k = 3, density / coverage with k = 5."""
  out = {}
  if 'fid' in metrics:
    out['fid'] = fid_kid.fid_from_stats(*stats_a, *stats_b)
  if 'kid' in metrics:
    out['kid'] = registry.KID_SCALE * fid_kid.kid(
        feats_a, feats_b, key=jax.random.key(seed),
        subset_size=min(registry.KID_SUBSET, len(feats_a), len(feats_b)))
  if 'pr' in metrics:
    out['precision'], out['recall'] = manifold.precision_recall(
        feats_a, feats_b, k=registry.PR_K)
  if 'dc' in metrics:
    out['density'], out['coverage'] = manifold.density_coverage(
        feats_a, feats_b, k=registry.DC_K)
  return out


def run(inputs, *, metrics: str = 'fid', resize: str = 'tf1',
        num: int | None = None, inception_path: str | None = None,
        save_stats: str | None = None, packed: bool = False,
        batch_size: int = 50, data_dir: str | None = None,
        step: int | None = None, seed: int = 0, quantize: bool = True,
        progress_every_s: float = 10.0, out=None) -> dict | None:
  """What ``experiments.score`` does: reads ``inputs`` (``[A]`` or
  ``[A, B]``), checks the request, computes the features, optionally saves
  A's statistics, and prints the table and a final JSON line of B scored
  against A to ``out`` (default stdout). Returns that record (None with one
  input). Bad input raises ConfigError / FileNotFoundError / DamagedFile
  before any feature is computed."""
  out = out or sys.stdout
  if not 1 <= len(inputs) <= 2:
    raise ConfigError(f'expected inputs A [B], got {len(inputs)}: '
                      f'{list(inputs)}')
  inception.check_resize_mode(resize, '--resize')
  if num is not None and num < 1:
    raise ConfigError(f'--num: must be >= 1, got {num}')
  if batch_size < 1:
    raise ConfigError(f'--batch_size: must be >= 1, got {batch_size}')
  names = parse_metrics(metrics)
  if inception_path is not None and not os.path.isfile(inception_path):
    raise FileNotFoundError(f'--inception_path: {inception_path}: no such '
                            'file')
  sides = [read_input(s, what=w, num=num, data_dir=data_dir, step=step,
                      seed=seed, quantize=quantize)
           for s, w in zip(inputs, ('A', 'B'))]
  a, b = sides[0], (sides[1] if len(sides) == 2 else None)
  check_request(a, b, names, save_stats=save_stats)
  params = None
  if any(s.kind != 'stats' for s in sides):
    if not inception_path:
      raise ConfigError('--inception_path: required to compute features '
                        '(fid_inception_v3_2015.npz)')
    params = inception.load_params(inception_path)
  feats, stats = {}, {}
  for side, label in zip(sides, ('A', 'B')):
    if side.kind == 'stats':
      stats[label] = side.stats
      continue
    feats[label] = side_features(side, params, resize=resize,
                                 batch_size=batch_size, label=label,
                                 progress_every_s=progress_every_s)
    stats[label] = fid_kid.gaussian_stats(feats[label])
  if save_stats:
    fid_kid.save_stats(
        save_stats, *stats['A'], num_samples=a.count, packed=packed,
        protocol={'resize': resize, 'num': a.count, 'source': a.name,
                  'features': 'inception-2015-12-05 pool_3',
                  'weights_sha256': inception.params_digest(params)})
    print(f'wrote the statistics of A ({a.count} images, resize {resize}) '
          f'to {save_stats}', file=out, flush=True)
  if b is None:
    return None
  record = {'a': a.name, 'b': b.name, 'num_a': a.count, 'num_b': b.count,
            'resize': resize}
  if 'run' in (a.kind, b.kind):
    record['quantize'] = quantize
  record.update(score(feats.get('A'), feats.get('B'), stats['A'], stats['B'],
                      names, seed=seed))
  width = max(len(k) for k in record)
  for k, v in record.items():
    print(f'{k:<{width}}  {v:.6g}' if isinstance(v, float) else
          f'{k:<{width}}  {v}', file=out)
  print(json.dumps(record), file=out, flush=True)
  return record
