"""The published GAN recipes, shared by every dataset's config.

``apply(c, variant)`` sets the loss, penalty, n_critic, Lipschitz constraint
and optimiser of a recipe on config ``c`` (a config built from the schema's
defaults, ``gan_stability.config.defaults``; architecture and data stay the
dataset config's):

* ``vanilla`` - minimax GAN, saturating G loss (Goodfellow et al. 2014,
  eq. 1); Adam(2e-4, 0.5, 0.999) as in DCGAN (Radford et al. 2016).
* ``nonsaturating`` - the same with the non-saturating G loss (Goodfellow et
  al. 2014, sec. 3).
* ``wgan_gp`` - Wasserstein loss + two-sided gradient penalty, lambda 10,
  n_critic 5, Adam(1e-4, beta1=0, beta2=0.9) (Gulrajani et al. 2017,
  Algorithm 1 defaults).
* ``wgan_gp_toy`` - WGAN-GP as its authors ran it on 2-D toy data in their
  released code (``gan_toy.py``): lambda 0.1, Adam(1e-4, 0.5, 0.9).
* ``sngan`` - spectral norm on every D layer, non-saturating loss, n_dis 5,
  Adam(1e-4, 0.5, 0.9) (Miyato et al. 2018, Table 1 setting A).
* ``hinge_r1`` - hinge loss (Lim & Ye 2017; Miyato et al. 2018) with the R1
  penalty ``gamma/2 E_real |grad D|^2`` (Mescheder et al. 2018) at their
  gamma = 10 (``penalty_weight`` 5), n_critic 1, Adam(1e-4, 0.5, 0.9).
  Dataset configs may rescale gamma to their data (the 2-D mixtures do).
"""

RECIPES = ('vanilla', 'nonsaturating', 'wgan_gp', 'wgan_gp_toy', 'sngan',
           'hinge_r1')


def apply(c, variant: str) -> None:
  if variant not in RECIPES:
    raise ValueError(f'config variant: unknown recipe {variant!r}; '
                     f'allowed: {list(RECIPES)}')
  c.optimizer.update(g_lr=2e-4, d_lr=2e-4, b1=0.5, b2=0.999)
  if variant == 'vanilla':
    c.loss = 'minimax'
  elif variant == 'nonsaturating':
    c.loss = 'nonsaturating'
  elif variant in ('wgan_gp', 'wgan_gp_toy'):
    c.loss = 'wasserstein'
    c.penalty = 'gp'
    c.n_critic = 5
    toy = variant == 'wgan_gp_toy'
    c.penalty_weight = 0.1 if toy else 10.0
    c.optimizer.update(g_lr=1e-4, d_lr=1e-4, b1=0.5 if toy else 0.0, b2=0.9)
  elif variant == 'sngan':
    c.loss = 'nonsaturating'
    c.model.spectral_norm = True
    c.n_critic = 5
    c.optimizer.update(g_lr=1e-4, d_lr=1e-4, b1=0.5, b2=0.9)
  elif variant == 'hinge_r1':
    c.loss = 'hinge'
    c.penalty = 'r1'
    c.penalty_weight = 5.0
    c.optimizer.update(g_lr=1e-4, d_lr=1e-4, b1=0.5, b2=0.9)
