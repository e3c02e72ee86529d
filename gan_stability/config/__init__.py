"""Training configs: the schema (:mod:`.schema`), validation and upgrades.

:func:`validate` checks every field of a ``ConfigDict`` against its schema
(:func:`schema.schema_for`: type, range or allowed values), rejects unknown
and missing fields, and checks the combinations that cannot work (batch not
divisible by the device count, per-example penalties with a discriminator
that mixes examples, metrics the dataset cannot serve, ...). Every error is
a :class:`ConfigError` whose message starts with ``config.<field>``, raised
before anything is compiled.

:func:`upgrade` brings a ``config.json`` written by an earlier release up to
the schema; :func:`resume_changes` lists the fields a resumed run changed
that it may not change.
"""

from __future__ import annotations

import json
import numbers
from typing import Any

import jax

from gan_stability import data as data_lib
from gan_stability import losses, models, penalties
from gan_stability.config import schema
from gan_stability.config.schema import (FAMILIES, Field, defaults, family,
                                         schema_for)
from gan_stability.errors import ConfigError
from gan_stability.eval import registry as metric_registry
from gan_stability.models import layers as model_layers

__all__ = ['ConfigError', 'FAMILIES', 'Field', 'defaults', 'diff', 'family',
           'flatten', 'resume_changes', 'schema', 'schema_for', 'upgrade',
           'validate']


def flatten(config) -> dict[str, Any]:
  """``{'a.b': value}`` for every leaf of a (nested) ConfigDict or dict."""
  out = {}

  def rec(prefix, node):
    items = node.items() if hasattr(node, 'items') else []
    for k, v in items:
      key = f'{prefix}{k}'
      if hasattr(v, 'items'):
        rec(key + '.', v)
      else:
        out[key] = v
  rec('', config)
  return out


def diff(old: dict, new: dict) -> list[str]:
  """Fields (dotted) whose values differ between two flat configs."""
  keys = sorted(set(old) | set(new))
  return [k for k in keys if old.get(k, '<absent>') != new.get(k, '<absent>')]


def upgrade(old: dict) -> dict:
  """``old`` (a ``config.json`` dict) with the fields its schema declares
  and it lacks filled in at their ``legacy`` values, the behaviour of runs
  written before the field existed (a new dict)."""
  out = json.loads(json.dumps(old))
  for name, f in schema_for(out).items():
    if not f.has_legacy:
      continue
    *parents, leaf = name.split('.')
    node = out
    for p in parents:
      node = node.get(p) if isinstance(node, dict) else None
    if isinstance(node, dict) and leaf not in node:
      node[leaf] = f.legacy
  return out


def resume_changes(old, new) -> list[str]:
  """The fields of config ``new`` that differ from those of the run's
  ``old`` config (after :func:`upgrade`) and may not change on resume."""
  fields = schema_for(new)
  changed = diff(flatten(old), flatten(new))
  return [k for k in changed
          if k not in fields or not schema.resumable(fields[k], new)]


def _check_field(name: str, value: Any, f: Field, config) -> None:
  if f.kind is not bool and isinstance(value, bool):
    raise ConfigError(f'config.{name}: expected a number, got bool {value!r}')
  if f.kind is numbers.Real and isinstance(value, numbers.Real):
    value = float(value)
  elif not isinstance(value, f.kind):
    kind = getattr(f.kind, '__name__', str(f.kind))
    raise ConfigError(f'config.{name}: expected {kind}, got '
                      f'{type(value).__name__} {value!r}')
  allowed = schema.choices(f, config)
  if allowed is not None and value not in allowed:
    raise ConfigError(f'config.{name}: {value!r} is not allowed; allowed: '
                      f'{allowed}')
  if isinstance(value, float) and value != value:
    raise ConfigError(f'config.{name}: NaN is not allowed')
  if f.check is not None and not f.check(value):
    raise ConfigError(f'config.{name}: {value!r} must be {f.expect}')


