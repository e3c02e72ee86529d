"""The VAE baseline (Kingma & Welling 2014) on the GANs' image data, with the
GANs' DCGAN networks (decoder = the DCGAN generator, encoder = the DCGAN
discriminator body; ``gan_stability/models/vae.py``).

``python -m experiments.train --config=experiments/configs/vae.py:fashion_mnist_cond
--workdir=DIR --config.data.dir=PATH_TO_IDX_DIR`` trains a class-conditional VAE
(Sohn et al. 2015) on Fashion-MNIST. Variants: ``mnist``, ``fashion_mnist``,
``stacked_mnist`` (each with a ``_cond`` twin) and ``smoke`` (tiny, a few
steps). The data, evaluation and logging fields are those of the GAN config of
the same dataset (``images.py``), so a VAE run is evaluated exactly like a GAN
run (``experiments/evaluate.py``, ``config.eval.metrics``).

Training: the negative ELBO with a Bernoulli decoder on the pixel
intensities (``vae.likelihood``; ``gaussian`` with a fixed ``vae.sigma`` is the
alternative; ``vae.beta`` weights the KL), Adam(1e-3, 0.9, 0.999), batch 64
like the GANs.
"""

from experiments.configs import images

from gan_stability import config as config_lib

DATASETS = ('mnist', 'fashion_mnist', 'stacked_mnist')


def get_config(variant: str = 'fashion_mnist'):
  name, conditional = images.split_variant(variant)
  smoke = name == 'smoke'
  dataset = 'mnist' if smoke else name
  if dataset not in DATASETS:
    allowed = [d + s for d in DATASETS + ('smoke',) for s in ('', '_cond')]
    raise ValueError(f'config variant: unknown {variant!r}; allowed: {allowed}')
  # The GAN config of the same data gives the run, data and eval fields (all
  # the fields the two schemas share, but the networks' and optimiser's).
  gan = images.base(variant='smoke' if smoke else 'nonsaturating',
                    dataset=dataset, model='dcgan', z_dim=100, g_width=64,
                    d_width=64)
  c = config_lib.defaults(family_name='vae', model='dcgan', dataset=dataset)
  shared = config_lib.flatten(c)
  for field, value in config_lib.flatten(gan).items():
    if field in shared and not field.startswith(('model.', 'optimizer.')):
      *parents, leaf = field.split('.')
      node = c
      for p in parents:
        node = node[p]
      node[leaf] = value
  c.variant = variant
  c.model.update(z_dim=gan.model.z_dim, g_width=gan.model.g_width,
                 e_width=gan.model.d_width)
  c.optimizer.update(name='adam', lr=1e-3, b1=0.9, b2=0.999)
  if conditional:
    c.model.num_classes = 1000 if dataset == 'stacked_mnist' else 10
    if c.model.num_classes <= 16 and not smoke:
      c.data.samples_per_row = c.model.num_classes
      c.eval_samples = c.model.num_classes ** 2
  return c
