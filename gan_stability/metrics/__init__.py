"""Evaluation metrics, as plain functions of samples or features.

Submodules: ``mixtures`` (2-D mode coverage), ``inception`` (the FID
Inception-v3 port), ``fid_kid`` (FID, KID, IS, cached reference statistics),
``manifold`` (precision/recall, density/coverage, nearest neighbours),
``ndb``, ``diversity`` (birthday paradox, MS-SSIM diversity),
``image_quality`` (PSNR, SSIM, MS-SSIM), ``classifier`` (the project's MNIST
classifier), ``modes`` (Stacked-MNIST mode counting), ``dynamics``
(training-dynamics signals and alarms), ``cas`` (Classification Accuracy
Score and GAN-test label agreement with that classifier; imported by module,
``from gan_stability.metrics import cas``, as it loads Flax). The
memorisation check (nearest-training-neighbour distances of generated vs
held-out images) is ``manifold.memorisation_report``.
"""

from gan_stability.metrics.diversity import (birthday_paradox, duplicate_rate,
                                             pairwise_ms_ssim_diversity)
from gan_stability.metrics.fid_kid import (fid, fid_from_stats, gaussian_stats,
                                           inception_score, kid,
                                           reference_stats)
from gan_stability.metrics.image_quality import ms_ssim, psnr, ssim
from gan_stability.metrics.manifold import (density_coverage,
                                            memorisation_report,
                                            nearest_neighbour_distances,
                                            precision_recall)
from gan_stability.metrics.mixtures import assign, mode_metrics

__all__ = [
    'assign', 'birthday_paradox', 'density_coverage', 'duplicate_rate', 'fid',
    'fid_from_stats', 'gaussian_stats', 'inception_score', 'kid',
    'memorisation_report', 'mode_metrics', 'ms_ssim',
    'nearest_neighbour_distances', 'pairwise_ms_ssim_diversity',
    'precision_recall', 'psnr', 'reference_stats', 'ssim',
]
