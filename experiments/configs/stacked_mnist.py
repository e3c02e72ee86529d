"""Stacked MNIST (1,000 modes; Srivastava et al. 2017, Metz et al. 2017) with
a DCGAN at 28x28x3, built deterministically from MNIST IDX files in
``data.dir`` (or TFDS mnist with ``data.source=tfds``). The D = 1/4 G and
1/2 G settings of Metz et al. / PacGAN are ``--config.model.d_width=16`` or
``32`` with ``g_width=64``. Variants as in ``images.py``."""

from experiments.configs import images


def get_config(variant: str = 'nonsaturating'):
  c = images.base(variant=variant, dataset='stacked_mnist', model='dcgan',
                  z_dim=100, g_width=64, d_width=64)
  return c
