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

:func:`cases` is one axis whose points each set several fields, named by a
label (``sw.cases('stabiliser', {'baseline': {}, 'r1': {'penalty': 'r1',
'penalty_weight': 0.1}})``): rows of an ablation that each change a
different set of fields, the rest staying at the base config's values. Its
name is the axis in point names and reports (``stabiliser=r1``).

A point's name lists its axis values in axis order, e.g.
``loss=hinge,penalty=r1,penalty_weight=0.1,seed=3``; it is the point's run
directory. Its *group* is the same without the ``seed`` axis: the points of a
group differ only in their seed, are aggregated over seeds by the report, and
run as one vmapped program when ``seeds_in_one_program`` is set.

An axis over a *vmappable* field (``Field.vmappable`` in
:mod:`gan_stability.config.schema`: a number that changes no shape, e.g.
``penalty_weight``, ``optimizer.d_lr``, ``ema_decay``) may run in one
program too: ``sw.axis('penalty_weight', [0.01, 0.1, 1], in_one_program=True)``.
The points that differ only in such axes (and in their seed, with
``seeds_in_one_program``) are one work unit (:func:`units`), trained as one
vmapped program (:func:`gan_stability.train.seeds.train_points`); each
point keeps its own name, group, run directory and report rows, as if run
alone. An ``in_one_program`` axis over any other field is an error of
:func:`expand`, before anything compiles (docs/sweeps.md).
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
from gan_stability.config import schema as config_schema

SEED = 'seed'
VARIANT = 'variant'
MAX_NAME_LEN = 150
_ZIP = builtins.zip


class SweepError(ValueError):
  """An invalid sweep spec; the message names the axis or override."""


# ---------------------------------------------------------------- axes ----

@dataclasses.dataclass(frozen=True)
class Axis:
  """One config field and the values it takes; ``in_one_program``: its
  points run as one vmapped program (a vmappable field)."""
  field: str
  values: tuple
  in_one_program: bool = False

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


@dataclasses.dataclass(frozen=True)
class Cases:
  """One axis ``name`` whose values are labels, each setting several config
  fields (:func:`cases`)."""
  name: str
  cases: tuple  # ((label, ((field, value), ...)), ...)

  def fields(self) -> list[str]:
    return [self.name]

  def assignments(self):
    return [((self.name, label),) for label, _ in self.cases]

  def settings(self, label: str) -> tuple:
    """``((field, value), ...)`` of case ``label``."""
    return dict(self.cases)[label]

  def config_fields(self) -> list[str]:
    """The config fields any case sets (first appearance order)."""
    out = []
    for _, kvs in self.cases:
      out += [f for f, _ in kvs if f not in out]
    return out


def _plain(value: Any) -> Any:
  """numpy scalars -> Python scalars (configs and JSON want plain values)."""
  item = getattr(value, 'item', None)
  if item is not None and getattr(value, 'shape', None) == ():
    return item()
  return value


def axis(field: str, values: Iterable[Any], *,
         in_one_program: bool = False) -> Axis:
  """An axis over the config field ``field`` (dotted, e.g.
  ``model.spectral_norm``). ``in_one_program=True``: the points that differ
  only in such axes (and their seed, with ``seeds_in_one_program``) run as
  one vmapped program; ``field`` must be vmappable (the schema's
  ``Field.vmappable``: :func:`expand` says which are)."""
  if not isinstance(field, str) or not field:
    raise SweepError(f'sweep axis {field!r}: the field must be a non-empty '
                     'dotted config field name')
  values = tuple(_plain(v) for v in values)
  if not values:
    raise SweepError(f'sweep axis {field!r}: no values')
  if in_one_program and field == SEED:
    raise SweepError(f"sweep axis {SEED!r}: in_one_program=True: use the "
                     'sweep\'s seeds_in_one_program=True')
  return Axis(field, values, bool(in_one_program))


def cases(name: str, table: Mapping[str, Mapping[str, Any]]) -> Cases:
  """One axis ``name`` over the labels of ``table`` (in its order): case
  ``label`` sets the fields of ``table[label]`` (dotted names to values; an
  empty dict keeps the base config), the others keep the base config's
  values. ``name`` labels the axis in point names (``name=label``) and
  reports; it must not be a config field, ``seed`` or ``variant``, and the
  cases may not set ``seed`` or ``variant``."""
  if not isinstance(name, str) or not re.fullmatch(r'[A-Za-z_][\w.]*', name):
    raise SweepError(f'sweep cases {name!r}: the name must be a non-empty '
                     'identifier')
  if name in (SEED, VARIANT):
    raise SweepError(f'sweep cases {name!r}: {name!r} is reserved for its '
                     'own axis')
  if not table:
    raise SweepError(f'sweep cases {name!r}: no cases')
  out = []
  for label, fields in table.items():
    if not isinstance(label, str) or not label:
      raise SweepError(f'sweep cases {name!r}: case {label!r}: labels must '
                       'be non-empty strings')
    if not isinstance(fields, Mapping):
      raise SweepError(f'sweep cases {name!r}: case {label!r}: expected a '
                       f'dict of fields, got {type(fields).__name__}')
    bad = sorted(set(fields) & {SEED, VARIANT})
    if bad:
      raise SweepError(f'sweep cases {name!r}: case {label!r} sets {bad[0]!r}'
                       '; use its own axis')
    out.append((label, tuple((f, _plain(v)) for f, v in fields.items())))
  return Cases(name, tuple(out))


