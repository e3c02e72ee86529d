"""Shared builder for the image configs (mnist.py, stacked_mnist.py, cifar10.py).

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
  recipe, conditional = split_variant(variant)
  if recipe not in VARIANTS:
    allowed = list(VARIANTS) + [v + COND_SUFFIX for v in VARIANTS]
    raise ValueError(f'config variant: unknown {variant!r}; allowed: {allowed}')
  num_classes = 0
  if conditional:
    if dataset not in config_lib.NUM_CLASSES:
      raise ValueError(f'config variant: {variant!r} is class-conditional, '
                       f'but the classes of {dataset!r} are unknown')
    num_classes = config_lib.NUM_CLASSES[dataset]
  c = ml_collections.ConfigDict()
  c.variant = variant
  c.seed = 0
  c.dataset = dataset
  c.data = ml_collections.ConfigDict(dict(
      source=source,       # idx: IDX files in data.dir; tfds: tfds.data_source
      dir=data_dir,        # IDX directory, or TFDS data_dir ('' = TFDS default)
      split='train',
      pad_to=pad_to,       # 0, or 32 to pad 28x28 images to 32x32
      stacked_num_examples=128_000,
      samples_per_row=8,
      download=False,      # let TFDS download/prepare a missing dataset
  ))
  c.model = ml_collections.ConfigDict(dict(
      name=model, z_dim=z_dim, g_width=g_width, d_width=d_width,
      g_norm='batch', d_norm='none', spectral_norm=False, sn_steps=1,
      packing=1,
      conv_impl='auto',  # auto | native | fast | fast_matmul (exact; fast_conv.py)
      num_classes=num_classes,  # 0: unconditional; K: labels 0..K-1
  ))
  c.eval = ml_collections.ConfigDict(dict(
      metrics=_DEFAULT_METRICS.get(dataset, ''),  # see gan_stability/evaluation.py
      features='classifier',  # space of pr/dc: classifier | inception
      classifier_path='',     # '' = the packaged MNIST classifier
      inception_path='',      # FID Inception .npz (fid/kid/inception space)
      num_real=10_000,        # real images for FID statistics and pr/dc
      cache_dir='',           # '' = <workdir>/eval_cache
  ))
  recipes.set_training_fields(
      c, batch_size=64, num_steps=100_000, steps_per_dispatch=1,
      log_every=100, eval_every=1000, eval_samples=64, checkpoint_every=1000)

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
