"""Sweep specs: a base config, fixed overrides and axes combined by product / zip.

A sweep file is Python, like a config file: it defines
``get_sweep(arg=None) -> Sweep`` (``--sweep=path.py:arg`` passes ``arg``)::

  from gan_stability.sweep import spec as sw

  def get_sweep(arg=None):
    return sw.Sweep(
        base='experiments/configs/mog.py:nonsaturating',
        overrides={'num_steps': 2000, 'write_tensorboard': False},
        axes=sw.product(
            sw.axis('loss', ['nonsaturating', 'hinge', 'wasserstein']),
            sw.zip(sw.axis('penalty', ['none', 'gp', 'r1']),
                   sw.axis('penalty_weight', [0.0, 0.1, 0.1])),
            sw.axis('model.spectral_norm', [False, True]),
            sw.axis('seed', range(5))),
        seeds_in_one_program=True)

Axis fields are the config's own dotted field names (``loss``, ``penalty``,
``model.spectral_norm``, ``optimizer.d_lr``, ``n_critic``, ``seed``, ...).
:func:`expand` turns a sweep into its points, in a deterministic order (the
last axis of a product varies fastest), and validates every point's config
with :func:`gan_stability.config.validate` before anything is compiled; an
error names the axis (or override) that set the offending field.

The axis ``variant`` is special: its values are variants of the base config
file (``get_config(variant)``), so a sweep can compare whole recipes
(``sw.axis('variant', ['nonsaturating', 'wgan_gp', 'sngan'])``); each point
starts from its variant's config, then the overrides and the other axes are
applied.

A point's name lists its axis values in axis order, e.g.
``loss=hinge,penalty=r1,penalty_weight=0.1,seed=3``; it is the point's run
directory. Its *group* is the same without the ``seed`` axis: the points of a
group differ only in their seed, are aggregated over seeds by the report, and
run as one vmapped program when ``seeds_in_one_program`` is set.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import hashlib
import importlib.util
import itertools
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from gan_stability import config as config_lib

SEED = 'seed'
VARIANT = 'variant'
MAX_NAME_LEN = 150
_ZIP = builtins.zip


class SweepError(ValueError):
  """An invalid sweep spec; the message names the axis or override."""


# ---------------------------------------------------------------- axes ----

@dataclasses.dataclass(frozen=True)
class Axis:
  """One config field and the values it takes."""
  field: str
  values: tuple

  def fields(self) -> list[str]:
    return [self.field]

  def assignments(self) -> list[tuple[tuple[str, Any], ...]]:
    return [((self.field, v),) for v in self.values]


@dataclasses.dataclass(frozen=True)
class Product:
  """Every combination of its children's assignments (last varies fastest)."""
  children: tuple

  def fields(self) -> list[str]:
    return [f for c in self.children for f in c.fields()]

  def assignments(self):
    parts = [c.assignments() for c in self.children]
    return [tuple(kv for part in combo for kv in part)
            for combo in itertools.product(*parts)]


@dataclasses.dataclass(frozen=True)
class Zip:
  """Its children's assignments side by side; all must have the same length."""
  children: tuple

  def fields(self) -> list[str]:
    return [f for c in self.children for f in c.fields()]

  def assignments(self):
    parts = [c.assignments() for c in self.children]
    lengths = {len(p) for p in parts}
    if len(lengths) > 1:
      desc = ', '.join(f'{"+".join(c.fields())}: {len(p)}'
                       for c, p in _ZIP(self.children, parts))
      raise SweepError(f'sweep zip of axes {self.fields()}: the axes have '
                       f'different lengths ({desc})')
    return [tuple(kv for part in combo for kv in part)
            for combo in _ZIP(*parts)]


def _plain(value: Any) -> Any:
  """numpy scalars -> Python scalars (configs and JSON want plain values)."""
  item = getattr(value, 'item', None)
  if item is not None and getattr(value, 'shape', None) == ():
    return item()
  return value


def axis(field: str, values: Iterable[Any]) -> Axis:
  """An axis over the config field ``field`` (dotted, e.g. ``model.spectral_norm``)."""
  if not isinstance(field, str) or not field:
    raise SweepError(f'sweep axis {field!r}: the field must be a non-empty '
                     'dotted config field name')
  values = tuple(_plain(v) for v in values)
  if not values:
    raise SweepError(f'sweep axis {field!r}: no values')
  return Axis(field, values)


def product(*axes) -> Product:
  """The Cartesian product of axes (or of nested products / zips)."""
  return Product(tuple(axes))


def zip(*axes) -> Zip:  # pylint: disable=redefined-builtin
  """Axes varied together: point ``i`` takes value ``i`` of every axis."""
  return Zip(tuple(axes))


# --------------------------------------------------------------- sweeps ----

@dataclasses.dataclass(frozen=True)
class Sweep:
  """A sweep: ``base`` config (``path.py:variant``), fixed ``overrides``
  applied to it, and ``axes`` (an :func:`axis`, :func:`product` or
  :func:`zip`). ``seeds_in_one_program`` runs the seeds of each group as one
  vmapped program (for small models)."""
  base: str
  axes: Any
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  seeds_in_one_program: bool = False
  description: str = ''


