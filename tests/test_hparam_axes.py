"""Sweep axes run in one vmapped program (issue #27, item 1).

A sweep axis over a vmappable field (``Field.vmappable`` in the config
schema) with ``in_one_program=True`` trains its points as one program; each
point must still be its own run: the same metrics records, samples and
checkpoints as a separate ``train_and_evaluate`` run (up to the float
rounding of vmapped matmuls), resumed bitwise like one. Every vmappable
field is checked at the step level against its members' own steps
(members at 0 included where the schema allows 0); shape-changing axes are
refused before anything compiles.
"""

import dataclasses
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mnist, mog
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability.sweep import runner, spec as sw
from gan_stability.train import gan, loop, tasks, train_and_evaluate
from gan_stability.train import seeds as seeds_lib
from gan_stability.train import task as task_lib
from tests.conftest import write_fake_idx
from tests.test_sweep import _restore  # pylint: disable=g-bad-import-order

SMOKE = 'experiments/configs/mog.py:smoke'
# mog.py:smoke, 4 steps: records at 2 and 4, evaluation and checkpoints at 4.
QUIET = {'write_tensorboard': False, 'write_samples': False,
         'eval_samples': 128, 'checkpoint_every': 4}
RTOL, ATOL = 1e-5, 1e-6


def _numbers(record):
  return {k: v for k, v in record.items()
          if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _records(wd):
  with open(os.path.join(wd, 'metrics.jsonl')) as f:
    return [json.loads(line) for line in f]


def _assert_same_run(got_wd, want_wd, config, *, exact=False):
  """The run in ``got_wd`` is the run in ``want_wd``: config.json, every
  metrics record (keys and values), the final samples and the last
  checkpoint (arrays and metadata); bitwise with ``exact``."""
  with open(os.path.join(got_wd, 'config.json')) as a, open(
      os.path.join(want_wd, 'config.json')) as b:
    assert a.read() == b.read()
  got, want = _records(got_wd), _records(want_wd)
  assert [sorted(r) for r in got] == [sorted(r) for r in want]
  if exact:
    assert got == want
  for g, w in zip(got, want):
    ng, nw = _numbers(g), _numbers(w)
    np.testing.assert_allclose([ng[k] for k in sorted(nw)],
                               [nw[k] for k in sorted(nw)], rtol=RTOL,
                               atol=ATOL, err_msg=str(sorted(nw)))
    assert {k: v for k, v in g.items() if k not in ng} == {
        k: v for k, v in w.items() if k not in nw}  # alarms, flags
  (sg, mg), (sw_, mw) = _restore(got_wd, config), _restore(want_wd, config)
  assert mg == mw
  assert jax.tree.structure(sg) == jax.tree.structure(sw_)
  for x, y in zip(jax.tree.leaves(sg), jax.tree.leaves(sw_)):
    if exact:
      np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    else:
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=RTOL,
                                 atol=ATOL)
  if not exact:
    np.testing.assert_allclose(tasks.final_samples(config, got_wd),
                               tasks.final_samples(config, want_wd),
                               rtol=RTOL, atol=ATOL)


def _sweep_vs_separate(tmp_path, sweep):
  """Runs ``sweep``'s single unit as one program and each point alone;
  asserts that every point is its own separate run."""
  points = sw.expand(sweep)
  (unit,) = sw.units(sweep, points)
  assert unit.vmapped and len(unit.points) == len(points)
  wd = str(tmp_path / 'sweep')
  assert set(runner.run_unit(wd, unit, quiet=True).values()) == {'ok'}
  for p in points:
    alone = str(tmp_path / 'alone' / p.name)
    train_and_evaluate(p.config, alone)
    _assert_same_run(runner.run_dir(wd, p), alone, p.config)
    with open(os.path.join(runner.run_dir(wd, p), runner.POINT_FILE)) as f:
      assert json.load(f) == {'name': p.name, 'group': p.group,
                              'values': p.values}
  return points


def test_penalty_weight_grid_equals_separate_runs(tmp_path):
  sweep = sw.Sweep(base=SMOKE, overrides={**QUIET, 'penalty': 'gp'},
                   axes=sw.axis('penalty_weight', [0.01, 0.1, 1.0],
                                in_one_program=True))
  points = _sweep_vs_separate(tmp_path, sweep)
  # Names and report groups are those of separate points.
  assert [(p.name, p.group) for p in points] == [
      (f'penalty_weight={w}', f'penalty_weight={w}') for w in (0.01, 0.1, 1.0)]


