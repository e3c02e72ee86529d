r"""Sensitivity curves: WGAN-GP's lambda and R1's gamma on the ring and the grid.

    python -m experiments.sweep --sweep=experiments/ablations/sensitivity.py:wgan_gp_lambda \
        --workdir=/tmp/sens_gp
    python -m experiments.sensitivity --workdir=/tmp/sens_gp --axis=penalty_weight --metric=modes

    python -m experiments.sweep --sweep=experiments/ablations/sensitivity.py:r1_gamma \
        --workdir=/tmp/sens_r1
    python -m experiments.sensitivity --workdir=/tmp/sens_r1 --axis=penalty_weight --metric=modes

The quick start's central finding (WGAN-GP recovers the ring at lambda = 0.1
and fails at lambda = 10) is one point on each side of a curve; these sweeps
draw the curve. Each variant is :data:`WEIGHTS` (11 values, half-decades
from 1e-3 to 1e2) x 10 seeds x the two datasets, and the weight axis and the
seeds run **in one vmapped program per dataset** (110 runs per program,
``sw.axis(..., in_one_program=True)`` with ``seeds_in_one_program``): 220
runs, 2 compiled programs. Every run still writes its own directory and
report rows.

Variants (``--sweep=...sensitivity.py:VARIANT``):

* ``wgan_gp_lambda`` - ``experiments/configs/mog.py:wgan_gp`` (Wasserstein
  loss, two-sided GP, n_critic 5, Adam(beta1 0, beta2 0.9); Gulrajani et al.
  2017) at the quick start's CPU budget (:data:`experiments.configs.mog.CPU_BUDGET`:
  3,000 generator updates, MLPs 3x64, batch 64, learning rates 1e-3), with
  ``penalty_weight`` = lambda over :data:`WEIGHTS`.
* ``r1_gamma`` - ``experiments/configs/mog.py:nonsaturating`` (n_critic 1) +
  R1 on real data (Mescheder et al. 2018) at the same budget, with
  ``penalty_weight`` over :data:`WEIGHTS`. The library's ``penalty_weight``
  multiplies ``E||grad D||^2``, so R1's gamma (the paper's
  ``gamma / 2 * E||grad D||^2``) is twice the weight: the curve spans gamma
  2e-3 .. 2e2.
* ``wgan_gp_lambda_smoke``, ``r1_gamma_smoke`` - the same axes for a few
  steps, 2 seeds (a check that they run).

Metrics of the mixtures (:mod:`gan_stability.metrics.mixtures`): ``modes``
(modes recovered of 8 / 25), ``hq`` (fraction of high-quality samples) and
``kl`` (mode-histogram KL), on 2,500 samples at steps 1,500 and 3,000.
Results, commands and wall times: docs/sensitivity.md.

References: Gulrajani et al., "Improved Training of Wasserstein GANs",
NeurIPS 2017; Mescheder et al., "Which Training Methods for GANs do actually
Converge?", ICML 2018.
"""

from __future__ import annotations

from experiments.configs import mog
from gan_stability.sweep import spec as sw

VARIANTS = ('wgan_gp_lambda', 'r1_gamma', 'wgan_gp_lambda_smoke',
            'r1_gamma_smoke')

# Half-decades from 1e-3 to 1e2.
WEIGHTS = (1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)

BASES = {
    'wgan_gp_lambda': 'experiments/configs/mog.py:wgan_gp',
    'r1_gamma': 'experiments/configs/mog.py:nonsaturating',
}

SMOKE = {
    'num_steps': 20, 'steps_per_dispatch': 10, 'log_every': 10,
    'eval_every': 20, 'checkpoint_every': 20, 'eval_samples': 256,
    'write_samples': False,
}


def get_sweep(variant: str = 'wgan_gp_lambda') -> sw.Sweep:
  if variant not in VARIANTS:
    raise ValueError(f'sensitivity: unknown variant {variant!r}; allowed: '
                     f'{list(VARIANTS)}')
  smoke = variant.endswith('_smoke')
  name = variant.removesuffix('_smoke')
  overrides = {**mog.CPU_BUDGET, **(SMOKE if smoke else {})}
  if name == 'r1_gamma':
    overrides['penalty'] = 'r1'
  weights = WEIGHTS[::5] if smoke else WEIGHTS
  return sw.Sweep(
      base=BASES[name], overrides=overrides,
      axes=sw.product(
          sw.axis('dataset', ['ring', 'grid']),
          sw.axis('penalty_weight', weights, in_one_program=True),
          sw.axis('seed', range(2) if smoke else range(10))),
      seeds_in_one_program=True,
      description=(f'MoG ring and grid: {name} over {len(weights)} penalty '
                   'weights x seeds, one vmapped program per dataset.'))
