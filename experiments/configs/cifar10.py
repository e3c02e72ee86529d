"""CIFAR-10 (32x32x3) through ``tfds.data_source('cifar10')``.

Architectures: ``model.name=sngan_cnn`` (Miyato et al. 2018, Table 3, the
"standard CNN"; default) or ``resnet`` (Gulrajani et al. 2017 / Miyato et al.
2018 Table 4, widths 256/128). Recipes (``recipes.py``): SN-GAN = spectral
norm, Adam(1e-4, 0.5, 0.9), n_dis 5 (Miyato Table 1 setting A); WGAN-GP =
lambda 10, n_critic 5, Adam(1e-4, 0, 0.9) (Gulrajani et al., Algorithm 1). Batch 64,
100k generator updates. Needs the CIFAR-10 TFDS files (``data.dir`` is the
TFDS data_dir); tests use ``tfds.testing.mock_data``. Class-conditional
twins: ``sngan_cond``, ``wgan_gp_cond``, ... (``images.py``; the projection
discriminator of Miyato & Koyama 2018 with 10 classes).
"""

from experiments.configs import images


def get_config(variant: str = 'sngan'):
  c = images.base(variant=variant, dataset='tfds:cifar10', model='sngan_cnn',
                  z_dim=128, g_width=512, d_width=64, source='tfds')
  recipe, _ = images.split_variant(variant)
  if recipe in ('vanilla', 'nonsaturating'):
    c.model.d_norm = 'none'  # the standard CNN D of Miyato et al. has no BN
  if recipe == 'smoke':
    c.model.update(g_width=16, d_width=8)
  return c
