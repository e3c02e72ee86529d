r"""Stabilisers one at a time: the NS-GAN baseline plus ONE stabiliser per row.

    python -m experiments.sweep --sweep=experiments/ablations/stabilisers.py:mog \
        --workdir=/tmp/stab_mog [--parallel=2]
    python -m experiments.report --workdir=/tmp/stab_mog --metric=modes

    python -m experiments.sweep --sweep=experiments/ablations/stabilisers.py:fmnist \
        --workdir=/tmp/stab_fmnist [--override=data.dir=/path/to/fashion-mnist]
    python -m experiments.report --workdir=/tmp/stab_fmnist --metric=cfid

    python -m experiments.sweep \
        --sweep=experiments/ablations/stabilisers.py:data_efficiency \
        --workdir=/tmp/stab_data [--override=data.dir=...]
    python -m experiments.report --workdir=/tmp/stab_data --metric=cfid

Variants (``--sweep=...stabilisers.py:VARIANT``):

* ``mog`` - the 2-D ring of 8 and the 5x5 grid (axis ``dataset``) x the
  rows of :data:`MOG_ROWS` (axis ``stabiliser``) x 10 seeds vmapped into one
  program per configuration: 240 runs, 24 programs. Base
  ``experiments/configs/mog.py:nonsaturating`` (n_critic 1) at the CPU budget
  of ``mog_grid.py`` (:data:`experiments.ablations.mog_grid.BUDGET`: 3,000
  generator updates, MLPs 3x64, batch 64, Adam(1e-3, 0.5, 0.999)).
* ``fmnist`` - Fashion-MNIST, the DCGAN NS-GAN recipe of
  ``experiments/configs/mnist.py:nonsaturating`` at the CPU budget
  :data:`FMNIST_BUDGET`, rows :data:`FMNIST_ROWS`, 3 seeds vmapped: 39 runs,
  13 programs.
* ``data_efficiency`` - the same on the first 6,000 (10 %) and 600 (1 %)
  training images (``data.num_examples``) x augment none / DiffAugment / ADA
  (rows ``baseline``, ``diffaugment``, ``ada``), 3 seeds vmapped: 18 runs.
* ``mog_smoke``, ``fmnist_smoke``, ``data_efficiency_smoke`` - every row of
  the variant for a few steps on a tiny model, 2 seeds (a check that they
  run; the image ones need the data).

Each row is one ``stabiliser`` case (:func:`gan_stability.sweep.spec.cases`):
the fields it sets on top of the baseline, every other stabiliser's fields
staying at their defaults (off). With the papers' default hyper-parameters
(weights in this library's conventions, see the schema in docs/config.md):

* ``baseline`` - NS-GAN (Goodfellow et al. 2014), alternating updates;
* ``instance_noise`` - Gaussian noise of sigma 0.1 on every D input, real and
  fake, annealed linearly to 0 over the first half of training (Sønderby et
  al. 2017; Arjovsky & Bottou 2017);
* ``label_smoothing`` - one-sided, real targets 0.9 (Salimans et al. 2016);
* ``dragan`` - DRAGAN, lambda 10, k 1, c 0.5 (Kodali et al. 2017; the
  authors' code's perturbation);
* ``r1`` - R1 on real data (Mescheder et al. 2018), ``penalty_weight`` =
  gamma / 2: images gamma 10 (weight 5, the paper's value); the mixtures
  weight 0.1 (gamma 0.2, as ``mog_grid``: their modes have sigma 0.01-0.05);
* ``r1_lazy`` - the same R1 weight, evaluated every k-th D update (mixtures
  k = 4, images k = 16 as StyleGAN2, Karras et al. 2020b, sec. 4). The
  library multiplies a lazy penalty by k itself (``penalty_every``:
  "weighted x k"; :func:`gan_stability.regularizers.lazy`), so the weight
  stays that of the eager row and the expected strength is equal;
* ``zcr`` - latent consistency regularisation, sigma 0.03, lambda_dis 5,
  lambda_gen 0.5 (Zhao et al. 2021);
* ``bcr`` (images) - balanced consistency regularisation, lambda_real =
  lambda_fake = 10 with the DiffAugment transforms as T (Zhao et al. 2021);
* ``lecam`` - LeCam regularisation, lambda 0.3 (the authors' CIFAR scripts,
  ``--LC 0.3``), EMA decay 0.99 (Tseng et al. 2021);
* ``diffaugment`` (images) - DiffAugment color, translation, cutout of every
  D input (Zhao et al. 2020);
* ``ada`` (images) - adaptive augmentation, target r_t 0.6, p adjusted every
  4 D updates (Karras et al. 2020a) with ``ada_kimg`` 20 instead of the
  paper's 500 so that p can move within a short CPU run (500 kimg is ~8,000
  batches of 64);
* ``simultaneous`` (mixtures) - simultaneous gradient steps of both players;
* ``consensus`` (mixtures) - consensus optimisation, gamma 10 (Mescheder et
  al. 2017; here on Adam's direction);
* ``extragradient`` - extrapolation from the past point, one extra gradient
  per step (Korpelevich 1976; Gidel et al. 2019);
* ``optimistic`` - optimistic mirror descent on Adam (Daskalakis et al.
  2018).

Image rows use layer norm in D instead of DCGAN's batch norm for every row
(a per-example gradient penalty, R1 or DRAGAN, is undefined with batch norm
in D), so that rows differ by their stabiliser only. Image metrics: ``cfid``
and ``ckid``, FID and KID in the MNIST classifier's feature space (a digit
classifier: a fixed feature space, not a Fashion-MNIST-trained one), of
:data:`FMNIST_BUDGET`'s ``eval_samples`` samples against the 10,000 test
images (``eval.real_split='test'``: the whole split, never subset by
``data.num_examples``, so that ``data_efficiency`` measures generalisation
and not memorisation of the training subset).

Image budget (:data:`FMNIST_BUDGET`): 1,000 generator updates of batch 64
(~1 epoch of Fashion-MNIST), DCGAN widths 16 / 16 (G / D), Adam(2e-4, 0.5,
0.999), evaluations at steps 500 and 1,000 on 2,000 samples. Measured on 2
CPU cores shared with other jobs (load ~3), one compiled step of the 3
vmapped seeds takes 53 ms (baseline), 38-83 ms (ada, diffaugment, dragan,
instance_noise, label_smoothing, lecam, optimistic), 100-150 ms (zcr,
r1_lazy, r1, bcr) and 182 ms (extragradient): ~19 min of steps for all 13
``fmnist`` rows plus ~25 s per row of compilation and evaluation, ~25 min in
all; ``data_efficiency`` ~9 min. (Widths 32 / 32 double the step: 113 ms
baseline.) The ``mog`` variant is 24 programs of 10 vmapped MLP seeds
(``mog_grid``'s 18 programs of 5 seeds took 7 min 44 s with
``--parallel=2``).

``data.dir`` defaults to ``$GAN_STABILITY_DATA_DIR/fashion-mnist`` (default
``../shared/data`` next to the repository) when it holds the IDX files;
``--override=data.dir=...`` sets it.

References: Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014;
Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016;
Sønderby et al., "Amortised MAP Inference for Image Super-resolution", ICLR
2017; Arjovsky & Bottou, "Towards Principled Methods for Training GANs", ICLR
2017; Kodali et al., "On Convergence and Stability of GANs",
arXiv:1705.07215; Mescheder et al., "The Numerics of GANs", NeurIPS 2017;
Mescheder et al., "Which Training Methods for GANs do actually Converge?",
ICML 2018; Daskalakis et al., "Training GANs with Optimism", ICLR 2018;
Gidel et al., "A Variational Inequality Perspective on GANs", ICLR 2019;
Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020; Karras et al. (2020a), "Training Generative Adversarial Networks
with Limited Data", NeurIPS 2020; Karras et al. (2020b), "Analyzing and
Improving the Image Quality of StyleGAN", CVPR 2020; Zhao et al., "Improved
Consistency Regularization for GANs", AAAI 2021; Tseng et al., "Regularizing
Generative Adversarial Networks under Limited Data", CVPR 2021.
"""