@dataclasses.dataclass
class Point:
  """One run of a sweep.

  Attributes:
    name: run-directory name built from ``values``.
    group: ``name`` without the seed (the configuration the seeds repeat).
    values: the axis values of this point, in axis order.
    config: the full, validated training config.
  """
  name: str
  group: str
  values: dict
  config: Any

  @property
  def seed(self) -> int:
    return int(self.config.seed)


@dataclasses.dataclass
class Unit:
  """What one worker runs: one point, or a group's seeds in one program."""
  name: str
  points: list

  @property
  def vmapped(self) -> bool:
    return len(self.points) > 1


def format_value(value: Any) -> str:
  """Deterministic, readable text of an axis value (floats by ``repr``)."""
  if isinstance(value, float):
    return repr(value)
  return str(value)


def sanitise(text: str) -> str:
  """Keeps ``[A-Za-z0-9._+=,-]``, maps anything else to ``_``; overlong names
  are cut and get a short hash of the full text, so they stay unique."""
  safe = re.sub(r'[^A-Za-z0-9._+=,\-]', '_', text)
  if safe in ('', '.', '..'):
    safe = safe.replace('.', '_') or 'base'
  if len(safe) > MAX_NAME_LEN:
    digest = hashlib.sha1(text.encode()).hexdigest()[:10]
    safe = safe[:MAX_NAME_LEN - 11] + '~' + digest
  return safe


def point_name(values: Mapping[str, Any], *, skip_seed: bool = False) -> str:
  """``field=value,...`` in axis order, sanitised; ``base`` when empty."""
  parts = [f'{k}={format_value(v)}' for k, v in values.items()
           if not (skip_seed and k == SEED)]
  return sanitise(','.join(parts)) if parts else 'base'


def _load_module(path: str, what: str):
  candidates = [path]
  if not os.path.isabs(path):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    candidates.append(os.path.join(repo, path))
  for candidate in candidates:
    if os.path.isfile(candidate):
      name = '_gan_stability_' + re.sub(r'\W', '_', os.path.abspath(candidate))
      module_spec = importlib.util.spec_from_file_location(name, candidate)
      module = importlib.util.module_from_spec(module_spec)
      module_spec.loader.exec_module(module)
      return module
  raise SweepError(f'{what}: file {path!r} not found')


def _split_arg(text: str) -> tuple[str, str | None]:
  path, sep, arg = text.partition(':')
  return path, (arg if sep else None)


def load_config(base: str):
  """The ConfigDict of ``path.py[:variant]`` (its ``get_config(variant)``)."""
  path, variant = _split_arg(base)
  module = _load_module(path, 'sweep.base')
  if not hasattr(module, 'get_config'):
    raise SweepError(f'sweep.base: {path!r} has no get_config()')
  try:
    return (module.get_config(variant) if variant is not None
            else module.get_config())
  except ValueError as e:
    raise SweepError(f'sweep.base: {base!r}: {e}') from e


def config_from_args(args: Sequence[str]):
  """The config of a command line's ``--config=FILE.py:VARIANT`` and
  ``--config.field=value`` arguments (``experiments.train``'s), each value
  read as an ``--override`` is (:func:`parse_override`)."""
  config = None
  for arg in args:
    if arg.startswith('--config='):
      config = load_config(arg[len('--config='):])
    elif config is None or not arg.startswith('--config.'):
      raise SweepError(f'{arg}: expected --config=FILE.py:VARIANT first, '
                       'then --config.field=value')
    else:
      field, value = parse_override(arg[len('--config.'):])
      set_field(config, field, value, arg)
  return config


def load_sweep(text: str) -> Sweep:
  """The :class:`Sweep` of ``path.py[:arg]`` (its ``get_sweep(arg)``)."""
  path, arg = _split_arg(text)
  module = _load_module(path, '--sweep')
  if not hasattr(module, 'get_sweep'):
    raise SweepError(f'--sweep: {path!r} has no get_sweep()')
  try:
    sweep = module.get_sweep(arg) if arg is not None else module.get_sweep()
  except SweepError:
    raise
  except ValueError as e:  # e.g. an unknown variant after the colon
    raise SweepError(f'--sweep={text}: {e}') from e
  if not isinstance(sweep, Sweep):
    raise SweepError(f'--sweep: {path}: get_sweep() must return a '
                     f'gan_stability.sweep.spec.Sweep, got {type(sweep).__name__}')
  return sweep


def _check_known(known: Iterable[str], field: str, source: str) -> None:
  known = sorted(known)
  if field not in known:
    close = difflib.get_close_matches(field, known, n=3)
    hint = f'; did you mean {close}?' if close else ''
    raise SweepError(f'{source}: config has no field {field!r}{hint} '
                     f'(known fields: {known})')


