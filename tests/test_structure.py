"""The library's structure: no import cycles, the loop independent of the
VAE and the sweeps, one declaration per config field, and names that come
from the registries (adding a loss, a penalty or a metric is one entry)."""

import ast
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import mnist, mog
from gan_stability import config as config_lib
from gan_stability import data as data_lib
from gan_stability import kernels, losses, models, optimizers, penalties
from gan_stability.config import schema
from gan_stability.eval import registry as metric_registry
from gan_stability.train import gan as gan_lib

from conftest import REPO

PACKAGE = os.path.join(REPO, 'gan_stability')


def _module_name(path: str) -> str:
  rel = os.path.relpath(path, REPO)[:-len('.py')].replace(os.sep, '.')
  return rel[:-len('.__init__')] if rel.endswith('.__init__') else rel


def import_graph() -> dict[str, set[str]]:
  """Module -> the ``gan_stability`` modules its ``import`` statements name
  (at any depth of the file, function-level imports included):
  ``import a.b`` and ``from a import b`` name module ``a.b`` when it is one,
  else ``a`` (a name defined in ``a``'s ``__init__``)."""
  modules = {}
  for root, _, files in os.walk(PACKAGE):
    for f in files:
      if f.endswith('.py'):
        modules[_module_name(os.path.join(root, f))] = os.path.join(root, f)
  graph = {}
  for name, path in modules.items():
    with open(path) as fh:
      tree = ast.parse(fh.read())
    deps = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        targets = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        assert not node.level, f'{path}: relative import'
        targets = [f'{node.module}.{a.name}' for a in node.names]
      else:
        continue
      for t in targets:
        while t and t not in modules:  # 'pkg.name' -> 'pkg'
          t = t.rpartition('.')[0]
        if t and t != name:
          deps.add(t)
    graph[name] = deps
  return graph


def _cycles(graph) -> list[list[str]]:
  """Strongly connected components of more than one module (Tarjan)."""
  index, low, stack, on, out = {}, {}, [], set(), []
  counter = [0]

  def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      comp = []
      while True:
        w = stack.pop()
        on.discard(w)
        comp.append(w)
        if w == v:
          break
      if len(comp) > 1:
        out.append(sorted(comp))

  for v in sorted(graph):
    if v not in index:
      visit(v)
  return out


def _reachable(graph, start: str) -> set[str]:
  seen, todo = set(), [start]
  while todo:
    v = todo.pop()
    for w in graph[v]:
      if w not in seen:
        seen.add(w)
        todo.append(w)
  return seen


def test_no_import_cycles():
  graph = import_graph()
  assert len(graph) > 40 and 'gan_stability.train.loop' in graph
  assert _cycles(graph) == []


def test_the_loop_imports_neither_the_vae_nor_the_sweeps():
  graph = import_graph()
  deps = _reachable(graph, 'gan_stability.train.loop')
  assert 'gan_stability.train.workdir' in deps  # the graph sees its imports
  assert not {d for d in deps if d.startswith('gan_stability.sweep')}
  assert 'gan_stability.train.vae' not in deps
  assert 'gan_stability.models.vae' not in deps
  assert 'gan_stability.train.gan' not in deps  # it knows Tasks, not GANs
  # kernels know nothing of GANs, configs or models.
  kernel_deps = set().union(*(
      _reachable(graph, m) for m in graph if m.startswith('gan_stability.kernels')))
  assert {d.split('.')[1] for d in kernel_deps} <= {'kernels'}


def test_every_field_is_declared_once_per_group():
  """A field name appears in at most one group that a config can combine
  (the VAE reuses the image model's declarations, the same objects)."""
  for fam, model, dataset in (('gan', 'mlp', 'ring'), ('gan', 'dcgan', 'mnist'),
                              ('vae', 'dcgan', 'mnist')):
    fields = schema.fields_for(family_name=fam, model=model, dataset=dataset)
    c = schema.defaults(family_name=fam, model=model, dataset=dataset)
    assert sorted(config_lib.flatten(c)) == sorted(fields)
  assert schema.VAE['model.g_width'] is schema.IMAGE_MODEL['model.g_width']


