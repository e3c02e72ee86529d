"""Published numbers the reproduction scripts print beside ours.

Each row names its table. The PacGAN rows (Lin et al., "PacGAN: The power of
two samples in generative adversarial networks", NeurIPS 2018, Table 1: ring
of 8 and grid of 25 Gaussians, 2,500 samples, high quality = within 3 sigma
of a mode, 10 trials, mean +- standard error) and the VEEGAN rows
(Srivastava et al., "VEEGAN", NeurIPS 2017, Table 1) were transcribed by hand
and are not yet checked against the PDFs here (no copy on this machine):
verify them before citing them.
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
