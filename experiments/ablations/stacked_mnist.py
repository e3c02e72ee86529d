r"""Stacked MNIST (1,000 modes) with the DCGAN of ``experiments/configs/stacked_mnist.py``.

    python -m experiments.sweep --sweep=experiments/ablations/stacked_mnist.py \
        --workdir=/tmp/stacked_grid --override=data.dir=/path/to/mnist_idx [--parallel=2]
    python -m experiments.report --workdir=/tmp/stacked_grid --metric=modes

Variants (``--sweep=...stacked_mnist.py:VARIANT``):

* ``grid`` (default) - ``loss`` (nonsaturating, hinge) x ``penalty`` zipped
  with ``penalty_weight`` (none; R1 with gamma = 10, i.e. weight 5, Mescheder
  et al. 2018) x ``model.spectral_norm`` x 3 seeds: 24 runs;
* ``ttur`` - hinge loss with spectral norm, ``optimizer.d_lr`` (1e-4 as G,
  4e-4 as in TTUR, Heusel et al. 2017) x ``n_critic`` (1, 5) x 3 seeds;
* ``smoke`` - the ``grid`` axes on the tiny ``smoke`` model, 2 steps.

D uses layer norm instead of DCGAN's batch norm (a per-example gradient
penalty is undefined with batch norm in D) and is a quarter of G's width
(``d_width=16``, ``g_width=64``: the D = 1/4 G setting of Metz et al. 2017
and PacGAN). ``data.dir`` has no default: pass the MNIST IDX folder with
``--override``. Each run is a conv net, so seeds run one per program
(``--parallel`` runs several at once). The report ranks by any metric the
Stacked-MNIST evaluator writes (``--metric``).
"""

from __future__ import annotations

from gan_stability.sweep import spec as sw

BUDGET = {
    'model.d_norm': 'layer', 'model.d_width': 16,
    'num_steps': 20_000, 'log_every': 100, 'eval_every': 2000,
    'checkpoint_every': 1000, 'write_tensorboard': False,
}
SMOKE = {'model.d_norm': 'layer', 'num_steps': 2, 'write_tensorboard': False}
VARIANTS = ('grid', 'ttur', 'smoke')


def get_sweep(variant: str = 'grid') -> sw.Sweep:
  if variant not in VARIANTS:
    raise ValueError(f'stacked_mnist: unknown variant {variant!r}; '
                     f'allowed: {list(VARIANTS)}')
  seeds = sw.axis('seed', range(3) if variant != 'smoke' else range(2))
  if variant == 'ttur':
    return sw.Sweep(
        base='experiments/configs/stacked_mnist.py:nonsaturating',
        overrides={**BUDGET, 'loss': 'hinge', 'model.spectral_norm': True},
        axes=sw.product(sw.axis('optimizer.d_lr', [1e-4, 4e-4]),
                        sw.axis('n_critic', [1, 5]), seeds),
        description='Stacked MNIST: TTUR x n_critic, hinge + SN.')
  return sw.Sweep(
      base=('experiments/configs/stacked_mnist.py:'
            + ('smoke' if variant == 'smoke' else 'nonsaturating')),
      overrides=SMOKE if variant == 'smoke' else BUDGET,
      axes=sw.product(
          sw.axis('loss', ['nonsaturating', 'hinge']),
          sw.zip(sw.axis('penalty', ['none', 'r1']),
                 sw.axis('penalty_weight', [0.0, 5.0])),
          sw.axis('model.spectral_norm', [False, True]),
          seeds),
      description='Stacked MNIST: loss x R1 x spectral norm.')