def test_experiment_configs_only_override_schema_fields():
  for c in (mog.get_config('wgan_gp'), mnist.get_config('sngan_cond')):
    assert sorted(config_lib.flatten(c)) == sorted(config_lib.schema_for(c))


def test_allowed_values_come_from_the_registries():
  c = mnist.get_config('smoke')
  c.data.dir = '/nonexistent'
  allowed = lambda name: schema.choices(config_lib.schema_for(c)[name], c)
  assert allowed('loss') == list(losses.LOSSES)
  assert allowed('penalty') == ['none'] + list(penalties.PENALTIES)
  assert allowed('model.name') == list(models.MODELS)
  assert allowed('optimizer.name') == list(optimizers.OPTIMIZERS)
  assert allowed('optimizer.lr_schedule') == list(optimizers.SCHEDULES)
  assert allowed('model.conv_impl') == list(kernels.IMPLS)
  assert allowed('loop_impl') == list(kernels.LOOP_IMPLS)
  assert allowed('eval.features') == list(metric_registry.SPACES)
  assert allowed('data.source') == list(data_lib.SOURCES)
  with pytest.raises(config_lib.ConfigError, match=r"^config\.eval\.metrics: "
                     r"unknown \['bogus'\]; allowed: \['digits'"):
    c.eval.metrics = 'bogus'
    config_lib.validate(c, num_devices=1)


def _lsgan_m1_d(real_logits, fake_logits):
  """LSGAN [Mao et al. 2017, eq. 8, a=-1, b=1] (docs/extending.md)."""
  return 0.5 * jnp.mean(jnp.square(real_logits - 1.0)) + 0.5 * jnp.mean(
      jnp.square(fake_logits + 1.0))


def _lsgan_m1_g(fake_logits):
  """LSGAN [Mao et al. 2017, eq. 8, c=0]."""
  return 0.5 * jnp.mean(jnp.square(fake_logits))


def _one_step(c):
  """The metrics of one train step of ``c`` on a fixed batch."""
  g, d = models.build(c.model, (2,))
  state = gan_lib.init_state(c, g, d, jax.random.key(0), (2,))
  batch = {'x': jnp.asarray(np.random.default_rng(0).normal(
      size=(c.n_critic, c.batch_size, 2)), jnp.float32)}
  _, metrics = gan_lib.make_train_step(c, g, d)(state, batch,
                                                jax.random.key(1))
  return {k: float(v) for k, v in metrics.items()}


def test_a_new_loss_is_one_registry_entry(monkeypatch):
  """The worked example of docs/extending.md: one entry in
  ``losses.LOSSES`` makes the loss valid in configs, and the train step
  computes it (checked against the formula on the step's own logits)."""
  c = mog.get_config('smoke')
  c.loss = 'least_squares_m1'
  with pytest.raises(config_lib.ConfigError, match=r'^config\.loss:'):
    config_lib.validate(c, num_devices=1)
  monkeypatch.setitem(losses.LOSSES, 'least_squares_m1',
                      losses.Loss(_lsgan_m1_d, _lsgan_m1_g))
  config_lib.validate(c, num_devices=1)
  m = _one_step(c)
  # d_real, d_fake are the batch means of D's logits; with a constant D
  # the loss would be a function of them alone, so check the identity
  # 1/2 E(r-1)^2 + 1/2 E(f+1)^2 >= 1/2 (E r - 1)^2 + 1/2 (E f + 1)^2.
  assert m['d_loss'] >= 0.5 * (m['d_real'] - 1) ** 2 + 0.5 * (
      m['d_fake'] + 1) ** 2 - 1e-6
  assert m['g_loss'] >= 0.5 * m['g_d_fake'] ** 2 - 1e-6
  r = jnp.asarray([0.5, -1.0, 2.0])
  f = jnp.asarray([1.0, 0.0, -3.0])
  assert float(losses.get_losses('least_squares_m1').d_loss(r, f)) == (
      pytest.approx(0.5 * (0.25 + 4 + 1) / 3 + 0.5 * (4 + 1 + 4) / 3))


