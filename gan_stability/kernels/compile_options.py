"""XLA:CPU compiler options: which kinds of ops the YNNPACK library runs.

XLA:CPU (jax 0.10) hands some operations to the YNNPACK library instead of
its own kernels (Eigen, for matmuls and convolutions). Which kinds go to
YNNPACK is the compile option ``xla_cpu_experimental_ynn_fusion_type``
(:data:`OPTION`): a comma-separated list of ``LIBRARY_FUSION_TYPE_<KIND>``
names. XLA's default is ``INDIVIDUAL_DOT, REDUCE, INDIVIDUAL_CONVOLUTION``
(read off the compiled HLO: with exactly that list the compiled programs are
the same as with no option; the ``__ynn_fusion`` ops disappear for each kind
left out).

A setting is a string (the ``cpu_ynn_fusions`` value, :func:`parse`):
``'xla'`` for XLA's default (no option), ``'none'``, a comma-separated
subset of :data:`KINDS`, or ``'auto'`` = :data:`AUTO`, only reductions in
YNNPACK: YNNPACK runs convolutions on one thread, and keeping only the
reductions there was the fastest setting in every train step timed on the
CPU (``docs/kernels.md``). Other backends get no option. Changing the
libraries changes float rounding only (the same operations, other kernels).

The option is experimental in XLA: when the installed jaxlib does not know
it, :func:`compiler_options` returns ``{}`` (XLA's behaviour) after checking
once with a trivial compilation.
"""

from __future__ import annotations

import functools
import logging

import jax

OPTION = 'xla_cpu_experimental_ynn_fusion_type'
# Kinds accepted in a setting (XLA's enum without its prefix).
KINDS = ('dot', 'individual_dot', 'individual_convolution', 'eltwise',
         'reduce')
AUTO = ('reduce',)
ALLOWED = "'auto', 'xla' (XLA's default), 'none' or a comma-separated subset of "


def parse(value: str) -> tuple[str, ...] | None:
  """A ``cpu_ynn_fusions`` setting -> the kinds kept in YNNPACK, or ``None``
  for XLA's default (``'xla'``). Raises ``ValueError`` naming the config
  field ``config.cpu_ynn_fusions``."""
  if not isinstance(value, str):
    raise ValueError(f'config.cpu_ynn_fusions: expected str, got {value!r}')
  v = value.strip().lower()
  if v == 'xla':
    return None
  if v == 'auto':
    return AUTO
  if v == 'none':
    return ()
  kinds = tuple(k.strip() for k in v.split(',') if k.strip())
  bad = [k for k in kinds if k not in KINDS]
  if bad or not kinds:
    raise ValueError(f'config.cpu_ynn_fusions: {value!r} is not allowed; '
                     f'allowed: {ALLOWED}{list(KINDS)}')
  return tuple(dict.fromkeys(kinds))


def option_value(kinds: tuple[str, ...]) -> str:
  """The XLA option string for ``kinds`` (``''`` for none)."""
  return ','.join(f'LIBRARY_FUSION_TYPE_{k.upper()}' for k in kinds)


@functools.cache
def _supported(value: str) -> bool:
  """Whether this jaxlib's CPU compiler accepts ``OPTION=value`` (compiles a
  trivial function once)."""
  try:
    jax.jit(lambda x: x + 1, compiler_options={OPTION: value}).lower(
        jax.ShapeDtypeStruct((), 'float32')).compile()
    return True
  except Exception as e:  # pylint: disable=broad-except
    logging.warning('XLA option %s=%r not accepted (%s); using XLA\'s default',
                    OPTION, value, str(e).splitlines()[0] if str(e) else e)
    return False


def compiler_options(cpu_ynn_fusions: str) -> dict[str, str]:
  """``compiler_options`` for ``jax.jit`` under the setting
  ``cpu_ynn_fusions`` (:func:`parse`): ``{}`` off the CPU backend, for
  ``'xla'`` and where this jaxlib does not know the option."""
  return _cpu_options(parse(cpu_ynn_fusions))


def _cpu_options(kinds: tuple[str, ...] | None) -> dict[str, str]:
  if kinds is None or jax.default_backend() != 'cpu':
    return {}
  value = option_value(kinds)
  return {OPTION: value} if _supported(value) else {}


def default_compiler_options() -> dict[str, str]:
  """``compiler_options`` of ``'auto'``, for jitted functions that have no
  setting of their own (the FID Inception network): ``{}`` off the CPU
  backend."""
  return _cpu_options(AUTO)
