"""2-D mixture-of-Gaussians configs (ring of 8, 5x5 grid).

Launch: ``python -m experiments.train --config=experiments/configs/mog.py:VARIANT
--workdir=DIR [--config.dataset=grid] [--config.x=y ...]``.

Variants (each the recipe of its paper, on an MLP sized for CPU):

* ``vanilla`` - minimax GAN with the saturating G loss (Goodfellow et al.
  2014, eq. 1), Adam(2e-4, beta1=0.5) as in DCGAN (Radford et al. 2016).
* ``nonsaturating`` - the same with the non-saturating G loss (Goodfellow et
  al. 2014, sec. 3).
* ``wgan_gp`` - Wasserstein loss + two-sided gradient penalty, lambda = 10,
  n_critic = 5, Adam(1e-4, beta1=0, beta2=0.9) (Gulrajani et al. 2017,
  Algorithm 1).
* ``wgan_gp_toy`` - WGAN-GP as the authors ran it on 2-D toy data in their
  released code (``gan_toy.py``): lambda = 0.1, n_critic = 5,
  Adam(1e-4, 0.5, 0.9). With radius-1 data a unit-gradient critic at
  lambda = 10 is a strong constraint; the quickstart reports both.
* ``sngan`` - spectrally normalised D (one power iteration per D update),
  non-saturating loss, n_critic = 5, Adam(1e-4, beta1=0.5, beta2=0.9)
  (Miyato et al. 2018, Table 1, setting A).
* ``hinge_r1`` - hinge loss + R1 (Mescheder et al. 2018), n_critic 1,
  Adam(1e-4, 0.5, 0.9), with gamma = 0.2 (``penalty_weight`` 0.1) instead of
  the image value 10: the mixtures' modes have sigma 0.01-0.05, and the
  ``docs/ablations/mog_grid`` sweep ran hinge + R1 at this weight (all 8 ring
  modes in 5/5 seeds).
* ``smoke`` - a few steps of ``nonsaturating`` for tests.

``num_steps`` counts generator updates; each is preceded by ``n_critic``
discriminator updates, each on a fresh real batch.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import recipes
from gan_stability import config as config_lib

# The quick start's CPU budget (experiments/quickstart.py), also that of the
# sensitivity ablation (experiments/ablations/sensitivity.py): 3,000 generator
# updates of MLPs 3 x 64 at batch 64 and a learning rate of 1e-3 (the papers'
# 1e-4 needs ~10x the steps); losses, penalties, n_critic and Adam betas stay
# the recipes'. Dotted keys are config fields.
CPU_BUDGET = {
    'num_steps': 3000, 'batch_size': 64, 'steps_per_dispatch': 100,
    'optimizer.g_lr': 1e-3, 'optimizer.d_lr': 1e-3,
    'log_every': 500, 'eval_every': 1500, 'checkpoint_every': 1500,
    'model.g_hidden': 64, 'model.d_hidden': 64,
    'write_tensorboard': False,
}

VARIANTS = ('vanilla', 'nonsaturating', 'wgan_gp', 'wgan_gp_toy', 'sngan',
            'hinge_r1', 'smoke')


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
  if variant is None:
    variant = 'nonsaturating'
  if variant not in VARIANTS:
    raise ValueError(f'config variant: unknown {variant!r}; allowed: {list(VARIANTS)}')
  # The schema's defaults: the ring of 8, MLPs of 3 x 128 units.
  c = config_lib.defaults(model='mlp', dataset='ring')
  c.variant = variant
  c.model.z_dim = 16
  c.update(batch_size=256, num_steps=2000, steps_per_dispatch=50,
           eval_every=500, eval_samples=2500, checkpoint_every=500)

  if variant in recipes.RECIPES:
    recipes.apply(c, variant)
    if variant == 'hinge_r1':
      c.penalty_weight = 0.1  # gamma = 0.2 at the mixtures' scale (see above)
  elif variant == 'smoke':
    c.num_steps = 4
    c.steps_per_dispatch = 2
    c.log_every = 2
    c.eval_every = 4
    c.checkpoint_every = 2
    c.eval_samples = 256
    c.batch_size = 32
    c.model.update(g_hidden=16, d_hidden=16, g_layers=2, d_layers=2)
  return c
