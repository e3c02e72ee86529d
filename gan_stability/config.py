"""Validation of training configs, before anything is compiled.

:func:`validate` checks every field of a ``ConfigDict`` against
:func:`schema_for` (:data:`COMMON` plus the fields of its model and its kind
of dataset: type, range or allowed values), rejects unknown fields, and
checks the combinations that cannot work (batch not divisible by the device
count, penalties with packed discriminators, ...). Every error is a
:class:`ConfigError` whose message starts with ``config.<field>``.
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any, Callable, Sequence

from gan_stability import losses, penalties
from gan_stability.kernels import compile_options


class ConfigError(ValueError):
  """A config field has an invalid value; the message names the field."""


@dataclasses.dataclass(frozen=True)
class Field:
  kind: type | tuple[type, ...]
  check: Callable[[Any], bool] | None = None
  expect: str = ''
  choices: Sequence[Any] | None = None


def _int(check=None, expect=''):
  return Field(int, check, expect)


def _float(check=None, expect=''):
  return Field(numbers.Real, check, expect)


def _choice(*choices):
  return Field(str, None, '', tuple(choices))


def _ynn_ok(v) -> bool:
  try:
    compile_options.parse(v)
  except ValueError:
    return False
  return True


_ynn_expect = compile_options.ALLOWED + str(list(compile_options.KINDS))

_POS = (lambda v: v > 0, '> 0')
_NONNEG = (lambda v: v >= 0, '>= 0')
_UNIT = (lambda v: 0 <= v < 1, 'in [0, 1)')

_ACTS = ('relu', 'leaky_relu', 'tanh', 'elu')
MIXTURES = ('ring', 'grid')
IMAGE_DATASETS = ('mnist', 'fashion_mnist', 'stacked_mnist')  # + 'tfds:<name>'
# Classes of the labelled datasets (Stacked MNIST: the 1,000 digit triples
# ``100 d_R + 10 d_G + d_B``); a 'tfds:<name>' dataset's labels are checked
# against ``model.num_classes`` when they are loaded.
NUM_CLASSES = {'mnist': 10, 'fashion_mnist': 10, 'stacked_mnist': 1000,
               'tfds:cifar10': 10, 'tfds:mnist': 10, 'tfds:fashion_mnist': 10}

# Fields every config has.
COMMON: dict[str, Field] = {
    'variant': Field(str),
    'seed': _int(*_NONNEG),
    'dataset': Field(str, lambda v: v in MIXTURES + IMAGE_DATASETS or (
        v.startswith('tfds:') and len(v) > 5),
                     f"one of {list(MIXTURES + IMAGE_DATASETS)} or 'tfds:<name>'"),
    'model.name': _choice('mlp', 'dcgan', 'sngan_cnn', 'resnet'),
    'model.z_dim': _int(*_POS),
    'model.spectral_norm': Field(bool),
    'model.sn_steps': _int(lambda v: v >= 1, '>= 1'),
    'model.packing': _int(lambda v: v >= 1, '>= 1'),
    'loss': _choice(*losses.LOSSES),
    'penalty': _choice(*penalties.PENALTY_NAMES),
    'penalty_weight': _float(*_NONNEG),
    'gp_target': _float(*_NONNEG),
    'n_critic': _int(lambda v: v >= 1, '>= 1'),
    'd_clip': _float(*_NONNEG),
    'batch_size': _int(*_POS),
    'optimizer.name': _choice('adam', 'rmsprop', 'sgd'),
    'optimizer.g_lr': _float(*_POS),
    'optimizer.d_lr': _float(*_POS),
    'optimizer.b1': _float(*_UNIT),
    'optimizer.b2': _float(*_UNIT),
    'optimizer.lr_schedule': _choice('constant', 'linear'),
    'ema_decay': _float(*_UNIT),
    'ema_start': _int(*_NONNEG),
    'num_steps': _int(*_POS),
    'steps_per_dispatch': _int(*_POS),
    'loop_impl': _choice('auto', 'scan', 'unroll'),
    # Which XLA:CPU kinds of ops YNNPACK runs (gan_stability/kernels/compile_options.py).
    'cpu_ynn_fusions': Field(str, _ynn_ok, _ynn_expect),
    'log_every': _int(*_POS),
    'eval_every': _int(*_POS),
    'eval_samples': _int(*_POS),
    'checkpoint_every': _int(*_POS),
    'keep_checkpoints': _int(lambda v: v >= 1, '>= 1'),
    'num_devices': _int(*_NONNEG),
    'write_tensorboard': Field(bool),
    'write_samples': Field(bool),
    'alarm_grad_factor': _float(*_NONNEG),
    'alarm_collapse_ratio': _float(*_UNIT),
    'log_sigmas': Field(bool),
    'on_divergence': _choice('stop', 'rollback'),
    'max_rollbacks': _int(*_NONNEG),
}

# Model fields by ``model.name``.
_IMAGE_MODEL = {
    'model.g_width': _int(*_POS),
    'model.d_width': _int(*_POS),
    'model.g_norm': _choice('batch', 'none'),
    'model.d_norm': _choice('none', 'batch', 'layer'),
    'model.conv_impl': _choice('auto', 'native', 'fast', 'fast_matmul'),
    # 0: unconditional; > 0: class-conditional G and projection D.
    'model.num_classes': _int(*_NONNEG),
}
MODEL_FIELDS: dict[str, dict[str, Field]] = {
    'mlp': {
        'model.g_hidden': _int(*_POS),
        'model.g_layers': _int(*_NONNEG),
        'model.g_activation': _choice(*_ACTS),
        'model.d_hidden': _int(*_POS),
        'model.d_layers': _int(*_NONNEG),
        'model.d_activation': _choice(*_ACTS),
        'model.g_norm': _choice('none', 'batch'),
        'model.d_maxout': _int(lambda v: v >= 1, '>= 1 (1: no maxout)'),
    },
    'dcgan': _IMAGE_MODEL,
    'sngan_cnn': _IMAGE_MODEL,
    'resnet': _IMAGE_MODEL,
}

# Data fields by kind of dataset.
DATA_FIELDS: dict[str, dict[str, Field]] = {
    'mixture': {
        'data.ring_modes': _int(lambda v: v >= 2, '>= 2'),
        'data.ring_radius': _float(*_POS),
        'data.ring_sigma': _float(*_POS),
        'data.grid_size': _int(lambda v: v >= 2, '>= 2'),
        'data.grid_spacing': _float(*_POS),
        'data.grid_sigma': _float(*_POS),
    },
    'image': {
        'data.source': _choice('idx', 'tfds'),
        'data.dir': Field(str),
        'data.split': Field(str, lambda v: bool(v), 'a split name'),
        'data.pad_to': _int(lambda v: v in (0, 32), '0 (none) or 32'),
        'data.stacked_num_examples': _int(*_POS),
        'data.samples_per_row': _int(*_POS),
        'data.download': Field(bool),
        'eval.metrics': Field(str),
        'eval.features': _choice('classifier', 'inception'),
        'eval.classifier_path': Field(str),
        'eval.inception_path': Field(str),
        'eval.num_real': _int(lambda v: v >= 2, '>= 2'),
        'eval.cache_dir': Field(str),
    },
}


# The VAE baseline (``config.family = 'vae'``; gan_stability/train/vae.py):
# the image data/eval fields plus these.
VAE_FIELDS: dict[str, Field] = {
    'family': _choice('vae'),
    **{k: COMMON[k] for k in ('variant', 'seed', 'dataset', 'model.z_dim')},
    'model.name': _choice('dcgan'),
    **{k: _IMAGE_MODEL[k] for k in ('model.g_width', 'model.conv_impl',
                                    'model.num_classes')},
    'model.g_norm': _choice('batch', 'none'),
    'model.e_width': _int(*_POS),
    'vae.likelihood': _choice('bernoulli', 'gaussian'),
    'vae.sigma': _float(*_POS),
    'vae.beta': _float(*_POS),
    'optimizer.lr': _float(*_POS),
    **{k: COMMON[k] for k in (
        'optimizer.name', 'optimizer.b1', 'optimizer.b2',
        'optimizer.lr_schedule', 'batch_size', 'num_steps',
        'steps_per_dispatch', 'log_every', 'eval_every', 'eval_samples',
        'checkpoint_every', 'keep_checkpoints', 'num_devices',
        'write_tensorboard', 'write_samples', 'cpu_ynn_fusions')},
}


# Image metrics selectable in ``config.eval.metrics`` (gan_stability/evaluation.py).
EVAL_METRICS = ('digits', 'stacked_modes', 'cfid', 'ckid', 'fid', 'kid', 'pr',
                'dc')
_GREY_METRICS = ('digits', 'cfid', 'ckid')  # the MNIST classifier: 1 channel


def parse_eval_metrics(spec: str) -> tuple[str, ...]:
  """``'cfid, pr'`` -> ``('cfid', 'pr')``; raises ConfigError on unknown names."""
  names = tuple(n.strip() for n in spec.split(',') if n.strip())
  bad = [n for n in names if n not in EVAL_METRICS]
  if bad:
    raise ConfigError(f'config.eval.metrics: unknown {bad}; allowed: '
                      f'{list(EVAL_METRICS)}')
  return names


def data_kind(dataset: str) -> str:
  return 'mixture' if dataset in MIXTURES else 'image'


def schema_for(config) -> dict[str, Field]:
  """The fields a config must have, given its family, model and dataset."""
  if config.get('family', 'gan') == 'vae':
    return {**VAE_FIELDS, **DATA_FIELDS['image']}
  name = config.get('model', {}).get('name', 'mlp')
  dataset = config.get('dataset', 'ring')
  out = dict(COMMON)
  out.update(MODEL_FIELDS.get(name, {}))
  out.update(DATA_FIELDS[data_kind(dataset) if isinstance(dataset, str)
                         else 'mixture'])
  return out

# Fields added after runs were first written, with the value that reproduces
# the behaviour of a run written without them: ``upgrade`` fills them in when
# an old ``config.json`` is resumed or evaluated.
ADDED_FIELDS = {
    'model.g_norm': 'none',  # the MLP generator (added for the PacGAN architecture)
    'model.d_maxout': 1,
    'model.num_classes': 0,  # image models (added for conditional GANs)
    'cpu_ynn_fusions': 'xla',  # XLA's default libraries (before the field)
}


def upgrade(old: dict) -> dict:
  """``old`` (a ``config.json`` dict) with the :data:`ADDED_FIELDS` its
  schema needs and lacks, at their old-behaviour values (a new dict)."""
  out = json.loads(json.dumps(old))
  schema = schema_for(out)
  for field, value in ADDED_FIELDS.items():
    *parents, leaf = field.split('.')
    node = out
    for p in parents:
      node = node.get(p) if isinstance(node, dict) else None
    if field in schema and isinstance(node, dict) and leaf not in node:
      node[leaf] = value
  return out


# Fields that may change when a run is resumed from its workdir.
RESUMABLE_CHANGES = frozenset({
    'num_steps', 'log_every', 'eval_every', 'eval_samples', 'checkpoint_every',
    'keep_checkpoints', 'write_tensorboard', 'write_samples', 'num_devices',
    'steps_per_dispatch', 'loop_impl', 'cpu_ynn_fusions', 'alarm_grad_factor',
    'alarm_collapse_ratio', 'log_sigmas', 'eval.metrics', 'eval.features',
    'eval.classifier_path', 'eval.inception_path', 'eval.num_real',
    'eval.cache_dir', 'on_divergence', 'max_rollbacks',
})


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


def _check_field(name: str, value: Any, spec: Field) -> None:
  if spec.kind is not bool and isinstance(value, bool):
    raise ConfigError(f'config.{name}: expected a number, got bool {value!r}')
  if spec.kind is numbers.Real and isinstance(value, numbers.Real):
    value = float(value)
  elif not isinstance(value, spec.kind):
    kind = getattr(spec.kind, '__name__', str(spec.kind))
    raise ConfigError(f'config.{name}: expected {kind}, got '
                      f'{type(value).__name__} {value!r}')
  if spec.choices is not None and value not in spec.choices:
    raise ConfigError(f'config.{name}: {value!r} is not allowed; allowed: '
                      f'{list(spec.choices)}')
  if isinstance(value, float) and value != value:
    raise ConfigError(f'config.{name}: NaN is not allowed')
  if spec.check is not None and not spec.check(value):
    raise ConfigError(f'config.{name}: {value!r} must be {spec.expect}')


def _check_schema(config, flat: dict[str, Any]) -> None:
  """Unknown, missing and invalid fields of ``schema_for(config)``."""
  schema = schema_for(config)
  unknown = sorted(set(flat) - set(schema))
  if unknown:
    raise ConfigError(f'config.{unknown[0]}: unknown field; known fields: '
                      f'{sorted(schema)}')
  missing = sorted(set(schema) - set(flat))
  if missing:
    raise ConfigError(f'config.{missing[0]}: missing field')
  for name, spec in schema.items():
    _check_field(name, flat[name], spec)


def _check_devices(c, num_devices: int | None) -> int:
  """The device count the batch is split over; checks the batch size."""
  if num_devices is None:
    import jax  # pylint: disable=g-import-not-at-top
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
  if c.data.source == 'idx' and c.dataset.startswith('tfds:'):
    raise ConfigError(f'config.data.source: {c.dataset!r} needs '
                      "data.source='tfds'")
  if c.data.source == 'idx' and not c.data.dir:
    raise ConfigError('config.data.dir: required with data.source=idx (the '
                      f'directory holding the IDX files of {c.dataset!r})')
  _validate_eval(c)


def _check_dispatch(c) -> None:
  for name in ('log_every', 'eval_every', 'checkpoint_every'):
    if c[name] % c.steps_per_dispatch:
      raise ConfigError(f'config.{name}: {c[name]} must be a multiple of '
                        f'config.steps_per_dispatch={c.steps_per_dispatch}')


def validate(config, *, num_devices: int | None = None) -> None:
  """Raises :class:`ConfigError` naming the first invalid field.

  Args:
    config: the training ConfigDict (a GAN's, or a VAE's with
      ``family='vae'``).
    num_devices: the number of devices the batch is split over (defaults to
      what ``config.num_devices`` selects among the available devices).
  """
  flat = flatten(config)
  if flat.get('family', 'gan') != 'gan':
    _validate_vae(config, flat, num_devices)
    return
  for name in ('model.name', 'dataset'):  # they select the rest of the schema
    if name in flat:
      _check_field(name, flat[name], COMMON[name])
  model_name, dataset = flat.get('model.name'), flat.get('dataset')
  if model_name and dataset and (model_name == 'mlp') != (
      data_kind(dataset) == 'mixture'):
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
  if c.model.packing > 1:
    if (c.batch_size // num_devices) % c.model.packing:
      raise ConfigError(f'config.model.packing: the per-device batch '
                        f'{c.batch_size // num_devices} is not a multiple of '
                        f'packing={c.model.packing}')
    if c.penalty != 'none':
      raise ConfigError('config.penalty: gradient penalties are defined per '
                        'example and are not supported with a packed '
                        f'discriminator (model.packing={c.model.packing})')
  if c.model.get('num_classes', 0):
    _validate_conditional(c)
  if c.penalty == 'none' and c.penalty_weight != 0:
    raise ConfigError(f'config.penalty_weight: {c.penalty_weight} given but '
                      "config.penalty is 'none'")
  if c.penalty != 'none' and c.penalty_weight == 0:
    raise ConfigError(f'config.penalty_weight: must be > 0 when '
                      f'config.penalty={c.penalty!r}')
  if data_kind(c.dataset) == 'image':
    _check_image_data(c)
  if c.model.get('d_norm', 'none') == 'batch' and c.penalty != 'none':
    raise ConfigError('config.model.d_norm: batch norm in D mixes examples, '
                      'so the per-example gradient penalty '
                      f'{c.penalty!r} is undefined; use none or layer')
  if c.model.spectral_norm and c.d_clip > 0:
    raise ConfigError('config.d_clip: weight clipping and '
                      'model.spectral_norm are both Lipschitz constraints; '
                      'use one')
  _check_dispatch(c)
  if c.ema_start > c.num_steps:
    raise ConfigError(f'config.ema_start: {c.ema_start} is after '
                      f'num_steps={c.num_steps}')


def _validate_vae(c, flat: dict[str, Any], num_devices: int | None) -> None:
  """A VAE config (``family='vae'``): image data, the DCGAN networks."""
  _check_field('family', flat['family'], VAE_FIELDS['family'])
  if 'dataset' in flat:
    _check_field('dataset', flat['dataset'], COMMON['dataset'])
    if data_kind(flat['dataset']) != 'image':
      raise ConfigError(f"config.dataset: the VAE needs an image dataset, got "
                        f"{flat['dataset']!r}; allowed: {list(IMAGE_DATASETS)}"
                        " or 'tfds:<name>'")
  _check_schema(c, flat)
  _check_devices(c, num_devices)
  if c.model.num_classes:
    _validate_conditional(c)
  _check_image_data(c)
  _check_dispatch(c)


def _validate_conditional(c) -> None:
  """A class-conditional image model (``model.num_classes > 0``)."""
  n = c.model.num_classes
  known = NUM_CLASSES.get(c.dataset)
  if known is not None and n != known:
    raise ConfigError(f'config.model.num_classes: dataset {c.dataset!r} has '
                      f'{known} classes, got num_classes={n} '
                      '(0: unconditional)')
  if c.model.get('packing', 1) > 1:
    raise ConfigError('config.model.packing: class-conditional models '
                      f'(model.num_classes={n}) do not support packing > 1')


def _validate_eval(c) -> None:
  metrics = parse_eval_metrics(c.eval.metrics)
  grey = c.dataset in ('mnist', 'fashion_mnist')
  for m in metrics:
    if m in _GREY_METRICS and not grey:
      raise ConfigError(f'config.eval.metrics: {m!r} uses the MNIST classifier '
                        f'on 1-channel images; dataset {c.dataset!r} is not '
                        'mnist/fashion_mnist')
    if m == 'stacked_modes' and c.dataset != 'stacked_mnist':
      raise ConfigError("config.eval.metrics: 'stacked_modes' needs "
                        f"dataset='stacked_mnist', got {c.dataset!r}")
  if c.eval.features == 'classifier' and {'pr', 'dc'} & set(metrics) and not (
      grey or c.dataset == 'stacked_mnist'):
    raise ConfigError("config.eval.features: 'classifier' space needs MNIST "
                      f'images; use inception for {c.dataset!r}')
  if c.eval.features == 'classifier' and c.dataset == 'stacked_mnist' and (
      {'pr', 'dc'} & set(metrics)):
    raise ConfigError("config.eval.features: 'classifier' space takes "
                      '1-channel images; use inception for stacked_mnist')
  needs_inception = {'fid', 'kid'} & set(metrics) or (
      c.eval.features == 'inception' and {'pr', 'dc'} & set(metrics))
  if needs_inception and not c.eval.inception_path:
    raise ConfigError('config.eval.inception_path: required by eval.metrics='
                      f'{c.eval.metrics!r} (the FID Inception weights .npz)')
  if metrics and c.eval_samples < 6:
    raise ConfigError(f'config.eval_samples: {c.eval_samples} is too few for '
                      f'eval.metrics={c.eval.metrics!r} (need >= 6)')


def diff(old: dict, new: dict) -> list[str]:
  """Fields (dotted) whose values differ between two flat configs."""
  keys = sorted(set(old) | set(new))
  return [k for k in keys if old.get(k, '<absent>') != new.get(k, '<absent>')]
