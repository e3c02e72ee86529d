"""gan_stability: pure-functional JAX/Flax tools for GAN training-stability research.

Public modules: ``losses``, ``penalties`` (plain functions usable in any JAX
code), ``models``, ``data``, ``metrics``, ``train``, ``checkpoint``,
``config``.
"""

__version__ = '0.1.0'