def test_learning_rate_axes_equal_separate_runs(tmp_path):
  """Adam under a linear schedule, both rates varying (zipped)."""
  sweep = sw.Sweep(
      base=SMOKE, overrides={**QUIET, 'optimizer.lr_schedule': 'linear'},
      axes=sw.zip(sw.axis('optimizer.g_lr', [1e-4, 1e-3, 1e-2],
                          in_one_program=True),
                  sw.axis('optimizer.d_lr', [3e-3, 3e-4, 3e-5],
                          in_one_program=True)))
  _sweep_vs_separate(tmp_path, sweep)


def test_adam_beta_axes_equal_separate_runs(tmp_path):
  """Adam's beta1 and beta2 (zipped) in one program: each point equals its
  own run."""
  sweep = sw.Sweep(
      base=SMOKE, overrides=QUIET,
      axes=sw.zip(sw.axis('optimizer.b1', [0.0, 0.5, 0.9],
                          in_one_program=True),
                  sw.axis('optimizer.b2', [0.9, 0.99, 0.999],
                          in_one_program=True)))
  _sweep_vs_separate(tmp_path, sweep)


def test_sgd_momentum_axis_in_one_program_is_refused():
  """SGD's b1 (momentum) decides the optimiser state's structure: not
  vmappable with SGD (with Adam it is)."""
  sweep = sw.Sweep(base=SMOKE, overrides={'optimizer.name': 'sgd'},
                   axes=sw.axis('optimizer.b1', [0.0, 0.9],
                                in_one_program=True))
  with pytest.raises(sw.SweepError, match=(
      r"sweep axis 'optimizer\.b1'.*needs a vmappable field")):
    sw.expand(sweep)
  assert 'optimizer.b1' not in gan.vmappable_fields(
      sw.expand(dataclasses.replace(sweep, axes=sw.axis(
          'optimizer.b1', [0.0, 0.9])))[0].config)


def test_grid_times_seeds_is_one_program_of_k_times_s(tmp_path):
  """R1 weight x 2 seeds, both in one program (4 members); the sweep file
  records the in-one-program axes."""
  sweep = sw.Sweep(base=SMOKE, overrides={**QUIET, 'penalty': 'r1'},
                   axes=sw.product(sw.axis('penalty_weight', [0.1, 3.0],
                                           in_one_program=True),
                                   sw.axis('seed', [0, 5])),
                   seeds_in_one_program=True)
  points = _sweep_vs_separate(tmp_path, sweep)
  assert [p.group for p in points] == ['penalty_weight=0.1'] * 2 + [
      'penalty_weight=3.0'] * 2
  runner.write_sweep_file(str(tmp_path), sweep, points, {})
  with open(tmp_path / runner.SWEEP_FILE) as f:
    meta = json.load(f)
  assert meta['in_one_program'] == ['penalty_weight']
  assert meta['seeds_in_one_program'] is True


def test_member_at_zero_logs_what_its_own_run_logs(tmp_path):
  """Instance noise 0 in a group that adds noise: no noise, and no
  ``noise_sigma`` metric (its own run has none)."""
  sweep = sw.Sweep(base=SMOKE, overrides=QUIET,
                   axes=sw.axis('instance_noise', [0.0, 0.2],
                                in_one_program=True))
  points = _sweep_vs_separate(tmp_path, sweep)
  zero, noisy = (_records(runner.run_dir(str(tmp_path / 'sweep'), p))
                 for p in points)
  assert 'noise_sigma' not in zero[0]
  assert noisy[0]['noise_sigma'] == pytest.approx(0.2)


