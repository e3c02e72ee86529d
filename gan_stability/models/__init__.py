"""Model registry: ``config.model.name`` -> (generator, discriminator) modules.

Every generator is ``G(z, *, train)``; every discriminator is
``D(x, *, update_stats=False, train=False) -> logits [B]``. The image models
take ``labels=`` (int ``[B]``) as well when ``config.model.num_classes > 0``
(class-conditional G, projection D: :mod:`gan_stability.models.conditional`).
"""

from __future__ import annotations

from gan_stability.models import mlp
from gan_stability.models.layers import SPECTRAL_STATS, spectral_sigmas


def _mlp(model_cfg, data_shape):
  if len(data_shape) != 1:
    raise ValueError(
        f'config.model.name: "mlp" needs vector data, got shape {data_shape}')
  g = mlp.MLPGenerator(out_dim=data_shape[0], hidden=model_cfg.g_hidden,
                       num_layers=model_cfg.g_layers,
                       activation=model_cfg.g_activation,
                       norm=model_cfg.get('g_norm', 'none'))
  d = mlp.MLPDiscriminator(hidden=model_cfg.d_hidden,
                           num_layers=model_cfg.d_layers,
                           activation=model_cfg.d_activation,
                           spectral_norm=model_cfg.spectral_norm,
                           sn_steps=model_cfg.sn_steps,
                           packing=model_cfg.packing,
                           maxout=model_cfg.get('d_maxout', 1))
  return g, d


def _lazy(module_name):
  def build_fn(model_cfg, data_shape):
    import importlib  # pylint: disable=g-import-not-at-top
    module = importlib.import_module(f'gan_stability.models.{module_name}')
    return module.build(model_cfg, data_shape)
  return build_fn


MODELS = {
    'mlp': _mlp,
    'dcgan': _lazy('dcgan'),          # Radford et al. 2016
    'sngan_cnn': _lazy('cnn'),        # Miyato et al. 2018, Table 3
    'resnet': _lazy('resnet'),        # Gulrajani et al. 2017; Miyato et al. 2018
}


def build(model_cfg, data_shape):
  """Returns ``(generator, discriminator)`` Flax modules for the config."""
  if model_cfg.name not in MODELS:
    raise ValueError(f'config.model.name: unknown model {model_cfg.name!r}; '
                     f'allowed: {sorted(MODELS)}')
  return MODELS[model_cfg.name](model_cfg, tuple(data_shape))


__all__ = ['build', 'MODELS', 'SPECTRAL_STATS', 'spectral_sigmas']
