"""Shared builder for the image configs (mnist.py, stacked_mnist.py, cifar10.py,
folder.py).

Each recipe below is the published one; the per-dataset files choose the
architecture and data. ``smoke`` shrinks everything so a few steps run on a
CPU in seconds.

Every variant has a class-conditional twin ``<variant>_cond`` (e.g.
``sngan_cond``, ``wgan_gp_cond``, ``smoke_cond``): the same recipe with
``model.num_classes`` set to the dataset's classes (10 for MNIST,
Fashion-MNIST and CIFAR-10, 1,000 for Stacked MNIST), i.e. a generator fed
the label embedding and a projection discriminator (Miyato & Koyama 2018;
``gan_stability/models/conditional.py``).
"""

from __future__ import annotations

import ml_collections

from experiments.configs import recipes
from gan_stability import config as config_lib
from gan_stability import data as data_lib

VARIANTS = ('vanilla', 'nonsaturating', 'wgan_gp', 'sngan', 'hinge_r1', 'smoke')  # recipes: recipes.py
COND_SUFFIX = '_cond'


def split_variant(variant: str) -> tuple[str, bool]:
  """``'sngan_cond'`` -> ``('sngan', True)``; ``'sngan'`` ->
  ``('sngan', False)``."""
  if variant.endswith(COND_SUFFIX):
    return variant[:-len(COND_SUFFIX)], True
  return variant, False

# Metrics evaluated at every eval step by default (cheap ones; FID/KID on
# Inception features need ``eval.inception_path`` and many samples).
_DEFAULT_METRICS = {'mnist': 'digits,cfid', 'stacked_mnist': 'stacked_modes'}


def base(*, variant: str, dataset: str, model: str, z_dim: int, g_width: int,
         d_width: int, data_dir: str = '', source: str = 'idx',
         pad_to: int = 0) -> ml_collections.ConfigDict:
  """The image config of ``variant`` on ``dataset`` with ``model`` (the
  schema's defaults for the rest: batch 64, 100,000 generator updates, ...)."""
  recipe, conditional = split_variant(variant)
  if recipe not in VARIANTS:
    allowed = list(VARIANTS) + [v + COND_SUFFIX for v in VARIANTS]
    raise ValueError(f'config variant: unknown {variant!r}; allowed: {allowed}')
  num_classes = 0
  if conditional:
    info = data_lib.dataset_info(dataset)
    num_classes = info.num_classes if info is not None else 0
    if not num_classes:
      raise ValueError(f'config variant: {variant!r} is class-conditional, '
                       f'but the classes of {dataset!r} are unknown')
  c = config_lib.defaults(model=model, dataset=dataset)
  c.variant = variant
  c.data.update(source=source, dir=data_dir, pad_to=pad_to)
  c.model.update(z_dim=z_dim, g_width=g_width, d_width=d_width,
                 num_classes=num_classes)
  c.eval.metrics = _DEFAULT_METRICS.get(dataset, '')

  if recipe in recipes.RECIPES:
    recipes.apply(c, recipe)
    if recipe in ('vanilla', 'nonsaturating'):
      c.model.d_norm = 'batch'  # DCGAN: batch norm in G and D
  elif recipe == 'smoke':
    c.model.update(g_width=8, d_width=8, z_dim=16)
    c.batch_size = 8
    c.num_steps = 2
    c.steps_per_dispatch = 1
    c.log_every = c.eval_every = c.checkpoint_every = 1
    c.eval_samples = 4
    c.eval.metrics = ''
    c.data.samples_per_row = 2
    c.data.stacked_num_examples = 256
  if 0 < num_classes <= 16 and recipe != 'smoke':
    # The conditional sample grid: row k shows class k (the grid labels of
    # gan_stability/train/step.py), K x K samples, so that the evaluation
    # samples hold every class equally often.
    c.data.samples_per_row = num_classes
    c.eval_samples = num_classes * num_classes
  return c