def test_resume_of_a_vmapped_grid_is_bitwise(tmp_path):
  """N steps, then resumed to 2N, equals 2N straight (metrics.jsonl and
  the checkpoints' arrays, exactly); a member whose checkpoint is ahead runs
  in a program of its own and still equals its separate run."""
  base = mog.get_config('smoke')
  base.update(penalty='r1', ema_decay=0.9, num_steps=8, **QUIET)
  configs = [seeds_lib.seed_config(base, 0) for _ in range(2)]
  for c, w in zip(configs, (0.1, 1.0)):
    c.penalty_weight = w
  short = [c.copy_and_resolve_references() for c in configs]
  for c in short:
    c.num_steps = 4
  straight = [str(tmp_path / f'straight{i}') for i in range(2)]
  part = [str(tmp_path / f'part{i}') for i in range(2)]
  seeds_lib.train_points(configs, straight)
  seeds_lib.train_points(short, part)
  assert [_records(p)[-1]['step'] for p in part] == [4, 4]
  seeds_lib.train_points(configs, part)
  for a, b, c in zip(straight, part, configs):
    _assert_same_run(b, a, c, exact=True)
  # Different start steps: two programs.
  ahead = [str(tmp_path / f'ahead{i}') for i in range(2)]
  train_and_evaluate(short[1], ahead[1])
  out = seeds_lib.train_points(configs, ahead)
  assert [r['status'] for r in out] == ['ok', 'ok']
  for a, b, c in zip(straight, ahead, configs):
    _assert_same_run(b, a, c)


# ------------------------------------------------------------ refusals ----

@pytest.mark.parametrize('field, values', [
    ('model.g_hidden', [16, 32]), ('batch_size', [16, 32]),
    ('n_critic', [1, 2]), ('loss', ['hinge', 'wasserstein']),
    ('ema_start', [0, 2]), ('variant', ['smoke', 'hinge_r1'])])
def test_shape_changing_axis_in_one_program_is_refused(field, values):
  sweep = sw.Sweep(base=SMOKE, axes=sw.product(
      sw.axis('penalty_weight', [0.0], in_one_program=True),
      sw.axis(field, values, in_one_program=True)))
  with pytest.raises(sw.SweepError, match=(
      rf"sweep axis '{field}': in_one_program=True needs a vmappable field"
      r".*The vmappable fields: \['optimizer\.b1', 'optimizer\.b2', "
      r"'penalty_weight', 'gp_target', .*"
      r"'optimizer\.g_lr'.*'zcr_weight_g'")):
    sw.expand(sweep)
  with pytest.raises(sw.SweepError, match='seeds_in_one_program'):
    sw.axis('seed', [0, 1], in_one_program=True)


def test_units_group_points_that_differ_only_in_program_axes():
  sweep = sw.Sweep(base=SMOKE, axes=sw.product(
      sw.axis('loss', ['hinge', 'wasserstein']),
      sw.axis('penalty', ['r1']),
      sw.axis('penalty_weight', [0.1, 1.0], in_one_program=True),
      sw.axis('seed', [0, 1])))
  points = sw.expand(sweep)
  # Without seeds_in_one_program: K members of one seed each.
  units = sw.units(sweep, points)
  assert [(u.name, len(u.points)) for u in units] == [
      ('loss=hinge,penalty=r1,seed=0', 2), ('loss=hinge,penalty=r1,seed=1', 2),
      ('loss=wasserstein,penalty=r1,seed=0', 2),
      ('loss=wasserstein,penalty=r1,seed=1', 2)]
  assert {p.values['seed'] for p in units[0].points} == {0}
  assert units[0].points[1].group == 'loss=hinge,penalty=r1,penalty_weight=1.0'
  both = sw.Sweep(base=SMOKE, axes=sweep.axes, seeds_in_one_program=True)
  units = sw.units(both, sw.expand(both))
  assert [(u.name, len(u.points)) for u in units] == [
      ('loss=hinge,penalty=r1', 4), ('loss=wasserstein,penalty=r1', 4)]
  plan = runner.Plan(units, ['todo', 'todo'])
  assert runner.dry_run_lines('/nonexistent', plan, True)[0] == (
      'todo     loss=hinge,penalty=r1  [penalty_weight=0.1,seed=0 | '
      'penalty_weight=0.1,seed=1 | penalty_weight=1.0,seed=0 | '
      'penalty_weight=1.0,seed=1 in one program]')


