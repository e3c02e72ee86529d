"""gan_stability: pure-functional JAX/Flax tools for GAN training-stability research.

Public modules: ``losses``, ``penalties``, ``optimizers`` (plain functions
and their registries, usable in any JAX code), ``metrics`` (plain metric
functions), ``models``, ``data``, ``kernels`` (the CPU convolution forms),
``config`` (the schema), ``eval`` (evaluators and the metric registry),
``train`` (the loop, its tasks and the workdir contract), ``sweep``,
``checkpoint``, ``trained`` (load a run or a shipped generator and sample:
:func:`load`). Layout: ``docs/architecture.md``.
"""

__version__ = '0.2.0.dev0'


def load(path, *, step=None):
  """A trained model: a run directory, an exported model or a shipped
  generator's name (``gan_stability.trained.load``; e.g.
  ``gan_stability.load('mnist_wgan_gp').sample(16)``)."""
  from gan_stability import trained  # pylint: disable=g-import-not-at-top
  return trained.load(path, step=step)
