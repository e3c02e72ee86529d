"""The stabilisers as config fields of the GAN train step (issue #25):
augment (DiffAugment, ADA), instance noise, one-sided label smoothing,
DRAGAN, lazy regularisation, CR / bCR / zCR, LeCam, and the game updates.

Each is checked at the first D update of one train step, where D still has
its initial parameters: the step's metric must equal the quantity
recomputed here from the same batch, the same keys (derived as the step
derives them) and the pure functions of gan_stability.regularizers /
augment. Then exact resume and bad combinations.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mnist, mog
from gan_stability import augment, regularizers
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability.errors import ConfigError
from gan_stability.train import gan, tasks
from gan_stability.train import task as task_lib
from tests.conftest import write_fake_idx

ROOT = jax.random.key(7)


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('idx')
  write_fake_idx(str(d), num_train=64, num_test=16)
  return str(d)


def _setup(c):
  config_lib.validate(c, num_devices=1)
  task = tasks.make_task(c)
  state = task.init_state(jax.random.key(0))
  it = data_lib.make_iterator(c, seed=0)
  draws = [[next(it) for _ in range(task.draws_per_step)] for _ in range(2)]
  batch = {k: np.stack([np.stack([d[k] for d in row]) for row in draws])
           for k in task.batch_names}
  return task, state, batch


def _run(c, steps=1, *, new_state=False):
  """Metrics ``[steps]`` of the step, and what the checks need (the state
  after the steps with ``new_state``)."""
  task, state, batch = _setup(c)
  step = jax.jit(task_lib.make_multi_step(task.make_train_step()))
  batch = {k: v[:steps] for k, v in batch.items()}
  after, metrics = step(jax.tree.map(jnp.copy, state), batch, ROOT)
  out = ({k: np.asarray(v) for k, v in metrics.items()}, task, state, batch)
  return out + (after,) if new_state else out


def _g_key():
  """The key of step 0's G update."""
  return jax.random.split(jax.random.fold_in(ROOT, 0), 2)[1]


def _first_update_keys():
  """The keys of the first D update of step 0 (train_step's derivation)."""
  key = jax.random.split(jax.random.fold_in(ROOT, 0), 2)[0]  # n_critic = 1
  k_z, k_pen = jax.random.split(key)
  return key, k_z, k_pen


def _d(task, state):
  return lambda x: task.discriminator.apply(
      {'params': state.d_params, **state.d_collections}, x,
      update_stats=False, train=True)


def _fake(task, state, k_z, n):
  z = jax.random.normal(k_z, (n, task.config.model.z_dim), jnp.float32)
  x, _ = task.generator.apply({'params': state.g_params,
                               **state.g_collections}, z, train=True,
                              mutable=list(state.g_collections))
  return x, z


def _mog(**kw):
  c = mog.get_config('smoke')
  c.update(steps_per_dispatch=1, **kw)
  return c


def _image(idx_dir, **kw):
  c = mnist.get_config('smoke')
  c.data.dir = idx_dir
  c.update(**kw)
  return c


def test_label_smoothing_shifts_d_loss_by_s_times_mean_real_logit():
  # smoothed - standard = mean[(1-s) sp(-r) + s sp(r)] - mean sp(-r)
  #                     = s mean[sp(r) - sp(-r)] = s mean(r).
  base, *_ = _run(_mog())
  smooth, *_ = _run(_mog(label_smoothing=0.1))
  np.testing.assert_allclose(smooth['d_loss'][0] - base['d_loss'][0],
                             0.1 * base['d_real'][0], rtol=1e-4, atol=1e-6)


def test_lazy_penalty_is_k_times_on_its_steps_and_zero_between():
  every, *_ = _run(_mog(penalty='r1', penalty_weight=1.0), steps=2)
  lazy, *_ = _run(_mog(penalty='r1', penalty_weight=1.0, penalty_every=2),
                  steps=2)
  np.testing.assert_allclose(lazy['penalty'][0], 2 * every['penalty'][0],
                             rtol=1e-5)
  assert lazy['penalty'][1] == 0.0 and every['penalty'][1] > 0