def test_train_points_refuses_configs_that_differ_in_a_shape(tmp_path):
  a, b = mog.get_config('smoke'), mog.get_config('smoke')
  b.model.g_hidden = 32
  with pytest.raises(ValueError, match=r"differ in \['model.g_hidden'\], "
                     'which cannot vary within one vmapped program'):
    seeds_lib.train_points([a, b], [str(tmp_path / 'a'), str(tmp_path / 'b')])
  assert not os.listdir(tmp_path / 'a')  # nothing written
  with pytest.raises(ValueError, match=r"hparams \['batch_size'\]"):
    tasks.make_task(a).make_train_step(hparams=('batch_size',))


def test_states_of_other_layouts_run_as_separate_programs(tmp_path,
                                                          monkeypatch):
  """ema_decay 0 has no EMA in its state: it does not share the program of
  ema_decay > 0 (nor do LeCam's anchors of lecam_weight > 0)."""
  base = mog.get_config('smoke')
  configs = []
  for ema, lecam in ((0.0, 0.0), (0.9, 0.0), (0.99, 0.0), (0.9, 0.5)):
    c = base.copy_and_resolve_references()
    c.update(ema_decay=ema, lecam_weight=lecam)
    configs.append(c)
  calls = []
  monkeypatch.setattr(loop, 'train_group', lambda task, cs, wds, prefix: (
      calls.append([(c.ema_decay, c.lecam_weight) for c in cs]) or
      [{'status': 'ok'}] * len(cs)))
  seeds_lib.train_points(configs, [str(tmp_path / str(i)) for i in range(4)])
  assert calls == [[(0.0, 0.0)], [(0.9, 0.0), (0.99, 0.0)], [(0.9, 0.5)]]
  monkeypatch.undo()
  with pytest.raises(ValueError, match='differ in layout'):
    loop.train_group(tasks.make_task(configs[0]), configs[:2],
                     [str(tmp_path / 'x'), str(tmp_path / 'y')])


def test_vmappable_fields_are_the_steps_hparams():
  c = mog.get_config('smoke')
  fields = gan.vmappable_fields(c)
  assert set(fields) == set(gan.step_hparams(c))
  assert {'penalty_weight', 'optimizer.g_lr', 'optimizer.d_lr', 'ema_decay',
          'optimizer.b1', 'optimizer.b2',
          'lecam_weight', 'instance_noise', 'cr_weight_real',
          'cr_weight_fake', 'zcr_weight_d', 'zcr_weight_g',
          'consensus_gamma', 'gp_target', 'dragan_c'} <= set(fields)
  assert tasks.make_task(c).vmappable_fields() == fields


# ------------------------------------------- every field, step by step ----

# Each case: a base config (the model, and the switches of the fields'
# stabilisers) and two members differing in many vmappable fields at once,
# the first at 0 wherever the schema allows it (a member at 0 of a branch the
# group takes: noise, label smoothing, clipping) and the second with
# large values. Together the cases cover every vmappable field (checked).
CASES = {
    'mlp_gp_zcr_lecam': ('mog', {
        'penalty': 'gp', 'n_critic': 2, 'consistency': 'zcr',
        'optimizer.lr_schedule': 'linear', 'ema_start': 1}, [
            {'penalty_weight': 0.1, 'gp_target': 0.0, 'd_clip': 0.0,
             'label_smoothing': 0.0, 'instance_noise': 0.0,
             'lecam_weight': 0.3, 'lecam_decay': 0.0, 'ema_decay': 0.5,
             'zcr_sigma': 0.01, 'zcr_weight_d': 0.0, 'zcr_weight_g': 0.0,
             'optimizer.g_lr': 1e-4, 'optimizer.d_lr': 1e-2,
             'optimizer.b1': 0.0, 'optimizer.b2': 0.9},
            {'penalty_weight': 10.0, 'gp_target': 1.0, 'd_clip': 0.05,
             'label_smoothing': 0.2, 'instance_noise': 0.3,
             'lecam_weight': 1.0, 'lecam_decay': 0.99, 'ema_decay': 0.999,
             'zcr_sigma': 0.3, 'zcr_weight_d': 5.0, 'zcr_weight_g': 2.0,
             'optimizer.g_lr': 1e-2, 'optimizer.d_lr': 1e-4,
             'optimizer.b1': 0.9, 'optimizer.b2': 0.999}]),
    'mlp_dragan_consensus_sgd': ('mog', {
        'penalty': 'dragan', 'game': 'consensus', 'optimizer.name': 'sgd',
        'optimizer.b1': 0.9}, [
            {'dragan_c': 0.1, 'consensus_gamma': 0.0, 'penalty_weight': 1.0,
             'optimizer.g_lr': 1e-3},
            {'dragan_c': 2.0, 'consensus_gamma': 10.0, 'penalty_weight': 0.1,
             'optimizer.g_lr': 1e-2}]),
    'image_bcr_rmsprop': ('mnist', {
        'consistency': 'bcr', 'augment_policy': 'translation',
        'optimizer.name': 'rmsprop', 'penalty': 'r1'}, [
            {'cr_weight_real': 0.0, 'cr_weight_fake': 0.0,
             'optimizer.d_lr': 1e-4, 'penalty_weight': 1.0},
            {'cr_weight_real': 10.0, 'cr_weight_fake': 2.0,
             'optimizer.d_lr': 1e-3, 'penalty_weight': 0.1}]),
}