def _zero_centred_gp(d_fn, real, fake, key):
  """0-GP [Thanh-Tung et al. 2019] (docs/extending.md)."""
  eps = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1))
  x_hat = eps * real + (1.0 - eps) * fake
  grads = jax.grad(lambda x: jnp.sum(d_fn(x)))(x_hat)
  return jnp.mean(jnp.sum(jnp.square(grads).reshape(len(grads), -1), -1))


def test_a_new_penalty_is_one_registry_entry(monkeypatch):
  """The worked example of docs/extending.md: a penalty registered with
  where it is evaluated is valid in configs, and the train step applies it
  there: the zero-centred GP equals the library's GP with target 0 (whose
  square root has a 1e-12 floor)."""
  c = mog.get_config('smoke')
  c.update(penalty='gp0', penalty_weight=0.5)
  with pytest.raises(config_lib.ConfigError, match=r'^config\.penalty:'):
    config_lib.validate(c, num_devices=1)
  monkeypatch.setitem(penalties.PENALTIES, 'gp0', penalties.Penalty(
      _zero_centred_gp, at='interpolates', needs_key=True))
  config_lib.validate(c, num_devices=1)
  got = _one_step(c)
  c.update(penalty='gp', gp_target=0.0)
  want = _one_step(c)
  assert got.keys() == want.keys()
  for k in got:
    assert got[k] == pytest.approx(want[k], rel=1e-5, abs=1e-6), k
  # A packed D mixes examples: the per-example penalty is refused.
  c.update(penalty='gp0')
  c.model.packing = 2
  with pytest.raises(config_lib.ConfigError, match=r'^config\.penalty: '
                     'gradient penalties are defined per example'):
    config_lib.validate(c, num_devices=1)


def test_penalties_declare_where_they_are_evaluated():
  p = penalties.PENALTIES
  assert (p['gp'].at, p['gp_one_sided'].at, p['r1'].at, p['r2'].at) == (
      'interpolates', 'interpolates', 'real', 'fake')
  assert p['gp'].needs_key and not p['r1'].needs_key
  assert p['gp'].params == {'target': 'gp_target'}


def test_metrics_declare_what_they_need():
  m = metric_registry.METRICS
  assert metric_registry.GREY in m['digits'].needs
  assert metric_registry.STACKED in m['stacked_modes'].needs
  assert (m['fid'].space, m['cfid'].space, m['pr'].space) == (
      'inception', 'classifier', 'features')
  # The order of a record's keys: featureless metrics, then each space.
  assert metric_registry.plan(['dc', 'fid', 'digits', 'cfid', 'pr'],
                              'classifier') == ['digits', 'cfid', 'pr', 'dc',
                                                'fid']
  assert metric_registry.plan(['dc', 'fid', 'digits', 'cfid', 'pr'],
                              'inception') == ['digits', 'cfid', 'fid', 'pr',
                                               'dc']


def test_upgrade_fills_legacy_values_only():
  c = mnist.get_config('smoke').to_dict()
  del c['model']['num_classes'], c['cpu_ynn_fusions']
  up = config_lib.upgrade(c)
  assert up['model']['num_classes'] == 0 and up['cpu_ynn_fusions'] == 'xla'
  m = mog.get_config('smoke').to_dict()
  del m['model']['g_norm'], m['model']['d_maxout'], m['loss']
  up = config_lib.upgrade(m)
  assert up['model']['g_norm'] == 'none' and up['model']['d_maxout'] == 1
  assert 'loss' not in up  # no legacy value: a missing field stays missing
  with pytest.raises(config_lib.ConfigError, match=r'^config\.loss: missing'):
    import ml_collections  # pylint: disable=g-import-not-at-top
    config_lib.validate(ml_collections.ConfigDict(up), num_devices=1)


def test_the_config_reference_is_current():
  """docs/config.md is the schema's own listing (regenerate it with
  ``python -m gan_stability.config.schema > docs/config.md``)."""
  with open(os.path.join(REPO, 'docs', 'config.md')) as f:
    assert f.read() == schema.markdown()