def _check_schema(config, flat: dict[str, Any]) -> None:
  """Unknown, missing and invalid fields of ``schema_for(config)``."""
  fields = schema_for(config)
  unknown = sorted(set(flat) - set(fields))
  if unknown:
    raise ConfigError(f'config.{unknown[0]}: unknown field; known fields: '
                      f'{sorted(fields)}')
  missing = sorted(set(fields) - set(flat))
  if missing:
    raise ConfigError(f'config.{missing[0]}: missing field')
  for name, f in fields.items():
    _check_field(name, flat[name], f, config)


def _check_devices(c, num_devices: int | None) -> int:
  """The device count the batch is split over; checks the batch size."""
  if num_devices is None:
    available = jax.device_count()
    if c.num_devices > available:
      raise ConfigError(f'config.num_devices: {c.num_devices} requested but '
                        f'only {available} devices are available')
    num_devices = c.num_devices or available
  if c.batch_size % num_devices:
    raise ConfigError(f'config.batch_size: {c.batch_size} is not divisible by '
                      f'the number of devices ({num_devices})')
  return num_devices


def _check_image_data(c) -> None:
  source, custom = c.data.source, c.dataset == data_lib.CUSTOM
  if custom and source not in data_lib.CUSTOM_SOURCES:
    raise ConfigError(f'config.data.source: {source!r} cannot read dataset '
                      f'{data_lib.CUSTOM!r}; allowed: '
                      f'{list(data_lib.CUSTOM_SOURCES)} (folder: image '
                      'files under data.dir; npz: an .npz file)')
  if not custom and source in data_lib.CUSTOM_SOURCES:
    allowed = ['tfds'] if c.dataset.startswith(data_lib.TFDS_PREFIX) else [
        'idx', 'tfds']
    raise ConfigError(f'config.data.source: {source!r} reads dataset '
                      f'{data_lib.CUSTOM!r} only; dataset {c.dataset!r} '
                      f'allows {allowed}')
  if custom and not c.data.dir:
    raise ConfigError(f'config.data.dir: required with data.source={source} '
                      + ('(the folder of image files)' if source == 'folder'
                         else '(the .npz file)'))
  for name in ('image_size', 'skip_unreadable'):
    if c.data.get(name) and source != 'folder':
      raise ConfigError(f'config.data.{name}: {c.data[name]!r} applies only '
                        f"to data.source='folder' (dataset "
                        f"{data_lib.CUSTOM!r}), got data.source={source!r}; "
                        f'allowed here: {0 if name == "image_size" else False}')
  if source == 'idx' and c.dataset.startswith(data_lib.TFDS_PREFIX):
    raise ConfigError(f'config.data.source: {c.dataset!r} needs '
                      "data.source='tfds'")
  if c.data.source == 'idx' and not c.data.dir:
    raise ConfigError('config.data.dir: required with data.source=idx (the '
                      f'directory holding the IDX files of {c.dataset!r})')
  metric_registry.validate(c)


def _check_dispatch(c) -> None:
  for name in ('log_every', 'eval_every', 'checkpoint_every'):
    if c[name] % c.steps_per_dispatch:
      raise ConfigError(f'config.{name}: {c[name]} must be a multiple of '
                        f'config.steps_per_dispatch={c.steps_per_dispatch}')


def _check_conditional(c) -> None:
  """A class-conditional image model (``model.num_classes > 0``)."""
  n = c.model.num_classes
  known = data_lib.dataset_info(c.dataset).num_classes or None
  if known is not None and n != known:
    raise ConfigError(f'config.model.num_classes: dataset {c.dataset!r} has '
                      f'{known} classes, got num_classes={n} '
                      '(0: unconditional)')
  if c.model.get('packing', 1) > 1:
    raise ConfigError('config.model.packing: class-conditional models '
                      f'(model.num_classes={n}) do not support packing > 1')


def _check_selectors(flat: dict[str, Any], config) -> None:
  """The fields that select the rest of the schema, first."""
  if 'family' in flat:
    _check_field('family', flat['family'], schema.VAE['family'], config)
  for name in ('model.name', 'dataset'):
    if name in flat:
      _check_field(name, flat[name], schema.RUN[name], config)