def test_lazy_penalty_counts_d_updates_across_critic_steps():
  # n_critic 2, every 2: D update 0 of each step has 2 x R1, update 1 has 0,
  # so the step's metric (their mean) is R1 at update 0 = R1 at the initial
  # D on the first real batch.
  m, task, state, batch = _run(_mog(penalty='r1', penalty_weight=1.0,
                                    penalty_every=2, n_critic=2))
  from gan_stability import penalties
  want = penalties.r1_penalty(_d(task, state), batch['x'][0, 0])
  np.testing.assert_allclose(m['penalty'][0], want, rtol=1e-5)


def test_dragan_penalty_at_the_first_update():
  m, task, state, batch = _run(_mog(penalty='dragan', penalty_weight=10.0,
                                    dragan_c=0.7, gp_target=0.5))
  _, _, k_pen = _first_update_keys()
  want = regularizers.dragan_penalty(_d(task, state), batch['x'][0, 0],
                                     k_pen, k=0.5, c=0.7)
  np.testing.assert_allclose(m['penalty'][0], want, rtol=1e-5)


def test_instance_noise_schedule_and_what_d_sees():
  m, task, state, batch = _run(_mog(instance_noise=0.2,
                                    instance_noise_steps=4), steps=2)
  np.testing.assert_allclose(m['noise_sigma'], [0.2, 0.15], rtol=1e-6)
  key, _, _ = _first_update_keys()
  noisy = regularizers.instance_noise(
      batch['x'][0, 0], jax.random.fold_in(
          jax.random.fold_in(key, gan.NOISE_STREAM), 0), 0.2)
  np.testing.assert_allclose(m['d_real'][0], np.mean(_d(task, state)(noisy)),
                             rtol=1e-5, atol=1e-7)


