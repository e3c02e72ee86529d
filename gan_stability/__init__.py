"""gan_stability: pure-functional JAX/Flax tools for GAN training-stability research.

Public modules: ``losses``, ``penalties``, ``optimizers`` (plain functions
and their registries, usable in any JAX code), ``metrics`` (plain metric
functions), ``models``, ``data``, ``kernels`` (the CPU convolution forms),
``config`` (the schema), ``eval`` (evaluators and the metric registry),
``train`` (the loop, its tasks and the workdir contract), ``sweep``,
``checkpoint``. Layout: ``docs/architecture.md``.
"""

__version__ = '0.2.0.dev0'
