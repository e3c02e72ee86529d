"""config.cpu_ynn_fusions: parsing, validation, the XLA option it sets, its
effect on the compiled HLO and (up to float rounding) none on the numbers."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from experiments.configs import mnist, mog
from gan_stability import config as config_lib
from gan_stability import models
from gan_stability.kernels import compile_options as co
from gan_stability.train import gan as gan_lib
from gan_stability.train import task as task_lib

CPU = jax.default_backend() == 'cpu'


@pytest.mark.parametrize('value,kinds', [
    ('auto', ('reduce',)), ('xla', None), ('none', ()), (' XLA ', None),
    ('reduce', ('reduce',)),
    ('individual_dot, reduce,individual_dot', ('individual_dot', 'reduce')),
    ('dot,eltwise,individual_convolution',
     ('dot', 'eltwise', 'individual_convolution')),
])
def test_parse(value, kinds):
  assert co.parse(value) == kinds


@pytest.mark.parametrize('value', ['', 'conv', 'reduce,bogus', ',', 3])
def test_parse_rejects_with_the_field_and_allowed_values(value):
  with pytest.raises(ValueError, match=r'^config\.cpu_ynn_fusions: ') as e:
    co.parse(value)
  if isinstance(value, str):
    assert "'individual_convolution'" in str(e.value) and "'xla'" in str(e.value)


def test_option_value():
  assert co.option_value(('reduce',)) == 'LIBRARY_FUSION_TYPE_REDUCE'
  assert co.option_value(('individual_dot', 'reduce')) == (
      'LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE')
  assert co.option_value(()) == ''


def test_config_validation_names_the_field():
  c = mog.get_config('vanilla')
  assert c.cpu_ynn_fusions == 'auto'
  config_lib.validate(c, num_devices=1)
  c.cpu_ynn_fusions = 'individual_dot,reduce'
  config_lib.validate(c, num_devices=1)
  c.cpu_ynn_fusions = 'fast'
  with pytest.raises(config_lib.ConfigError,
                     match=r"^config\.cpu_ynn_fusions: 'fast' must be 'auto'"):
    config_lib.validate(c, num_devices=1)


def test_old_config_json_upgrades_to_xla_default():
  c = mnist.get_config('wgan_gp')
  c.data.dir = '/x'
  old = c.to_dict()
  del old['cpu_ynn_fusions']
  up = config_lib.upgrade(old)
  assert up['cpu_ynn_fusions'] == 'xla'
  config_lib.validate(ml_collections.ConfigDict(up), num_devices=1)
  assert co.compiler_options(
      ml_collections.ConfigDict(up).cpu_ynn_fusions) == {}
  f = config_lib.schema_for(c)['cpu_ynn_fusions']
  assert config_lib.schema.resumable(f, c) and f.legacy == 'xla'
  # A resumed run may switch the setting (other kernels, the same function).
  new = c.copy_and_resolve_references()
  new.cpu_ynn_fusions = 'none'
  assert config_lib.resume_changes(ml_collections.ConfigDict(up), new) == []


def test_compiler_options():
  c = mog.get_config('vanilla')
  opts = co.compiler_options(c.cpu_ynn_fusions)
  if not CPU:
    assert opts == {}
    return
  if not co._supported('LIBRARY_FUSION_TYPE_REDUCE'):  # pylint: disable=protected-access
    pytest.skip('this jaxlib does not know ' + co.OPTION)
  assert opts == {co.OPTION: 'LIBRARY_FUSION_TYPE_REDUCE'}
  c.cpu_ynn_fusions = 'xla'
  assert co.compiler_options(c.cpu_ynn_fusions) == {}
  c.cpu_ynn_fusions = 'none'
  assert co.compiler_options(c.cpu_ynn_fusions) == {co.OPTION: ''}


def _ynn_ops(fn, *args, **options) -> list[str]:
  """The ops (last part of their op_name) XLA put in YNNPACK fusions."""
  text = jax.jit(fn, compiler_options=options).lower(*args).compile().as_text()
  names = []
  for line in text.splitlines():
    if '"__ynn_fusion"' in line and ' = ' in line:
      m = re.search(r'op_name="[^"]*/([a-z_]+)"', line)
      names.append(m.group(1) if m else '?')
  return sorted(names)


@pytest.mark.skipif(not CPU, reason='an XLA:CPU option')
def test_the_option_moves_ops_out_of_ynnpack():
  """The documented default (convolutions and reductions in YNNPACK) and the
  effect of each setting, read off the compiled HLO."""
  if not co._supported(''):  # pylint: disable=protected-access
    pytest.skip('this jaxlib does not know ' + co.OPTION)
  x = jnp.ones((8, 16, 16, 32))
  k = jnp.ones((3, 3, 32, 64))

  def f(x, k):
    y = jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                     dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
    return y, jnp.max(y, axis=(1, 2))  # y materialised: its own op

  opt = lambda kinds: {co.OPTION: co.option_value(kinds)}
  default = _ynn_ops(f, x, k)
  assert default == ['conv_general_dilated', 'reduce_max']
  assert _ynn_ops(f, x, k, **opt(
      ('individual_dot', 'reduce', 'individual_convolution'))) == default
  assert _ynn_ops(f, x, k, **opt(co.AUTO)) == ['reduce_max']
  assert _ynn_ops(f, x, k, **opt(('individual_convolution',))) == [
      'conv_general_dilated']
  assert not _ynn_ops(f, x, k, **opt(()))


@pytest.mark.skipif(not CPU, reason='an XLA:CPU option')
@pytest.mark.parametrize('config_name', ['mog', 'mnist'])
def test_same_step_up_to_rounding(config_name):
  """One train step with the configs' setting vs XLA's default: the same
  numbers up to float rounding (other kernels, the same ops)."""
  if config_name == 'mog':
    c = mog.get_config('wgan_gp')
    shape = (2,)
  else:
    c = mnist.get_config('vanilla')
    c.data.dir = '/x'
    c.model.update(g_width=8, d_width=8)
    c.batch_size = 8
    shape = (28, 28, 1)
  c.steps_per_dispatch = 1
  # SGD: the update is linear in the gradient (Adam's first step, ~lr * sign(g),
  # amplifies the rounding of near-zero gradient entries).
  c.optimizer.name = 'sgd'
  g, d = models.build(c.model, shape)
  state = gan_lib.init_state(c, g, d, jax.random.key(0), shape)
  batch = {'x': jax.random.uniform(jax.random.key(1),
                                   (1, c.n_critic, c.batch_size) + shape,
                                   minval=-1, maxval=1)}
  outs, ynn = [], []
  for setting in ('xla', 'auto'):
    c.cpu_ynn_fusions = setting
    fn = jax.jit(task_lib.make_multi_step(
        gan_lib.make_train_step(c, g, d), unroll=task_lib.loop_unroll(c)),
                 compiler_options=co.compiler_options(c.cpu_ynn_fusions))
    args = (state, batch, jax.random.key(2))
    ynn.append(fn.lower(*args).compile().as_text().count('"__ynn_fusion"'))
    outs.append(jax.device_get(fn(*args)))
  # The setting changed the compiled step (else this test would be vacuous).
  assert ynn[1] < ynn[0], ynn
  (s0, m0), (s1, m1) = outs
  for a, b in zip(jax.tree.leaves(s0.g_params) + jax.tree.leaves(s0.d_params),
                  jax.tree.leaves(s1.g_params) + jax.tree.leaves(s1.d_params)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
  assert sorted(m0) == sorted(m1)
  for k in m0:
    np.testing.assert_allclose(m0[k], m1[k], rtol=1e-3, atol=1e-5, err_msg=k)


def test_default_compiler_options_are_auto():
  """What the FID Inception network is compiled with."""
  c = mog.get_config('vanilla')
  assert c.cpu_ynn_fusions == 'auto'
  assert co.default_compiler_options() == co.compiler_options(
      c.cpu_ynn_fusions)