def test_diffaugment_of_real_and_fake(idx_dir):
  c = _image(idx_dir, augment='diffaugment', augment_policy='translation')
  m, task, state, batch, after = _run(c, new_state=True)
  key, k_z, _ = _first_update_keys()
  d = _d(task, state)
  real = batch['x'][0, 0]
  aug = lambda x, side: augment.diffaugment(
      x, jax.random.fold_in(jax.random.fold_in(key, gan.AUGMENT_STREAM),
                            side), policy='translation')
  np.testing.assert_allclose(m['d_real'][0], np.mean(d(aug(real, 0))),
                             rtol=1e-5, atol=1e-6)
  fake, _ = _fake(task, state, k_z, real.shape[0])
  np.testing.assert_allclose(m['d_fake'][0], np.mean(d(aug(fake, 1))),
                             rtol=1e-5, atol=1e-6)
  plain, *_ = _run(_image(idx_dir))
  assert not np.isclose(plain['d_real'][0], m['d_real'][0])
  # G's loss sees D (after its update) on augmented samples.
  k_g = _g_key()
  fake_g, _ = _fake(task, state, k_g, real.shape[0])
  np.testing.assert_allclose(
      m['g_d_fake'][0], np.mean(_d(task, after)(augment.diffaugment(
          fake_g, jax.random.fold_in(jax.random.fold_in(
              k_g, gan.AUGMENT_STREAM), 1), policy='translation'))),
      rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize('kind', ['cr', 'bcr', 'cr_noise'])
def test_consistency_terms(idx_dir, kind):
  noise = 0.3 if kind == 'cr_noise' else 0.0
  kind = kind.split('_')[0]
  c = _image(idx_dir, consistency=kind, augment_policy='translation,cutout',
             cr_weight_real=3.0, instance_noise=noise)
  if kind == 'bcr':
    c.cr_weight_fake = 2.0
  m, task, state, batch = _run(c)
  key, k_z, _ = _first_update_keys()
  d = _d(task, state)
  k_t = jax.random.fold_in(key, gan.CONSISTENCY_STREAM)
  t = lambda x, side: augment.diffaugment(
      x, jax.random.fold_in(k_t, side), policy='translation,cutout')
  real = batch['x'][0, 0]
  if noise:  # CR compares D on what the adversarial loss saw: the noisy x
    real = regularizers.instance_noise(real, jax.random.fold_in(
        jax.random.fold_in(key, gan.NOISE_STREAM), 0), noise)
  want = 3.0 * np.mean((d(real) - d(t(real, 0))) ** 2)
  if kind == 'bcr':
    fake, _ = _fake(task, state, k_z, real.shape[0])
    want += 2.0 * np.mean((d(fake) - d(t(fake, 1))) ** 2)
  np.testing.assert_allclose(m['consistency'][0], want, rtol=1e-4)


def test_zcr_terms():
  c = _mog(consistency='zcr', zcr_sigma=0.5, zcr_weight_d=4.0,
           zcr_weight_g=0.25)
  m, task, state, batch = _run(c)
  _, k_z, _ = _first_update_keys()
  d = _d(task, state)
  n = batch['x'].shape[2]
  fake, z = _fake(task, state, k_z, n)
  z_noisy = regularizers.perturb_latents(
      z, jax.random.fold_in(k_z, gan.CONSISTENCY_STREAM), sigma=0.5)
  noisy, _ = _fake_at(task, state, z_noisy)
  np.testing.assert_allclose(
      m['consistency'][0], 4.0 * np.mean((d(fake) - d(noisy)) ** 2),
      rtol=1e-4)
  # G's term, at G's update: -0.25 E_i ||G(z_i) - G(z_i + dz_i)||^2, added
  # to the loss G minimises (so G pushes the two apart).
  k_g = _g_key()
  fake_g, z_g = _fake(task, state, k_g, n)
  noisy_g, _ = _fake_at(task, state, regularizers.perturb_latents(
      z_g, jax.random.fold_in(k_g, gan.CONSISTENCY_STREAM), sigma=0.5))
  diff = np.asarray(fake_g, np.float64) - np.asarray(noisy_g, np.float64)
  want = -0.25 * np.mean(np.sum(diff.reshape(n, -1) ** 2, -1))
  np.testing.assert_allclose(m['g_consistency'][0], want, rtol=1e-4)
  # With D's term off, D's update is the baseline's, and G's loss is the
  # baseline's plus that term.
  off, *_ = _run(_mog(consistency='zcr', zcr_sigma=0.5, zcr_weight_d=0.0,
                      zcr_weight_g=0.25))
  base, *_ = _run(_mog())
  np.testing.assert_allclose(off['d_loss'], base['d_loss'], rtol=1e-6)
  np.testing.assert_allclose(off['g_loss'][0] - base['g_loss'][0],
                             off['g_consistency'][0], rtol=1e-4, atol=1e-7)


def test_ada_augments_at_p_and_adjusts_p_every_interval(idx_dir):
  # interval 2: p is unchanged by D update 0 and adjusted after update 1 by
  # ada_update on the mean of the two updates' r_t; kimg sets the step to
  # batch * 2 / (kimg * 1000) = 0.1.
  c = _image(idx_dir, augment='ada', ada_p=0.5, ada_interval=2,
             ada_transforms='xflip,brightness')
  batch_size = c.batch_size
  c.ada_kimg = batch_size * 2 / 100.0
  m, task, state, batch, after = _run(c, steps=2, new_state=True)
  key, k_z, _ = _first_update_keys()
  aug = lambda x, side: augment.ada_augment(
      x, jax.random.fold_in(jax.random.fold_in(key, gan.AUGMENT_STREAM),
                            side), 0.5, transforms='xflip,brightness')
  d = _d(task, state)
  real = batch['x'][0, 0]
  real_logits = d(aug(real, 0))
  np.testing.assert_allclose(m['d_real'][0], np.mean(real_logits),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(m['ada_rt'][0], augment.ada_rt(real_logits),
                             atol=1e-6)
  fake, _ = _fake(task, state, k_z, real.shape[0])
  np.testing.assert_allclose(m['d_fake'][0], np.mean(d(aug(fake, 1))),
                             rtol=1e-5, atol=1e-6)
  want = augment.ada_update(0.5, np.mean(m['ada_rt']), target=0.6,
                            batch_size=batch_size, interval=2,
                            kimg=c.ada_kimg)
  np.testing.assert_allclose(m['ada_p'], [0.5, want], atol=1e-7)
  assert abs(float(want) - 0.5) == pytest.approx(0.1)
  np.testing.assert_allclose(after.stabilisers['ada_p'], want, atol=1e-7)
  assert float(after.stabilisers['ada_signs']) == 0.0


def test_lecam_term_and_its_anchors():
  m, task, state, batch, after = _run(_mog(lecam_weight=0.3,
                                           lecam_decay=0.9), steps=2,
                                      new_state=True)
  key, k_z, _ = _first_update_keys()
  d = _d(task, state)
  real = batch['x'][0, 0]
  fake, _ = _fake(task, state, k_z, real.shape[0])
  r, f = d(real), d(fake)
  # Anchors start at 0 and include this update's means (decay 0.9).
  want = 0.3 * regularizers.lecam(r, f, 0.1 * np.mean(r), 0.1 * np.mean(f))
  np.testing.assert_allclose(m['lecam'][0], want, rtol=1e-5, atol=1e-8)
  np.testing.assert_allclose(
      after.stabilisers['lecam_real'],
      0.9 * 0.1 * m['d_real'][0] + 0.1 * m['d_real'][1], rtol=1e-5)
  np.testing.assert_allclose(
      after.stabilisers['lecam_fake'],
      0.9 * 0.1 * m['d_fake'][0] + 0.1 * m['d_fake'][1], rtol=1e-5)


def test_simultaneous_game_steps_both_players_from_the_same_point():
  # SGD: (g, d) <- (g, d) - lr (dL_G/dg, dL_D/dd), both at the initial
  # parameters, on the D update's real batch and latents.
  c = _mog(game='simultaneous')
  c.optimizer.update(name='sgd', b1=0.0, g_lr=0.05, d_lr=0.1)
  m, task, state, batch, after = _run(c, new_state=True)
  from gan_stability import losses
  d_loss, g_loss = losses.get_losses(c.loss)
  _, k_z, _ = _first_update_keys()
  real = batch['x'][0, 0]
  z = jax.random.normal(k_z, (real.shape[0], c.model.z_dim), jnp.float32)
  G = lambda g: task.generator.apply({'params': g}, z, train=True)
  D = lambda d, x: task.discriminator.apply(
      {'params': d, **state.d_collections}, x, update_stats=False,
      train=True)
  u_d = jax.grad(lambda d: d_loss(D(d, real), D(d, G(state.g_params))))(
      state.d_params)
  u_g = jax.grad(lambda g: g_loss(D(state.d_params, G(g))))(state.g_params)
  for new, old, u, lr in ((after.g_params, state.g_params, u_g, 0.05),
                          (after.d_params, state.d_params, u_d, 0.1)):
    jax.tree.map(lambda a, b, g: np.testing.assert_allclose(
        a, b - lr * g, rtol=1e-5, atol=1e-6), new, old, u)
  alternating, *_ = _run(_mog())
  assert not np.isclose(m['g_d_fake'][0], alternating['g_d_fake'][0])


def test_new_stabilisers_resume_exactly(tmp_path):
  def config(steps):
    c = _mog(lecam_weight=0.3, game='optimistic')
    c.update(num_steps=steps, write_tensorboard=False, eval_samples=64,
             log_every=1, eval_every=1, checkpoint_every=1)
    return c
  whole = tasks.train_and_evaluate(config(3), str(tmp_path / 'whole'))
  tasks.train_and_evaluate(config(1), str(tmp_path / 'split'))
  again = tasks.train_and_evaluate(config(3), str(tmp_path / 'split'))
  assert again == whole


def test_ada_resumes_exactly(idx_dir, tmp_path):
  def config(steps):
    c = _image(idx_dir, augment='ada', ada_p=0.5, ada_interval=1,
               ada_kimg=0.01, ada_transforms='xflip,translate')
    c.update(num_steps=steps, write_tensorboard=False, write_samples=False,
             log_every=1, eval_every=steps, checkpoint_every=1)
    c.eval.metrics = ''
    return c
  whole = tasks.train_and_evaluate(config(3), str(tmp_path / 'whole'))
  tasks.train_and_evaluate(config(1), str(tmp_path / 'split'))
  again = tasks.train_and_evaluate(config(3), str(tmp_path / 'split'))
  assert again == whole
  assert whole['ada_p'] != 0.5  # p moved


def _fake_at(task, state, z):
  return task.generator.apply({'params': state.g_params,
                               **state.g_collections}, z, train=True,
                              mutable=list(state.g_collections))


def test_stabilisers_resume_exactly(tmp_path):
  def config(steps):
    c = _mog(consistency='zcr', instance_noise=0.1, instance_noise_steps=6,
             penalty='dragan', penalty_weight=1.0, penalty_every=3,
             label_smoothing=0.1)
    c.update(num_steps=steps, write_tensorboard=False, eval_samples=64,
             log_every=1, eval_every=1, checkpoint_every=1)
    return c
  whole = tasks.train_and_evaluate(config(4), str(tmp_path / 'whole'))
  tasks.train_and_evaluate(config(2), str(tmp_path / 'split'))
  again = tasks.train_and_evaluate(config(4), str(tmp_path / 'split'))
  assert again == whole
  from gan_stability import trained
  np.testing.assert_array_equal(
      trained.load(str(tmp_path / 'split')).sample(8, raw=True),
      trained.load(str(tmp_path / 'whole')).sample(8, raw=True))


@pytest.mark.parametrize('change,field', [
    (dict(augment='diffaugment'), 'config.augment'),
    (dict(consistency='cr'), 'config.consistency'),
    (dict(label_smoothing=0.1, loss='wasserstein'), 'config.label_smoothing'),
    (dict(penalty_every=4), 'config.penalty_every'),
    (dict(instance_noise_steps=10), 'config.instance_noise_steps'),
    (dict(augment='flip'), 'config.augment'),
    (dict(augment_policy='color,rotate'), 'config.augment_policy'),
    (dict(consistency='icr'), 'config.consistency'),
    (dict(consistency='zcr', cr_weight_fake=1.0), 'config.cr_weight_fake'),
    (dict(zcr_sigma=0.1), 'config.zcr_sigma'),
    (dict(penalty='r1', penalty_weight=1.0, dragan_c=0.2), 'config.dragan_c'),
    (dict(augment='ada'), 'config.augment'),
    (dict(ada_target=0.5), 'config.ada_target'),
    (dict(lecam_decay=0.9), 'config.lecam_decay'),
    (dict(game='extragradient', n_critic=2), 'config.n_critic'),
    (dict(game='optimistic', consensus_gamma=1.0), 'config.consensus_gamma'),
    (dict(game='adam'), 'config.game'),
])
def test_bad_combinations_name_the_field(change, field):
  c = _mog(**change)
  with pytest.raises(ConfigError, match='^' + field.replace('.', r'\.')):
    config_lib.validate(c, num_devices=1)


STABILISER_FIELDS = ('augment', 'augment_policy', 'instance_noise',
                     'instance_noise_steps', 'label_smoothing',
                     'penalty_every', 'dragan_c', 'consistency',
                     'cr_weight_real', 'cr_weight_fake', 'zcr_sigma',
                     'zcr_weight_d', 'zcr_weight_g', 'ada_transforms', 'ada_p',
                     'ada_target', 'ada_interval', 'ada_kimg', 'lecam_weight',
                     'lecam_decay', 'game', 'consensus_gamma')


def test_old_configs_read_the_stabilisers_as_off():
  new = mog.get_config('smoke').to_dict()
  old = {k: v for k, v in new.items() if k not in STABILISER_FIELDS}
  up = config_lib.upgrade(old)
  assert {k: up[k] for k in STABILISER_FIELDS} == {
      k: new[k] for k in STABILISER_FIELDS}
  assert (up['augment'], up['instance_noise'], up['label_smoothing'],
          up['penalty_every'], up['consistency']) == ('none', 0.0, 0.0, 1,
                                                      'none')
  import ml_collections
  config_lib.validate(ml_collections.ConfigDict(up), num_devices=1)


def test_ada_with_a_packed_discriminator_is_refused(idx_dir):
  c = _image(idx_dir, augment='ada')
  c.model.packing = 2
  with pytest.raises(ConfigError, match=r"^config\.augment: 'ada'.*packing=2"):
    config_lib.validate(c, num_devices=1)