def validate(config, *, num_devices: int | None = None) -> None:
  """Raises :class:`ConfigError` naming the first invalid field.

  Args:
    config: the training ConfigDict (a GAN's, or a VAE's with
      ``family='vae'``).
    num_devices: the number of devices the batch is split over (defaults to
      what ``config.num_devices`` selects among the available devices).
  """
  flat = flatten(config)
  _check_selectors(flat, config)
  if family(config) == 'vae':
    _validate_vae(config, flat, num_devices)
    return
  model_name, dataset = flat.get('model.name'), flat.get('dataset')
  if model_name and dataset and (
      models.MODELS[model_name].data == 'image') != (
          data_lib.kind(dataset) == 'image'):
    raise ConfigError(f'config.model.name: {model_name!r} does not fit '
                      f'dataset {dataset!r} (mlp is for the 2-D mixtures, '
                      'the convolutional models for images)')
  if model_name == 'mlp' and 'model.num_classes' in flat:
    raise ConfigError('config.model.num_classes: class-conditional models '
                      'need an image model and a labelled image dataset; '
                      "model 'mlp' (2-D mixtures) is unconditional (remove "
                      'the field)')
  _check_schema(config, flat)
  c = config
  num_devices = _check_devices(c, num_devices)
  penalty = penalties.PENALTIES.get(c.penalty)
  if c.model.packing > 1:
    if (c.batch_size // num_devices) % c.model.packing:
      raise ConfigError(f'config.model.packing: the per-device batch '
                        f'{c.batch_size // num_devices} is not a multiple of '
                        f'packing={c.model.packing}')
    if penalty is not None and penalty.per_example:
      raise ConfigError('config.penalty: gradient penalties are defined per '
                        'example and are not supported with a packed '
                        f'discriminator (model.packing={c.model.packing})')
  if c.model.get('num_classes', 0):
    _check_conditional(c)
  if penalty is None and c.penalty_weight != 0:
    raise ConfigError(f'config.penalty_weight: {c.penalty_weight} given but '
                      f'config.penalty is {penalties.NONE!r}')
  if penalty is not None and c.penalty_weight == 0:
    raise ConfigError(f'config.penalty_weight: must be > 0 when '
                      f'config.penalty={c.penalty!r}')
  if data_lib.kind(c.dataset) == 'image':
    _check_image_data(c)
  if (c.model.get('d_norm', 'none') == 'batch' and penalty is not None
      and penalty.per_example):
    raise ConfigError('config.model.d_norm: batch norm in D mixes examples, '
                      'so the per-example gradient penalty '
                      f'{c.penalty!r} is undefined; use none or layer')
  if c.model.spectral_norm and c.d_clip > 0:
    raise ConfigError('config.d_clip: weight clipping and '
                      'model.spectral_norm are both Lipschitz constraints; '
                      'use one')
  _check_stabilisers(c, penalty)
  _check_compute_dtype(c)
  _check_dispatch(c)
  if c.ema_start > c.num_steps:
    raise ConfigError(f'config.ema_start: {c.ema_start} is after '
                      f'num_steps={c.num_steps}')


def _check_compute_dtype(c) -> None:
  """``model.compute_dtype`` (its allowed values are the schema's) against
  ``model.conv_impl``: the custom float32 CPU convolutions cannot be forced
  in bfloat16 (``'auto'`` steps aside to XLA's convolutions)."""
  dtype = model_layers.COMPUTE_DTYPES[c.model.compute_dtype]
  try:
    model_layers.check_conv_impl(c.model.get('conv_impl', 'auto'), dtype)
  except ValueError as e:
    raise ConfigError(str(e)) from None


def _check_stabilisers(c, penalty) -> None:
  """The stabilisers' fields of a GAN config, against each other."""
  image = data_lib.kind(c.dataset) == 'image'
  if c.augment != 'none' and not image:
    raise ConfigError(f'config.augment: {c.augment!r} augments images; '
                      f'dataset {c.dataset!r} is 2-D points (use none)')
  if c.consistency in ('cr', 'bcr') and not image:
    raise ConfigError(f'config.consistency: {c.consistency!r} compares D on '
                      'an image and its augmented copy; dataset '
                      f'{c.dataset!r} is 2-D points (zcr works on any data)')
  if c.label_smoothing > 0 and not losses.LOSSES[c.loss].sigmoid:
    sigmoid = [n for n, l in losses.LOSSES.items() if l.sigmoid]
    raise ConfigError(f'config.label_smoothing: {c.label_smoothing} smooths '
                      'the real labels of a sigmoid cross-entropy D loss; '
                      f'config.loss={c.loss!r} is not one (allowed: '
                      f'{sigmoid})')
  if c.penalty_every > 1 and penalty is None:
    raise ConfigError(f'config.penalty_every: {c.penalty_every} makes a '
                      f'penalty lazy, but config.penalty is '
                      f'{penalties.NONE!r}')
  if c.augment == 'ada' and c.model.packing > 1:
    raise ConfigError(f"config.augment: 'ada' adjusts p from the sign of D's "
                      f'output per real example, but config.model.packing='
                      f'{c.model.packing} gives one output per '
                      f'{c.model.packing} examples; use packing=1 or '
                      "augment='diffaugment'")
  if c.game != 'alternating' and c.n_critic != 1:
    raise ConfigError(f'config.n_critic: {c.n_critic} D updates per step, but '
                      f'config.game={c.game!r} updates both players together '
                      "once per step; use n_critic=1 or game='alternating'")
  # A stabiliser's own fields stay at their defaults while it is off (as
  # penalty_weight without a penalty): a set value would be ignored.
  diffaug = c.augment == 'diffaugment' or c.consistency in ('cr', 'bcr')
  ada = c.augment == 'ada'
  used = {
      'instance_noise_steps': (c.instance_noise > 0, 'instance_noise'),
      'augment_policy': (diffaug, 'augment', 'consistency'),
      'ada_transforms': (ada, 'augment'),
      'ada_p': (ada, 'augment'),
      'ada_target': (ada, 'augment'),
      'ada_interval': (ada, 'augment'),
      'ada_kimg': (ada, 'augment'),
      'cr_weight_real': (c.consistency in ('cr', 'bcr'), 'consistency'),
      'cr_weight_fake': (c.consistency == 'bcr', 'consistency'),
      'zcr_sigma': (c.consistency == 'zcr', 'consistency'),
      'zcr_weight_d': (c.consistency == 'zcr', 'consistency'),
      'zcr_weight_g': (c.consistency == 'zcr', 'consistency'),
      'dragan_c': (c.penalty == 'dragan', 'penalty'),
      'lecam_decay': (c.lecam_weight > 0, 'lecam_weight'),
      'consensus_gamma': (c.game == 'consensus', 'game'),
  }
  for name, (on, *switches) in used.items():
    default = schema.GAN[name].default
    if not on and c[name] != default:
      off = ', '.join(f'{s}={c[s]!r}' for s in switches)
      raise ConfigError(f'config.{name}: {c[name]!r} is set but not used '
                        f'(its stabiliser is off: {off}); leave it at '
                        f'{default!r}')


def _validate_vae(c, flat: dict[str, Any], num_devices: int | None) -> None:
  """A VAE config (``family='vae'``): image data, the DCGAN networks."""
  if 'dataset' in flat and data_lib.kind(flat['dataset']) != 'image':
    raise ConfigError(f"config.dataset: the VAE needs an image dataset, got "
                      f"{flat['dataset']!r}; allowed: "
                      f'{[d for d, i in data_lib.DATASETS.items() if i.kind == "image"]}'
                      f" or '{data_lib.TFDS_PREFIX}<name>'")
  _check_schema(c, flat)
  _check_devices(c, num_devices)
  if c.model.num_classes:
    _check_conditional(c)
  _check_image_data(c)
  _check_dispatch(c)