def set_field(config, field: str, value: Any, source: str) -> None:
  """``config.<field> = value``; ``source`` names the axis/override in errors."""
  _check_known(config_lib.flatten(config), field, source)
  node = config
  *parents, leaf = field.split('.')
  for p in parents:
    node = node[p]
  try:
    node[leaf] = _plain(value)
  except (TypeError, ValueError) as e:
    raise SweepError(f'{source}: cannot set config.{field} = {value!r}: '
                     f'{e}') from e


def _blame(message: str, name: str, values: Mapping[str, Any],
           overrides: Mapping[str, Any]) -> str:
  """The error of a point's ConfigError, naming the axis or override that set
  the field it names (or saying that neither did)."""
  m = re.match(r'config\.([\w.]+)', message)
  field = m.group(1) if m else ''
  if field in values:
    return f'sweep axis {field!r} (point {name}): {message}'
  if field in overrides:
    return f'sweep override {field!r} (point {name}): {message}'
  return (f'sweep axes {list(values)} (point {name}): {message} [config.'
          f'{field} comes from the base config: set it with an axis, a zip '
          'or an override]')


def expand(sweep: Sweep, extra_overrides: Mapping[str, Any] | None = None,
           *, num_devices: int | None = None) -> list[Point]:
  """All points of ``sweep``, each with its validated config.

  Args:
    sweep: the spec.
    extra_overrides: applied after ``sweep.overrides`` (e.g. from the
      command line's ``--override``).
    num_devices: passed to :func:`gan_stability.config.validate`.

  Raises:
    SweepError: naming the axis / override: an unknown field, a value of the
      wrong type, a config the schema rejects, clashing axes or names.
  """
  overrides = {**dict(sweep.overrides), **dict(extra_overrides or {})}
  bases = {}

  def base_config(variant=None):
    """The base config (of ``variant``, if given) with the overrides."""
    if variant not in bases:
      text = sweep.base
      if variant is not None:
        text = f'{_split_arg(sweep.base)[0]}:{variant}'
      try:
        config = load_config(text)
      except SweepError as e:
        if variant is None:
          raise
        raise SweepError(f'sweep axis {VARIANT!r}: value {variant!r}: {e}') from e
      for field, value in overrides.items():
        set_field(config, field, value, f'sweep override {field!r}')
      bases[variant] = config
    return bases[variant]

  base = base_config()
  if sweep.axes is None:
    raise SweepError('sweep.axes: missing (use axis / product / zip)')
  fields = sweep.axes.fields()
  dup = sorted({f for f in fields if fields.count(f) > 1})
  if dup:
    raise SweepError(f'sweep axis {dup[0]!r}: appears in more than one axis')
  known = config_lib.flatten(base)
  for field in fields:  # unknown fields, before any point is built
    _check_known(known, field, f'sweep axis {field!r}')

  points, names = [], {}
  for assignment in sweep.axes.assignments():
    values = dict(assignment)
    start = base_config(values[VARIANT]) if VARIANT in values else base
    config = start.copy_and_resolve_references()
    for field, value in assignment:
      if field != VARIANT:
        set_field(config, field, value, f'sweep axis {field!r}')
    name = point_name(values)
    try:
      config_lib.validate(config, num_devices=num_devices)
    except config_lib.ConfigError as e:
      raise SweepError(_blame(str(e), name, values, overrides)) from e
    if name in names:
      raise SweepError(f'sweep points {names[name]} and {values} have the '
                       f'same run-directory name {name!r}')
    names[name] = values
    points.append(Point(name=name, group=point_name(values, skip_seed=True),
                        values=values, config=config))
  return points


def units(sweep: Sweep, points: Sequence[Point]) -> list[Unit]:
  """Work units: one per point, or one per group with ``seeds_in_one_program``."""
  if not sweep.seeds_in_one_program:
    return [Unit(p.name, [p]) for p in points]
  groups: dict[str, list[Point]] = {}
  for p in points:
    groups.setdefault(p.group, []).append(p)
  return [Unit(g, ps) for g, ps in groups.items()]


def parse_shard(text: str | None) -> tuple[int, int]:
  """``'i/n'`` -> ``(i, n)`` with ``0 <= i < n``; ``None`` -> ``(0, 1)``."""
  if not text:
    return 0, 1
  m = re.fullmatch(r'\s*(\d+)\s*/\s*(\d+)\s*', text)
  if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
    raise SweepError(f'--shard: expected i/n with 0 <= i < n, got {text!r}')
  return int(m.group(1)), int(m.group(2))


def shard(items: Sequence[Any], index: int, count: int) -> list[Any]:
  """Items ``index, index + count, ...``: the shards partition ``items``."""
  return list(items[index::count])


def parse_override(text: str) -> tuple[str, Any]:
  """``'field=value'`` -> ``(field, value)``; the value is a Python literal
  when it parses as one (``1e-4``, ``True``, ``'x'``), else the string."""
  import ast  # pylint: disable=g-import-not-at-top
  field, sep, raw = text.partition('=')
  if not sep or not field:
    raise SweepError(f'--override: expected field=value, got {text!r}')
  try:
    value = ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    value = raw
  return field.strip(), value