def test_the_cases_cover_every_vmappable_field():
  covered = {f for _, _, members in CASES.values() for m in members for f in m}
  assert covered == set(gan.vmappable_fields(mog.get_config('smoke')))


@pytest.fixture(scope='module')
def idx_dir(tmp_path_factory):
  d = tmp_path_factory.mktemp('idx')
  write_fake_idx(str(d), num_train=64, num_test=16)
  return str(d)


@pytest.mark.parametrize('case', sorted(CASES))
def test_members_of_a_group_step_match_their_own_steps(case, request):
  """Two steps of the group's program (vmapped over the members, the
  fields an input) against each member's own jitted step on the same
  state, batch and key: the same new state and the metrics its own step
  returns, within rtol 1e-5."""
  data, overrides, values = CASES[case]
  if data == 'mnist':
    base = mnist.get_config('smoke')
    base.data.dir = request.getfixturevalue('idx_dir')
  else:
    base = mog.get_config('smoke')
  for k, v in overrides.items():
    sw.set_field(base, k, v, 'test')
  configs = []
  for member in values:
    c = base.copy_and_resolve_references()
    for k, v in member.items():
      sw.set_field(c, k, v, 'test')
    config_lib.validate(c, num_devices=1)
    configs.append(c)
  data_shape = tasks.make_task(base).data_shape
  members = [gan.GANTask(c, data_shape) for c in configs]
  fields = loop.group_hparams(members[0], configs)
  assert set(fields) == set(values[0])
  program = gan.GANTask(loop.program_config(configs, fields), data_shape)
  group_step = jax.jit(jax.vmap(task_lib.make_multi_step(
      program.make_train_step(hparams=fields), hparams=True)))
  it = data_lib.make_iterator(base, seed=0)
  n_critic, steps = members[0].draws_per_step, 2
  batch = {'x': np.stack([np.stack([next(it)['x'] for _ in range(n_critic)])
                          for _ in range(steps)])}
  states = [t.init_state(jax.random.key(i)) for i, t in enumerate(members)]
  keys = [jax.random.key(100 + i) for i in range(len(members))]
  hp = {f: np.array([loop.hparam_value(c, f) for c in configs], np.float32)
        for f in fields}
  got_state, got = group_step(
      jax.tree.map(lambda *xs: jnp.stack(xs), *states),
      jax.tree.map(lambda x: np.stack([x] * len(members)), batch),
      jnp.stack(keys), hp)
  for i, t in enumerate(members):
    want_state, want = jax.jit(task_lib.make_multi_step(t.make_train_step()))(
        states[i], batch, keys[i])
    assert set(want) <= set(got) and set(want) == t.metric_names()
    for k in want:
      np.testing.assert_allclose(np.asarray(got[k][i]), np.asarray(want[k]),
                                 rtol=RTOL, atol=ATOL,
                                 err_msg=f'{values[i]}: {k}')
    assert jax.tree.structure(want_state) == jax.tree.structure(
        jax.tree.map(lambda x: x[i], got_state))
    for x, y in zip(jax.tree.leaves(got_state), jax.tree.leaves(want_state)):
      np.testing.assert_allclose(np.asarray(x[i]), np.asarray(y), rtol=RTOL,
                                 atol=ATOL, err_msg=str(values[i]))
