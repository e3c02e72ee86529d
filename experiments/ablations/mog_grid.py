r"""Loss x penalty x spectral norm on the 2-D ring, 5 seeds each (90 runs).

    python -m experiments.sweep --sweep=experiments/ablations/mog_grid.py \
        --workdir=/tmp/mog_grid
    python -m experiments.report --workdir=/tmp/mog_grid

Axes (config field names of ``experiments/configs/mog.py``):

* ``loss``: nonsaturating (Goodfellow et al. 2014), hinge (Lim & Ye 2017;
  Miyato et al. 2018), wasserstein (Arjovsky et al. 2017);
* ``penalty`` zipped with ``penalty_weight``: none; ``gp`` with lambda 0.1
  (the WGAN-GP authors' toy-data value; lambda 10 fails at this data scale,
  see docs/reproductions.md); ``r1`` with weight 0.1 (gamma = 0.2 in Mescheder et al.'s
  gamma/2 convention);
* ``model.spectral_norm``: off / on (Miyato et al. 2018);
* ``seed``: 0-4, run as one vmapped program per configuration.

Everything else is the quickstart's CPU budget (MLPs 3x64, batch 64, Adam
1e-3, beta1 0.5, beta2 0.999) with n_critic = 1 for every configuration, so
the comparison isolates the three axes. ``--sweep=...mog_grid.py:smoke``
is a few steps of the same grid with 2 seeds (a check that it runs).
"""

from __future__ import annotations

from gan_stability.sweep import spec as sw

BUDGET = {
    'num_steps': 3000, 'batch_size': 64, 'steps_per_dispatch': 100,
    'log_every': 100, 'eval_every': 500, 'checkpoint_every': 1500,
    'eval_samples': 2500,
    'optimizer.g_lr': 1e-3, 'optimizer.d_lr': 1e-3,
    'model.g_hidden': 64, 'model.d_hidden': 64,
    'write_tensorboard': False,
}

SMOKE = {
    'num_steps': 20, 'steps_per_dispatch': 10, 'log_every': 10,
    'eval_every': 20, 'checkpoint_every': 20, 'eval_samples': 256,
    'write_samples': False,
}


def get_sweep(variant: str = 'full') -> sw.Sweep:
  if variant not in ('full', 'smoke'):
    raise ValueError(f"mog_grid: unknown variant {variant!r}; allowed: ['full', 'smoke']")
  seeds = range(5) if variant == 'full' else range(2)
  return sw.Sweep(
      base='experiments/configs/mog.py:nonsaturating',
      overrides={**BUDGET, **(SMOKE if variant == 'smoke' else {})},
      axes=sw.product(
          sw.axis('loss', ['nonsaturating', 'hinge', 'wasserstein']),
          sw.zip(sw.axis('penalty', ['none', 'gp', 'r1']),
                 sw.axis('penalty_weight', [0.0, 0.1, 0.1])),
          sw.axis('model.spectral_norm', [False, True]),
          sw.axis('seed', seeds)),
      seeds_in_one_program=True,
      description='MoG ring: loss x penalty x spectral norm, n_critic 1.')