from __future__ import annotations

import os

from experiments.ablations import mog_grid
from gan_stability.sweep import spec as sw

VARIANTS = ('mog', 'fmnist', 'data_efficiency', 'mog_smoke', 'fmnist_smoke',
            'data_efficiency_smoke')

# ------------------------------------------------------------- mixtures ---
MOG_BASE = 'experiments/configs/mog.py:nonsaturating'  # n_critic 1
MOG_STEPS = mog_grid.BUDGET['num_steps']
MOG_ROWS = {
    'baseline': {},
    'instance_noise': {'instance_noise': 0.1,
                       'instance_noise_steps': MOG_STEPS // 2},
    'label_smoothing': {'label_smoothing': 0.1},
    'dragan': {'penalty': 'dragan', 'penalty_weight': 10.0},
    'r1': {'penalty': 'r1', 'penalty_weight': 0.1},
    'r1_lazy': {'penalty': 'r1', 'penalty_weight': 0.1, 'penalty_every': 4},
    'zcr': {'consistency': 'zcr'},
    'lecam': {'lecam_weight': 0.3},
    'simultaneous': {'game': 'simultaneous'},
    'consensus': {'game': 'consensus', 'consensus_gamma': 10.0},
    'extragradient': {'game': 'extragradient'},
    'optimistic': {'game': 'optimistic'},
}

# --------------------------------------------------------------- images ---
FMNIST_BASE = 'experiments/configs/mnist.py:nonsaturating'
FMNIST_STEPS = 1000
FMNIST_BUDGET = {
    'dataset': 'fashion_mnist',
    'model.d_norm': 'layer',
    'model.g_width': 16, 'model.d_width': 16,
    'batch_size': 64, 'num_steps': FMNIST_STEPS, 'steps_per_dispatch': 50,
    'log_every': 50, 'eval_every': 500, 'checkpoint_every': 500,
    'eval_samples': 2000, 'data.samples_per_row': 10,
    'eval.metrics': 'cfid,ckid', 'eval.real_split': 'test',
    'eval.num_real': 10_000,
    'write_tensorboard': False,
}
FMNIST_ROWS = {
    'baseline': {},
    'diffaugment': {'augment': 'diffaugment'},
    'ada': {'augment': 'ada', 'ada_kimg': 20.0},
    'bcr': {'consistency': 'bcr'},
    'zcr': {'consistency': 'zcr'},
    'r1': {'penalty': 'r1', 'penalty_weight': 5.0},
    'r1_lazy': {'penalty': 'r1', 'penalty_weight': 5.0, 'penalty_every': 16},
    'dragan': {'penalty': 'dragan', 'penalty_weight': 10.0},
    'instance_noise': {'instance_noise': 0.1,
                       'instance_noise_steps': FMNIST_STEPS // 2},
    'label_smoothing': {'label_smoothing': 0.1},
    'lecam': {'lecam_weight': 0.3},
    'extragradient': {'game': 'extragradient'},
    'optimistic': {'game': 'optimistic'},
}
DATA_EFFICIENCY_ROWS = ('baseline', 'diffaugment', 'ada')
NUM_EXAMPLES = (6000, 600)  # 10 % and 1 % of the 60,000 training images

# A few steps of a tiny model (the smoke variants).
IMAGE_SMOKE = {
    'model.g_width': 8, 'model.d_width': 8, 'model.z_dim': 16,
    'batch_size': 16, 'num_steps': 4, 'steps_per_dispatch': 2,
    'log_every': 2, 'eval_every': 4, 'checkpoint_every': 4,
    'eval_samples': 64, 'eval.num_real': 64, 'write_samples': False,
}


def data_dir() -> str:
  """The Fashion-MNIST IDX folder of ``$GAN_STABILITY_DATA_DIR`` (default
  ``../shared/data`` next to the repository), '' when it has no IDX files."""
  repo = os.path.dirname(os.path.dirname(os.path.dirname(
      os.path.abspath(__file__))))
  root = os.environ.get('GAN_STABILITY_DATA_DIR',
                        os.path.join(os.path.dirname(repo), 'shared', 'data'))
  path = os.path.join(root, 'fashion-mnist')
  ok = os.path.isfile(os.path.join(path, 'train-images-idx3-ubyte.gz'))
  return path if ok else ''


def _rows(table: dict, steps: int, names=None) -> sw.Cases:
  """The ``stabiliser`` cases of ``table`` (``names``: a subset), instance
  noise annealed over half of ``steps``."""
  rows = {k: dict(v) for k, v in table.items()
          if names is None or k in names}
  if 'instance_noise' in rows:
    rows['instance_noise']['instance_noise_steps'] = steps // 2
  return sw.cases('stabiliser', rows)


def get_sweep(variant: str = 'mog') -> sw.Sweep:
  if variant not in VARIANTS:
    raise ValueError(f'stabilisers: unknown variant {variant!r}; allowed: '
                     f'{list(VARIANTS)}')
  smoke = variant.endswith('_smoke')
  seeds = sw.axis('seed', range(2) if smoke else
                  range(10) if variant == 'mog' else range(3))
  if variant.startswith('mog'):
    overrides = {**mog_grid.BUDGET, **(mog_grid.SMOKE if smoke else {})}
    return sw.Sweep(
        base=MOG_BASE, overrides=overrides,
        axes=sw.product(sw.axis('dataset', ['ring', 'grid']),
                        _rows(MOG_ROWS, overrides['num_steps']), seeds),
        seeds_in_one_program=True,
        description='MoG ring and grid: NS-GAN + one stabiliser per row.')
  overrides = {**FMNIST_BUDGET, 'data.dir': data_dir(),
               **(IMAGE_SMOKE if smoke else {})}
  steps = overrides['num_steps']
  if variant.startswith('fmnist'):
    return sw.Sweep(
        base=FMNIST_BASE, overrides=overrides,
        axes=sw.product(_rows(FMNIST_ROWS, steps), seeds),
        seeds_in_one_program=True,
        description='Fashion-MNIST: DCGAN NS-GAN + one stabiliser per row.')
  return sw.Sweep(
      base=FMNIST_BASE, overrides=overrides,
      axes=sw.product(sw.axis('data.num_examples', NUM_EXAMPLES),
                      _rows(FMNIST_ROWS, steps, DATA_EFFICIENCY_ROWS), seeds),
      seeds_in_one_program=True,
      description='Fashion-MNIST data efficiency: 10 % / 1 % of the '
      'training set x augment none / DiffAugment / ADA.')
