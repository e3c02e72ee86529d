"""Snapshot of the unconditional image models and one train step, to check
that class-conditional support leaves ``model.num_classes = 0`` bitwise
unchanged.

``unconditional.npz`` was written by ``python tests/golden/unconditional_snapshot.py``
on commit a808f79, *before* conditional support existed (so it records the
old behaviour, not the new one); ``tests/test_conditional.py`` recomputes
:func:`snapshot` with the current code and compares. Only functions that
existed then are used here (under their current module names).
"""

import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      'unconditional.npz')
# (model, data shape, G width, D width); z_dim 8, spectral norm on, batch 2.
MODELS = (('dcgan', (28, 28, 1), 8, 8), ('sngan_cnn', (32, 32, 3), 8, 4),
          ('resnet', (32, 32, 3), 4, 4))
Z = 8


def _model_cfg(name, gw, dw):
  return ml_collections.ConfigDict(dict(
      name=name, z_dim=Z, g_width=gw, d_width=dw, g_norm='batch',
      d_norm='none', spectral_norm=True, sn_steps=1, packing=1,
      conv_impl='auto'))


def _flat(prefix, tree, out):
  for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
    key = '/'.join(str(getattr(p, 'key', p)) for p in path)
    out[f'{prefix}/{key}'] = np.asarray(leaf)


PARTS = tuple(m[0] for m in MODELS) + ('step',)


def snapshot(parts=PARTS) -> dict:
  """``{name: array}``: init variables of G and D and their outputs for each
  image model, and the metrics and parameters after one WGAN-GP train step of
  the spectrally normalised DCGAN-28 (only the ``parts`` asked for; the
  random inputs are drawn for all of them, in order)."""
  from gan_stability import models
  from gan_stability.train import gan as gan_lib
  out = {}
  rng = np.random.default_rng(0)
  for name, shape, gw, dw in MODELS:
    g, d = models.build(_model_cfg(name, gw, dw), shape)
    z = jnp.asarray(rng.normal(size=(2, Z)), jnp.float32)
    x = jnp.asarray(rng.uniform(-1, 1, (2,) + shape), jnp.float32)
    if name not in parts:
      continue
    g_vars = g.init(jax.random.key(1), z, train=False)
    d_vars = d.init(jax.random.key(2), x, update_stats=False)
    _flat(f'{name}/G', g_vars, out)
    _flat(f'{name}/D', d_vars, out)
    out[f'{name}/G_out'] = np.asarray(g.apply(g_vars, z, train=False))
    logits, new = d.apply(d_vars, x, update_stats=True, train=True,
                          mutable=['spectral_stats'])
    out[f'{name}/D_out'] = np.asarray(logits)
    _flat(f'{name}/D_stats_after', new, out)

  batch = {'x': jnp.asarray(rng.uniform(-1, 1, (2, 4, 28, 28, 1)),
                            jnp.float32)}
  if 'step' not in parts:
    return out
  c = ml_collections.ConfigDict(dict(
      model=_model_cfg('dcgan', 8, 8), loss='wasserstein', penalty='gp',
      penalty_weight=10.0, gp_target=1.0, n_critic=2, d_clip=0.0,
      ema_decay=0.0, ema_start=0, num_steps=10, loop_impl='scan',
      optimizer=dict(name='adam', g_lr=1e-4, d_lr=1e-4, b1=0.0, b2=0.9,
                     lr_schedule='constant')))
  g, d = models.build(c.model, (28, 28, 1))
  state = gan_lib.init_state(c, g, d, jax.random.key(3), (28, 28, 1))
  step = jax.jit(gan_lib.make_train_step(c, g, d))
  state, metrics = step(state, batch, jax.random.key(4))
  for k in ('d_loss', 'g_loss', 'penalty', 'd_real', 'd_fake'):
    out[f'step/{k}'] = np.asarray(metrics[k])
  _flat('step/g_params', state.g_params, out)
  _flat('step/d_params', state.d_params, out)
  _flat('step/d_cols', state.d_collections, out)
  return out


if __name__ == '__main__':
  np.savez(GOLDEN, **snapshot())
  print('wrote', GOLDEN, os.path.getsize(GOLDEN), 'bytes')