def _leaves(node) -> list:
  """The axes and cases of a tree of products and zips."""
  children = getattr(node, 'children', None)
  if children is None:
    return [node]
  return [leaf for c in children for leaf in _leaves(c)]


def in_one_program_fields(sweep) -> list[str]:
  """The fields of ``sweep``'s axes marked ``in_one_program``, in axis
  order."""
  if sweep.axes is None:
    return []
  return [a.field for a in _leaves(sweep.axes)
          if isinstance(a, Axis) and a.in_one_program]


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
  vmapped program (for small models); axes with ``in_one_program=True``
  join their points to it too."""
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
  """What one worker runs: one point, or the points of one program (a
  group's seeds, and the values of the ``in_one_program`` axes)."""
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
           overrides: Mapping[str, Any],
           by_case: Mapping[str, str] | None = None) -> str:
  """The error of a point's ConfigError, naming the axis, case or override
  that set the field it names (or saying that none did)."""
  m = re.match(r'config\.([\w.]+)', message)
  field = m.group(1) if m else ''
  if by_case and field in by_case:
    return f'{by_case[field]} (point {name}): {message}'
  if field in values:
    return f'sweep axis {field!r} (point {name}): {message}'
  if field in overrides:
    return f'sweep override {field!r} (point {name}): {message}'
  return (f'sweep axes {list(values)} (point {name}): {message} [config.'
          f'{field} comes from the base config: set it with an axis, a zip, '
          'a case or an override]')


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
  case_axes = {c.name: c for c in _leaves(sweep.axes) if isinstance(c, Cases)}
  for field in fields:  # unknown fields, before any point is built
    if field not in case_axes:
      _check_known(known, field, f'sweep axis {field!r}')
      continue
    if field in known:
      raise SweepError(f'sweep cases {field!r}: the name is a config field; '
                       'name the cases something else')
    for f in case_axes[field].config_fields():
      _check_known(known, f, f'sweep cases {field!r}')
      if f in fields:
        raise SweepError(f'sweep cases {field!r}: field {f!r} is also an axis')
      other = [c for c in case_axes if c != field and
               f in case_axes[c].config_fields()]
      if other:
        raise SweepError(f'sweep cases {field!r}: field {f!r} is also set by '
                         f'cases {other[0]!r}')

  _check_in_one_program(sweep, base)

  points, names = [], {}
  for assignment in sweep.axes.assignments():
    values = dict(assignment)
    start = base_config(values[VARIANT]) if VARIANT in values else base
    config = start.copy_and_resolve_references()
    by_case = {}
    for field, value in assignment:
      if field in case_axes:
        source = f'sweep cases {field!r} case {value!r}'
        for f, v in case_axes[field].settings(value):
          set_field(config, f, v, source)
          by_case[f] = source
      elif field != VARIANT:
        set_field(config, field, value, f'sweep axis {field!r}')
    name = point_name(values)
    try:
      config_lib.validate(config, num_devices=num_devices)
    except config_lib.ConfigError as e:
      raise SweepError(_blame(str(e), name, values, overrides,
                              by_case)) from e
    if VARIANT in values:  # another recipe: check its schema too
      _check_in_one_program(sweep, config, f' (point {name})')
    if name in names:
      raise SweepError(f'sweep points {names[name]} and {values} have the '
                       f'same run-directory name {name!r}')
    names[name] = values
    points.append(Point(name=name, group=point_name(values, skip_seed=True),
                        values=values, config=config))
  return points


def _check_in_one_program(sweep: Sweep, config, where: str = '') -> None:
  """Every ``in_one_program`` axis is over a field that ``config``'s schema
  marks vmappable."""
  fields = in_one_program_fields(sweep)
  if not fields:
    return
  allowed = config_schema.vmappable_fields(config)
  for field in fields:
    if field not in allowed:
      raise SweepError(
          f'sweep axis {field!r}{where}: in_one_program=True needs a '
          'vmappable field, a number that changes no shape and no structure '
          f'of the train step; {field!r} is not one. The vmappable fields: '
          f'{allowed or "none (this family)"}')


def unit_key(sweep: Sweep, point: Point) -> str:
  """The name of ``point``'s unit: its name without the axes that run in
  one program (the seed with ``seeds_in_one_program``, the
  ``in_one_program`` axes)."""
  skip = set(in_one_program_fields(sweep))
  if sweep.seeds_in_one_program:
    skip.add(SEED)
  return point_name({k: v for k, v in point.values.items() if k not in skip})


def units(sweep: Sweep, points: Sequence[Point]) -> list[Unit]:
  """Work units: one per point, or one per program: the points that differ
  only in their seed (``seeds_in_one_program``) and in the
  ``in_one_program`` axes."""
  if not sweep.seeds_in_one_program and not in_one_program_fields(sweep):
    return [Unit(p.name, [p]) for p in points]
  groups: dict[str, list[Point]] = {}
  for p in points:
    groups.setdefault(unit_key(sweep, p), []).append(p)
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
