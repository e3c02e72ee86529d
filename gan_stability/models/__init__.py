"""Model registry: ``config.model.name`` -> (generator, discriminator) modules.

Every generator is ``G(z, *, train)``; every discriminator is
``D(x, *, update_stats=False, train=False) -> logits [B]``. The image models
take ``labels=`` (int ``[B]``) as well when ``config.model.num_classes > 0``
(class-conditional G, projection D: :mod:`gan_stability.models.conditional`).
:data:`MODELS` maps each name to its :class:`ModelSpec`: its builder, the
kind of data it takes and the paper it follows.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax.linen as nn

from gan_stability.models import cnn, dcgan, mlp, resnet
from gan_stability.models.layers import SPECTRAL_STATS, spectral_sigmas


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A registered model.

  Attributes:
    build: ``build(model_cfg, data_shape) -> (generator, discriminator)``;
      raises ValueError naming the config field for unsupported settings.
    data: the data it takes: ``'vector'`` (shape ``(D,)``) or ``'image'``
      (``(H, W, C)``).
    reference: the paper the architecture follows, in one line.
  """
  build: Callable[[Any, tuple[int, ...]], tuple[nn.Module, nn.Module]]
  data: str
  reference: str


MODELS: dict[str, ModelSpec] = {
    'mlp': ModelSpec(
        mlp.build, 'vector',
        'MLPs of the 2-D mixture benchmarks (VEEGAN, Srivastava et al. 2017; '
        'PacGAN, Lin et al. 2018)'),
    'dcgan': ModelSpec(
        dcgan.build, 'image',
        'Radford, Metz & Chintala, "Unsupervised Representation Learning '
        'with Deep Convolutional Generative Adversarial Networks", ICLR 2016'),
    'sngan_cnn': ModelSpec(
        cnn.build, 'image',
        'Miyato et al., "Spectral Normalization for Generative Adversarial '
        'Networks", ICLR 2018, Table 3 (the standard CNN)'),
    'resnet': ModelSpec(
        resnet.build, 'image',
        'Gulrajani et al., "Improved Training of Wasserstein GANs", NeurIPS '
        '2017, Appendix F (CIFAR-10 ResNet); Miyato et al. 2018, Table 4'),
}


def build(model_cfg, data_shape):
  """Returns ``(generator, discriminator)`` Flax modules for the config."""
  if model_cfg.name not in MODELS:
    raise ValueError(f'config.model.name: unknown model {model_cfg.name!r}; '
                     f'allowed: {sorted(MODELS)}')
  return MODELS[model_cfg.name].build(model_cfg, tuple(data_shape))


__all__ = ['build', 'MODELS', 'ModelSpec', 'SPECTRAL_STATS',
           'spectral_sigmas']
