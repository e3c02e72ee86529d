"""The published GAN recipes, shared by every dataset's config.

``apply(c, variant)`` sets the loss, penalty, n_critic, Lipschitz constraint
and optimiser of a recipe on config ``c`` (architecture and data stay the
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

import ml_collections

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


def set_training_fields(c, *, batch_size: int, num_steps: int,
                        steps_per_dispatch: int, log_every: int,
                        eval_every: int, eval_samples: int,
                        checkpoint_every: int) -> None:
  """The loss / optimiser / logging fields every dataset config shares, at
  their neutral defaults (a recipe from :func:`apply` then overrides them)."""
  c.loss = 'nonsaturating'
  c.penalty = 'none'          # none | gp | gp_one_sided | r1 | r2
  c.penalty_weight = 0.0      # multiplies the unweighted penalty (R1: gamma/2)
  c.gp_target = 1.0
  c.n_critic = 1
  c.d_clip = 0.0              # WGAN weight clipping bound; 0 disables
  c.batch_size = batch_size   # global batch, split over all devices
  c.optimizer = ml_collections.ConfigDict(dict(
      name='adam', g_lr=2e-4, d_lr=2e-4, b1=0.5, b2=0.999,
      lr_schedule='constant',  # constant | linear (decay to 0 at num_steps)
  ))
  c.ema_decay = 0.0           # EMA of G weights for evaluation; 0 disables
  c.ema_start = 0
  c.num_steps = num_steps     # generator updates
  c.steps_per_dispatch = steps_per_dispatch  # train steps per compiled call
  # How the n_critic and steps_per_dispatch loops are compiled: scan (one
  # while loop) | unroll (straight-line code) | auto (unroll only conv models
  # with XLA's own conv gradients on the CPU, which XLA runs far slower in a
  # loop body; see gan_stability/train/step.py).
  c.loop_impl = 'auto'
  # Which XLA:CPU op kinds run in the YNNPACK library in the compiled steps:
  # auto (= reduce, measured fastest) | xla (XLA's default) | none | a subset
  # of dot,individual_dot,individual_convolution,eltwise,reduce
  # (gan_stability/compile_options.py). Ignored on GPUs/TPUs.
  c.cpu_ynn_fusions = 'auto'
  c.log_every = log_every
  c.eval_every = eval_every
  c.eval_samples = eval_samples  # the fixed latent batch drawn at each eval
  c.checkpoint_every = checkpoint_every
  c.keep_checkpoints = 2
  # Online alarms in metrics.jsonl (gan_stability/metrics/dynamics.py); 0 = off.
  c.alarm_grad_factor = 100.0  # grad norm > factor x median of last 20 logs
  c.alarm_collapse_ratio = 0.1  # diversity < ratio x max diversity so far
  c.log_sigmas = True           # per-layer spectral norms of D at log steps
  # NaN/Inf in a loss or gradient: stop (DivergenceError), or roll back to the
  # last checkpoint, skip the batches that diverged, re-draw the keys.
  c.on_divergence = 'stop'      # stop | rollback
  c.max_rollbacks = 3
  c.num_devices = 0           # 0: all local devices
  c.write_tensorboard = True
  c.write_samples = True
