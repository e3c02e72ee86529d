"""XLA compiler options of the compiled train steps (``config.cpu_ynn_fusions``).

XLA:CPU (jax 0.10) hands some operations to the YNNPACK library instead of
its own kernels (Eigen, for matmuls and convolutions). Which kinds go to
YNNPACK is the compile option ``xla_cpu_experimental_ynn_fusion_type``: a
comma-separated list of ``LIBRARY_FUSION_TYPE_<KIND>`` names. XLA's default
is ``INDIVIDUAL_DOT, REDUCE, INDIVIDUAL_CONVOLUTION`` (read off the compiled
HLO: with exactly that list the compiled train steps are the same as with no
option; the ``__ynn_fusion`` ops disappear for each kind left out).

On the 2-core CPU (jax 0.10.2; one process, the default and the chosen
option compiled side by side, median of 20-40 steps per variant) YNNPACK
runs the convolutions on one thread (the same time pinned to one core), and
keeping only ``REDUCE`` in YNNPACK is fastest in every train step measured:

=================  ==========  ===========  ======================
step               XLA default  ``reduce``   no YNNPACK (``none``)
=================  ==========  ===========  ======================
MoG vanilla         2.50 ms      1.99 ms      2.09 ms
MoG SN-GAN          7.90 ms      6.03 ms
DCGAN-28 vanilla    95.0 ms      83.8 ms      91.0 ms
DCGAN-28 WGAN-GP   387 ms       351 ms
DCGAN-28 SN-GAN    267 ms       237 ms
=================  ==========  ===========  ======================

(``dot, reduce`` for DCGAN-28 vanilla: no faster than the default; adding
``eltwise``: 116 ms.) ``'auto'`` is therefore ``'reduce'`` on the CPU
backend; other backends get no option. Changing the libraries changes float
rounding only (the same operations, other kernels); a run keeps its setting
when resumed, so resumption stays exact.

The option is experimental in XLA: when the installed jaxlib does not know
it, :func:`step_compiler_options` returns ``{}`` (XLA's behaviour) after
checking once with a trivial compilation.
"""

from __future__ import annotations

import functools
import logging

import jax

OPTION = 'xla_cpu_experimental_ynn_fusion_type'
# Kinds accepted in ``config.cpu_ynn_fusions`` (XLA's enum without its prefix).
KINDS = ('dot', 'individual_dot', 'individual_convolution', 'eltwise',
         'reduce')
AUTO = ('reduce',)
ALLOWED = "'auto', 'xla' (XLA's default), 'none' or a comma-separated subset of "


def parse(value: str) -> tuple[str, ...] | None:
  """``config.cpu_ynn_fusions`` -> the kinds kept in YNNPACK, or ``None``
  for XLA's default (``'xla'``). Raises ``ValueError`` naming the field."""
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


def step_compiler_options(config) -> dict[str, str]:
  """``compiler_options`` for ``jax.jit`` of a train step under ``config``:
  ``{}`` off the CPU backend, for ``'xla'`` and where the option is unknown."""
  return _cpu_options(parse(config.get('cpu_ynn_fusions', 'xla')))


def _cpu_options(kinds: tuple[str, ...] | None) -> dict[str, str]:
  if kinds is None or jax.default_backend() != 'cpu':
    return {}
  value = option_value(kinds)
  return {OPTION: value} if _supported(value) else {}


def default_compiler_options() -> dict[str, str]:
  """``compiler_options`` of ``'auto'`` for jitted functions outside the
  train steps (the FID Inception network): ``{}`` off the CPU backend."""
  return _cpu_options(AUTO)
