"""MNIST / Fashion-MNIST with a DCGAN (Radford et al. 2016) at 28x28.

``python -m experiments.train --config=experiments/configs/mnist.py:wgan_gp
--workdir=DIR --config.data.dir=PATH_TO_IDX_DIR`` reads the standard IDX files
(train-images-idx3-ubyte.gz, ...) from ``data.dir``; ``--config.data.source=tfds``
reads ``tfds.data_source('mnist')`` instead. ``--config.dataset=fashion_mnist``
switches dataset. Variants: vanilla, nonsaturating, wgan_gp, sngan, smoke
(recipes and citations in ``recipes.py``), and their class-conditional twins
``<variant>_cond`` (10 classes for MNIST and Fashion-MNIST; labels from
``train-labels-idx1-ubyte.gz`` or the TFDS ``label``; ``images.py``). The
WGAN-GP MNIST code of Gulrajani et al. uses batch 50 and 200k generator
iterations; DIM 64.
"""

from experiments.configs import images


def get_config(variant: str = 'wgan_gp'):
  c = images.base(variant=variant, dataset='mnist', model='dcgan', z_dim=100,
                  g_width=64, d_width=64)
  return c
