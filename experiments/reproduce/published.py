"""Published numbers the reproduction scripts print beside ours.

Each row names its table. The PacGAN rows (Lin et al., "PacGAN: The power of
two samples in generative adversarial networks", NeurIPS 2018, Table 1: ring
of 8 and grid of 25 Gaussians, 2,500 samples, high quality = within 3 sigma
of a mode, 10 trials, mean +- standard error) and the VEEGAN rows
(Srivastava et al., "VEEGAN", NeurIPS 2017, Table 1) are as printed in the
tables of the authors' own repositories (PacGAN's ``Table1.png`` to
``Table3.png``, VEEGAN's ``tab.png``); the ``CIFAR10`` rows are as printed in
Miyato et al.'s text. ``STACKED_MNIST`` and ``CIFAR10`` carry their own notes.
"""

# dataset, method, modes, high quality %, reverse KL, source
MIXTURES = (
    ('ring', 'GAN', '6.3 ± 0.5', '98.2 ± 0.2', '0.45 ± 0.09', 'PacGAN Table 1'),
    ('ring', 'PacGAN2', '7.9 ± 0.1', '95.6 ± 2.0', '0.07 ± 0.03', 'PacGAN Table 1'),
    ('ring', 'Unrolled GAN', '7.6', '35.6', '—', 'VEEGAN Table 1'),
    ('ring', 'VEEGAN', '8.0', '52.9', '—', 'VEEGAN Table 1'),
    ('grid', 'GAN', '17.3 ± 0.8', '94.8 ± 0.7', '0.70 ± 0.07', 'PacGAN Table 1'),
    ('grid', 'PacGAN2', '23.8 ± 0.7', '91.3 ± 0.8', '0.13 ± 0.04', 'PacGAN Table 1'),
    ('grid', 'Unrolled GAN', '23.6', '16.0', '—', 'VEEGAN Table 1'),
    ('grid', 'VEEGAN', '24.6', '40.0', '—', 'VEEGAN Table 1'),
)

# Stacked MNIST (1,000 modes), modes covered and KL(mode histogram || uniform).
# Capacity (as in experiments/reproduce/stacked_mnist.py): 'full' = PacGAN
# Table 2 (the VEEGAN setting: DCGAN, 26,000 samples; the DCGAN, ALI,
# Unrolled GAN and VEEGAN rows are VEEGAN Table 2's, copied by PacGAN, which
# also prints its own re-trained DCGAN); 'quarter' / 'half' = D of 1/4 or 1/2
# the size of G, PacGAN Table 3, whose DCGAN and Unrolled GAN rows are copied
# from Metz et al. 2017 ("Unrolled Generative Adversarial Networks", ICLR
# 2017, Table 2; 10 unrolling steps) and whose "DCGAN (PacGAN's run)" and
# PacDCGAN2 rows are PacGAN's own runs. The +- spreads are as printed in
# those tables. So at D = G, PacDCGAN2's 1,000 modes compare like for like
# with PacGAN's re-trained DCGAN (78.9), not with VEEGAN's DCGAN (99.0).
# capacity, method, modes, KL, source
STACKED_MNIST = (
    ('full', 'DCGAN', '99.0', '3.40', 'PacGAN Table 2 (VEEGAN Table 2)'),
    ('full', 'ALI', '16.0', '5.40', 'PacGAN Table 2 (VEEGAN Table 2)'),
    ('full', 'Unrolled GAN', '48.7', '4.32', 'PacGAN Table 2 (VEEGAN Table 2)'),
    ('full', 'VEEGAN', '150.0', '2.95', 'PacGAN Table 2 (VEEGAN Table 2)'),
    ('full', "DCGAN (PacGAN's run)", '78.9 ± 6.46', '4.50 ± 0.127',
     'PacGAN Table 2'),
    ('full', 'PacDCGAN2', '1000.0 ± 0.0', '0.06 ± 0.003', 'PacGAN Table 2'),
    ('quarter', 'DCGAN', '30.6 ± 20.7', '5.99 ± 0.42',
     'PacGAN Table 3 (Metz et al. Table 2)'),
    ('quarter', 'Unrolled GAN (10 steps)', '327.2 ± 74.7', '4.66 ± 0.46',
     'PacGAN Table 3 (Metz et al. Table 2)'),
    ('quarter', "DCGAN (PacGAN's run)", '78.5 ± 17.56', '5.21 ± 0.19',
     'PacGAN Table 3'),
    ('quarter', 'PacDCGAN2', '484.5 ± 32.99', '2.61 ± 0.22', 'PacGAN Table 3'),
    ('half', 'DCGAN', '628.0 ± 140.9', '2.58 ± 0.75',
     'PacGAN Table 3 (Metz et al. Table 2)'),
    ('half', 'Unrolled GAN (10 steps)', '817.4 ± 37.9', '1.43 ± 0.12',
     'PacGAN Table 3 (Metz et al. Table 2)'),
    ('half', "DCGAN (PacGAN's run)", '487.7 ± 34.59', '2.24 ± 0.15',
     'PacGAN Table 3'),
    ('half', 'PacDCGAN2', '840.7 ± 15.92', '1.00 ± 0.05', 'PacGAN Table 3'),
)

# CIFAR-10, unsupervised: Miyato et al., "Spectral Normalization for
# Generative Adversarial Networks", ICLR 2018, Table 2 (IS and FID; their
# FID sample sizes: see experiments/reproduce/cifar10.py). "Eq. (17)" rows
# use the hinge loss; the plain "SN-GANs" row the non-saturating loss of
# this project's sngan recipe. The ResNet WGAN-GP IS is Gulrajani et al.'s
# own, as quoted in that table (Gulrajani et al.'s Table 3 itself prints
# 7.86 +- .07). Every row below is as printed in the paper (ICLR 2018
# version). Footnote 5 of the paper: the ResNet +- is the
# standard deviation over models trained with different seeds.
# arch (reproduce/cifar10.py), method, IS, FID, source
CIFAR10 = (
    ('cnn', 'WGAN-GP', '6.68 ± .06', '40.2', 'Miyato et al. Table 2'),
    ('cnn', 'SN-GANs', '7.42 ± .08', '29.3', 'Miyato et al. Table 2'),
    ('cnn', 'SN-GANs, hinge (Eq. 17)', '7.58 ± .12', '25.5',
     'Miyato et al. Table 2'),
    ('resnet', 'WGAN-GP', '7.86 ± .08', '—',
     'Miyato et al. Table 2 (Gulrajani et al.)'),
    ('resnet', 'SN-GANs, hinge (Eq. 17)', '8.22 ± .05', '21.7 ± .21',
     'Miyato et al. Table 2'),
)
