"""The custom-VJP convolution kernels (gan_stability.kernels) and the conv
modules built on them (gan_stability.models.layers) equal the standard
ones: values, parameter and input gradients, and the second-order gradients
that penalties take."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from gan_stability import kernels
from gan_stability.kernels import common, stride1, strided, weight_grads
from gan_stability.kernels import winograd
from gan_stability.models import layers

_DN = ('NHWC', 'HWIO', 'NHWC')


def _close(a, b, tol=2e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


def _close_to_max(a, b, tol):
  """max |a - b| <= tol * max |b| per leaf: for float32 sums of many large
  terms, where small entries carry the absolute error of large ones."""
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    assert float(jnp.max(jnp.abs(x - y))) <= tol * float(jnp.max(jnp.abs(y)))


def _lax_conv_s2(x, k):
  return jax.lax.conv_general_dilated(x, k, (2, 2), 'SAME',
                                      dimension_numbers=_DN)


def _lax_conv_t2(x, k):
  return jax.lax.conv_transpose(x, k, (2, 2), 'SAME', dimension_numbers=_DN)


def _all_grads(op, x, k, r):
  """y, (dx, dk), and the gradients of a penalty on dx and dk."""
  return jax.jit(lambda x, k, r: _all_grads_impl(op, x, k, r))(x, k, r)


def _all_grads_impl(op, x, k, r):
  loss = lambda x, k: jnp.sum(jnp.sin(op(x, k)) * r)

  def second(x, k):
    dx, dk = jax.grad(loss, argnums=(0, 1))(x, k)
    return jnp.sum(dx ** 2) + jnp.sum(jnp.cos(dk))
  return (op(x, k), jax.grad(loss, argnums=(0, 1))(x, k),
          jax.grad(second, argnums=(0, 1))(x, k))


WGRADS = ('conv', 'matmul')


def _with_matmul(cases):
  """Every case with ``wgrad='conv'`` (the default), the first with
  ``'matmul'`` too (the older forms; the weight-gradient test below covers
  each of their modes)."""
  return [(c, 'conv') for c in cases] + [(cases[0], 'matmul')]


@pytest.mark.parametrize('shape,wgrad', _with_matmul(
    [(2, 5, 6, 3), (1, 1, 1, 2), (3, 4, 3, 1)]))
def test_conv_t2_all_orders_match_lax(shape, wgrad):
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (4, 4, shape[-1], 4))
  r = jax.random.normal(jax.random.key(2), (shape[0], 2 * shape[1],
                                            2 * shape[2], 4))
  op = lambda x, k: strided.conv_t2(x, k, wgrad)
  _close(_all_grads(op, x, k, r), _all_grads(_lax_conv_t2, x, k, r), 1e-4)
  if shape == (1, 1, 1, 2):  # numerical check (slow): the smallest case
    check_grads(op, (x, k), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('shape,wgrad', _with_matmul(
    [(2, 6, 8, 3), (1, 2, 2, 2), (3, 4, 10, 1)]))
def test_conv_s2_all_orders_match_lax(shape, wgrad):
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (4, 4, shape[-1], 5))
  r = jax.random.normal(jax.random.key(2), (shape[0], shape[1] // 2,
                                            shape[2] // 2, 5))
  op = lambda x, k: strided.conv_s2(x, k, wgrad)
  _close(_all_grads(op, x, k, r), _all_grads(_lax_conv_s2, x, k, r), 1e-4)
  if shape == (1, 2, 2, 2):  # numerical check (slow): the smallest case
    check_grads(op, (x, k), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('kp,wgrad', _with_matmul(
    [(3, 'SAME'), (1, 'SAME'), (4, 'SAME'), (5, 'SAME'), (3, 'VALID'),
     (2, 'VALID')]))
def test_conv_s1_all_orders_match_lax(kp, wgrad):
  k, padding = kp
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3))
  kernel = jax.random.normal(jax.random.key(1), (k, k, 3, 4))
  pads = {'SAME': ((k - 1) // 2, k - 1 - (k - 1) // 2), 'VALID': (0, 0)}[padding]
  op = lambda x, kk: stride1.conv_s1(x, kk, (pads, pads), wgrad)
  ref = lambda x, kk: jax.lax.conv_general_dilated(x, kk, (1, 1), padding,
                                                   dimension_numbers=_DN)
  r = jax.random.normal(jax.random.key(2), ref(x, kernel).shape)
  # Relative to each leaf's largest entry: the second-order terms reach
  # ~400, and the forms (taps, matmuls) sum in other orders than lax.
  _close_to_max(_all_grads(op, x, kernel, r), _all_grads(ref, x, kernel, r),
                1e-5)
  if k == 3 and wgrad == 'conv':  # numerical check (slow): once per padding
    check_grads(op, (x, kernel), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize('wgrad', WGRADS)
def test_conv_s1_asymmetric_padding(wgrad):
  """Even kernels pad (low, high) unequally: the adjoint swaps them."""
  x = jax.random.normal(jax.random.key(0), (1, 5, 6, 2))
  kernel = jax.random.normal(jax.random.key(1), (2, 3, 2, 3))
  pads = ((0, 1), (2, 0))
  op = lambda x, kk: stride1.conv_s1(x, kk, pads, wgrad)
  ref = lambda x, kk: jax.lax.conv_general_dilated(x, kk, (1, 1), pads,
                                                   dimension_numbers=_DN)
  r = jax.random.normal(jax.random.key(2), ref(x, kernel).shape)
  _close(_all_grads(op, x, kernel, r), _all_grads(ref, x, kernel, r), 1e-4)


@pytest.mark.parametrize('kp', [((3, 3), ((1, 1), (1, 1))),
                                ((2, 3), ((0, 1), (2, 0))),
                                ((1, 1), ((0, 0), (0, 0))),
                                ((4, 2), ((0, 0), (1, 0)))])
def test_conv_s1_forward_forms_equal_lax(kp):
  """Every forward form of conv_s1 (XLA's conv; taps + shifted sum; im2col
  + matmul) equals lax.conv_general_dilated, even kernels and unequal
  padding included."""
  ks, pads = kp
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3))
  k = jax.random.normal(jax.random.key(1), ks + (3, 5))
  want = jax.lax.conv_general_dilated(x, k, (1, 1), pads,
                                      dimension_numbers=_DN)
  assert set(stride1.S1_FORWARD) == set(stride1.S1_FORMS)
  for form in stride1.S1_FORWARD.values():
    _close(jax.jit(form, static_argnums=2)(x, k, pads), want, 1e-5)


def test_conv_s1_form_rules():
  """The channel rules (measured on the CPU, see ``_s1_form`` and
  ``_s1_wgrad_by_matmul``) on the models' layers: G's 64 -> 3 output conv
  takes the taps, D's 3 -> 64 input conv im2col, both their kernel
  gradients matmuls; the wide layers stay convolutions."""
  form = stride1._s1_form  # pylint: disable=protected-access
  by_mm = stride1._s1_wgrad_by_matmul  # pylint: disable=protected-access
  assert [form(64, 3), form(3, 64), form(64, 128), form(256, 512),
          form(3, 3)] == ['taps', 'im2col', 'conv', 'conv', 'taps']
  assert by_mm(64, 3) and by_mm(3, 64) and by_mm(16, 64)
  assert not by_mm(64, 128) and not by_mm(64, 16)


@pytest.mark.parametrize('form,wgrad_mm', [('conv', False), ('conv', True),
                                           ('taps', False), ('taps', True),
                                           ('im2col', False)])
def test_conv_s1_each_form_all_orders_match_lax(form, wgrad_mm, monkeypatch):
  """conv_s1 with each forward form and kernel-gradient choice forced
  (their VJPs call conv_s1 again, so every order goes through them):
  values and gradients of both orders against lax."""
  monkeypatch.setattr(stride1, '_s1_form', lambda ci, co: form)
  monkeypatch.setattr(stride1, '_s1_wgrad_by_matmul', lambda ci, co: wgrad_mm)
  jax.clear_caches()  # else a trace with other rules is reused
  x = jax.random.normal(jax.random.key(0), (2, 7, 6, 3))
  kernel = jax.random.normal(jax.random.key(1), (3, 3, 3, 4))
  pads = ((1, 1), (0, 2))
  op = lambda x, kk: stride1.conv_s1(x, kk, pads)
  ref = lambda x, kk: jax.lax.conv_general_dilated(x, kk, (1, 1), pads,
                                                   dimension_numbers=_DN)
  jaxpr = str(jax.make_jaxpr(op)(x, kernel))
  assert ('conv_general_dilated' in jaxpr) == (form == 'conv')
  r = jax.random.normal(jax.random.key(2), ref(x, kernel).shape)
  try:
    _close_to_max(_all_grads(op, x, kernel, r),
                  _all_grads(ref, x, kernel, r), 1e-5)
  finally:
    jax.clear_caches()  # later tests trace conv_s1 with the real rules


@pytest.mark.parametrize('shape', [(2, 5, 6, 3), (1, 1, 1, 2), (3, 8, 9, 4)])
def test_conv_t2_forward_forms_equal_lax(shape):
  """Every forward form of conv_t2 (taps + overlap-add; the sub-pixel
  convs: one per row phase, one per phase) equals
  lax.conv_transpose, whichever the size rule picks."""
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (4, 4, shape[-1], 5))
  want = _lax_conv_t2(x, k)
  assert set(strided.T2_FORWARD) == set(strided.T2_FORMS)
  for form in strided.T2_FORWARD.values():
    _close(jax.jit(form)(x, k), want, 1e-5)


def test_conv_t2_form_rule():
  """The size rule (measured on the CPU, see ``_t2_form``): few output
  channels or 4x4 inputs -> taps; even sizes up to 8x8 -> one conv per
  phase; larger or odd -> one conv per row phase."""
  form = strided._t2_form  # pylint: disable=protected-access
  assert [form(4, 4, 256), form(14, 14, 1), form(8, 8, 128), form(7, 7, 64),
          form(16, 16, 64)] == ['taps', 'taps', 'exact', 'rows', 'rows']
  assert all(form(h, h, c) in strided.T2_FORMS for h in range(1, 40)
             for c in (1, 15, 16, 512))


@pytest.mark.parametrize('form', ['taps', 'rows', 'exact'])
def test_conv_t2_each_form_all_orders_match_lax(form, monkeypatch):
  """conv_t2 with each forward form forced (its VJPs call conv_s2 and
  conv_t2 again, so every order goes through the form): values and
  gradients of both orders against lax (8x8 -> 16x16, 16 channels out)."""
  monkeypatch.setattr(strided, '_t2_form', lambda h, w, co: form)
  jax.clear_caches()  # else conv_t2's trace from another form is reused
  x = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  k = jax.random.normal(jax.random.key(1), (4, 4, 3, 16))
  r = jax.random.normal(jax.random.key(2), (2, 16, 16, 16))
  # The forced form is the one traced: 0, 2 or 4 forward convolutions.
  jaxpr = str(jax.make_jaxpr(strided.conv_t2)(x, k))
  assert jaxpr.count('conv_general_dilated') == {
      'taps': 0, 'rows': 2, 'exact': 4}[form]
  try:
    _close_to_max(_all_grads(strided.conv_t2, x, k, r),
                  _all_grads(_lax_conv_t2, x, k, r), 1e-5)
  finally:
    jax.clear_caches()  # later tests trace conv_t2 with the real rule


def _lax_same3(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), 'SAME',
                                      dimension_numbers=_DN)


@pytest.mark.parametrize('shape,co', [((2, 4, 6, 5), 7), ((3, 8, 4, 9), 6),
                                      ((1, 2, 2, 1), 1)])
def test_winograd_conv_all_orders_match_lax(shape, co):
  """Winograd F(2x2, 3x3) is the 3x3 'SAME' conv: values, the gradients
  and the gradients of a penalty on them (every order goes through the
  custom VJPs of _wino / _wino_kernel_grad / the kernel transform), and a
  third order; non-square sizes, odd channel counts."""
  x = jax.random.normal(jax.random.key(0), shape)
  k = jax.random.normal(jax.random.key(1), (3, 3, shape[-1], co))
  r = jax.random.normal(jax.random.key(2), shape[:3] + (co,))
  _close_to_max(_all_grads(winograd.winograd_conv, x, k, r),
                _all_grads(_lax_same3, x, k, r), 1e-5)
  def third(op):  # d/d(x, k) |d/dk |d/dx <tanh(op(x, k)), r>|^2|^2
    gx = lambda x, k: jax.grad(lambda x: jnp.sum(jnp.tanh(op(x, k)) * r))(x)
    gk = lambda x, k: jax.grad(lambda k: jnp.sum(gx(x, k) ** 2))(k)
    return jax.jit(jax.grad(lambda x, k: jnp.sum(gk(x, k) ** 2),
                            argnums=(0, 1)))(x, k)
  if co == 7:  # (slow: one shape)
    _close_to_max(third(winograd.winograd_conv), third(_lax_same3), 1e-5)
    check_grads(winograd.winograd_conv, (x, k), order=2, modes=['rev'], eps=1e-2,
                atol=2e-2, rtol=2e-2)


def test_winograd_transforms_are_adjoint_pairs():
  """<T k, u> = <k, T^T u> for the kernel transform and <O m, y> = <m,
  O^T y> for the output transform, by the explicit transposes; and the
  adjoint direction of _wino with the permutation pi is the conv with
  adj(K) (flipped taps, in/out swapped)."""
  keys = jax.random.split(jax.random.key(0), 6)
  k = jax.random.normal(keys[0], (3, 3, 4, 5))
  u = jax.random.normal(keys[1], (16, 4, 5))
  dot = lambda a, b: float(jnp.vdot(a, b))
  np.testing.assert_allclose(dot(winograd._winograd_kernel(k), u),  # pylint: disable=protected-access
                             dot(k, winograd._winograd_kernel_t(u)), rtol=1e-5)  # pylint: disable=protected-access
  m = jax.random.normal(keys[2], (16, 2 * 3 * 2, 5))
  y = jax.random.normal(keys[3], (2, 6, 4, 5))
  np.testing.assert_allclose(dot(winograd._winograd_output(m, 2, 6, 4), y),  # pylint: disable=protected-access
                             dot(m, winograd._winograd_output_adjoint(y)),  # pylint: disable=protected-access
                             rtol=1e-5)
  dy = jax.random.normal(keys[4], (2, 6, 4, 5))
  got = winograd._wino(dy, winograd._winograd_kernel(k), True)  # pylint: disable=protected-access
  _close_to_max(got, _lax_same3(dy, common.adjoint_kernel(k)), 1e-6)


def test_winograd_rule():
  """3x3 'SAME' stride-1 convs with even sizes up to 32x32 and at least 128
  channels each way (measured, see winograd.applies): the std-CNN D's 128 ->
  256 at 8x8 and 256 -> 512 at 4x4, the ResNet's 128- and 256-channel convs
  up to 32x32; not 64 -> 128, the std-CNN's 3 -> 64 and 64 -> 3, odd or
  larger sizes, other kernels or padding."""
  rule = winograd.applies
  same = ((1, 1), (1, 1))
  assert rule((64, 8, 8, 128), (3, 3, 128, 256), same)
  assert rule((64, 4, 4, 256), (3, 3, 256, 512), same)
  assert rule((64, 32, 32, 128), (3, 3, 128, 128), same)
  assert rule((64, 32, 32, 256), (3, 3, 256, 256), same)
  assert not rule((64, 16, 16, 64), (3, 3, 64, 128), same)
  assert not rule((64, 32, 32, 3), (3, 3, 3, 64), same)
  assert not rule((64, 32, 32, 64), (3, 3, 64, 3), same)
  assert not rule((64, 7, 7, 128), (3, 3, 128, 128), same)
  assert not rule((64, 64, 64, 128), (3, 3, 128, 128), same)
  assert not rule((64, 8, 8, 128), (3, 3, 128, 128), ((0, 0), (0, 0)))
  assert not rule((64, 8, 8, 128), (5, 5, 128, 128), ((2, 2), (2, 2)))


def test_winograd_module_matches_flax_and_is_traced():
  """layers.Conv on a Winograd-sized input equals nn.Conv (values, parameter
  and input gradients, and a penalty's double gradient), traces the
  Winograd matmuls and no convolution; 'fast_matmul' keeps conv_s1."""
  x = jax.random.normal(jax.random.key(0), (2, 4, 4, 128))
  ref, fast = nn.Conv(130, (3, 3)), layers.Conv(130, (3, 3), impl='fast')
  assert winograd.applies(x.shape, (3, 3, 128, 130), ((1, 1), (1, 1)))
  params = ref.init(jax.random.key(1), x)
  _close_to_max(fast.apply(params, x), ref.apply(params, x), 1e-6)

  def penalty(m):
    def f(p):
      dx = jax.grad(lambda x: jnp.sum(jnp.sin(m.apply(p, x))))(x)
      return jnp.sum(dx ** 2) + jnp.sum(jnp.sin(m.apply(p, x)))
    return f
  _close_to_max(jax.grad(penalty(fast))(params),
                jax.grad(penalty(ref))(params), 1e-5)
  jaxpr = str(jax.make_jaxpr(jax.grad(penalty(fast)))(params))
  assert 'conv_general_dilated' not in jaxpr and 'dot_general' in jaxpr
  mm = str(jax.make_jaxpr(layers.Conv(130, (3, 3), impl='fast_matmul').apply)(
      params, x))
  assert 'conv_general_dilated' in mm


def _kernel_grad(op, x, kernel, dy):
  """The kernel's VJP of ``op(x, kernel)`` for output cotangent ``dy``."""
  return jax.vjp(lambda kk: op(x, kk), kernel)[1](dy)[0]


def _lax_valid(x, k):
  return jax.lax.conv_general_dilated(x, k, (1, 1), 'VALID',
                                      dimension_numbers=_DN)


# (weight-gradient function, its modes, the lax op whose kernel VJP it is,
#  x shape, kernel shape, y shape)
_WGRADS = [
    (lambda x, dy, mode: weight_grads.valid_weight_grad(x, dy, 3, 2, mode), ('x', 'dy'),
     _lax_valid, (2, 6, 5, 3), (3, 2, 3, 4), (2, 4, 4, 4)),
    (weight_grads.s2_weight_grad, ('patches', 'dy'), _lax_conv_s2, (2, 6, 4, 3),
     (4, 4, 3, 5), (2, 3, 2, 5)),
    (weight_grads.t2_weight_grad, ('patches', 'dy'), _lax_conv_t2, (2, 3, 2, 5),
     (4, 4, 5, 3), (2, 6, 4, 3)),
    # the canonical-convolution forms (one 'mode' each)
    (lambda x, dy, mode: stride1.s1_conv_weight_grad(
        x, dy, {'same': ((1, 1), (0, 1)), 'valid': ((0, 0), (0, 0))}[mode]),
     ('same', 'valid'), None, (2, 6, 5, 3), (3, 2, 3, 4), None),
    (lambda x, dy, mode: strided.s2_conv_weight_grad(x, dy), ('-',), _lax_conv_s2,
     (2, 6, 4, 3), (4, 4, 3, 5), (2, 3, 2, 5)),
    (lambda x, dy, mode: strided.t2_conv_weight_grad(x, dy), ('-',), _lax_conv_t2,
     (2, 3, 2, 5), (4, 4, 5, 3), (2, 6, 4, 3)),
]


@pytest.mark.parametrize('case', range(len(_WGRADS)))
def test_weight_gradient_modes_match_lax_with_their_gradients(case):
  """Every mode of every weight gradient equals the kernel VJP of the lax
  op, and so do its own gradients in ``x`` and ``dy`` (which the penalties'
  double gradients take)."""
  wgrad, modes, lax_op, xs, ks, ys = _WGRADS[case]
  x = jax.random.normal(jax.random.key(0), xs)
  kernel = jnp.zeros(ks)
  r = jax.random.normal(jax.random.key(2), ks)
  outer = lambda f: jax.jit(jax.grad(
      lambda x, dy: jnp.sum(jnp.sin(f(x, dy)) * r), argnums=(0, 1)))
  for mode in modes:
    op, shape = lax_op, ys
    if lax_op is None:  # s1_conv_weight_grad: the stride-1 conv, its padding
      pads = {'same': ((1, 1), (0, 1)), 'valid': ((0, 0), (0, 0))}[mode]
      op = lambda x, k, pads=pads: jax.lax.conv_general_dilated(
          x, k, (1, 1), pads, dimension_numbers=_DN)
      shape = op(x, kernel).shape
    dy = jax.random.normal(jax.random.key(1), shape)
    ref = lambda x, dy, op=op: _kernel_grad(op, x, kernel, dy)
    want = (jax.jit(ref)(x, dy), outer(ref)(x, dy))
    f = lambda x, dy, mode=mode: wgrad(x, dy, mode)
    _close((jax.jit(f)(x, dy), outer(f)(x, dy)), want, 1e-4)
  if lax_op is not None and len(modes) > 1:
    with pytest.raises(ValueError, match='allowed'):
      wgrad(x, dy, 'nope')


def test_shift_dy_rule_on_the_measured_layers():
  """``'dy'`` mode for large, channel-asymmetric weight gradients only (the
  layers whose timings the rule was set from, batch 64)."""
  s2 = lambda h, c, co: weight_grads._shift_dy(64 * h * h // 4, 64 * (h // 2 + 1) ** 2,  # pylint: disable=protected-access
                                     4 * c, co)
  s1 = lambda h, c, co: weight_grads._shift_dy(64 * h * h, 64 * (h + 2) ** 2, c, co)  # pylint: disable=protected-access
  assert s2(32, 64, 64) and s2(16, 128, 128)
  assert not s2(8, 256, 256)  # 1,024 rows: the patches' deeper matmul wins
  assert not s2(14, 64, 128)  # DCGAN-28's 3,136 rows: 4 % slower in the step
  assert s1(32, 64, 3) and not s1(32, 3, 64) and not s1(32, 64, 64)


@pytest.mark.parametrize('op_name', ['s1', 's2', 't2'])
def test_custom_vjps_in_dy_mode_match_lax(op_name):
  """Matmul weight gradients (``wgrad='matmul'``) at shapes large enough that ``'auto'`` picks the ``'dy'`` weight gradient
  (4,096 rows, few output channels): values and gradients of both orders."""
  if op_name == 's1':
    x, k = jnp.ones((16, 16, 16, 8)), (3, 3, 8, 2)
    op = lambda x, kk: stride1.conv_s1(x, kk, ((1, 1), (1, 1)), 'matmul')
    ref = lambda x, kk: jax.lax.conv_general_dilated(
        x, kk, (1, 1), 'SAME', dimension_numbers=_DN)
    assert weight_grads._shift_dy(4096, 16 * 18 * 18, 8, 2)  # pylint: disable=protected-access
  elif op_name == 's2':
    x, k, ref = jnp.ones((16, 32, 32, 4)), (4, 4, 4, 4), _lax_conv_s2
    op = lambda x, kk: strided.conv_s2(x, kk, 'matmul')
    assert weight_grads._shift_dy(4096, 16 * 17 * 17, 16, 4)  # pylint: disable=protected-access
  else:
    x, k, ref = jnp.ones((16, 16, 16, 4)), (4, 4, 4, 2), _lax_conv_t2
    op = lambda x, kk: strided.conv_t2(x, kk, 'matmul')
    assert weight_grads._shift_dy(4096, 16 * 17 * 17, 8, 4)  # pylint: disable=protected-access
  x = jax.random.normal(jax.random.key(0), x.shape)
  kernel = jax.random.normal(jax.random.key(1), k) * 0.2
  r = jax.random.normal(jax.random.key(2), ref(x, kernel).shape)
  # float32 sums over 4,096 rows (in float64 they agree to 1e-13)
  _close_to_max(_all_grads(op, x, kernel, r), _all_grads(ref, x, kernel, r),
                1e-4)


def test_adjoint_kernel_is_the_transpose():
  """<conv_s2(x, K), y> = <x, conv_t2(y, adj(K))>: the identity the VJPs use."""
  x = jax.random.normal(jax.random.key(0), (2, 6, 4, 3))
  y = jax.random.normal(jax.random.key(1), (2, 3, 2, 5))
  k = jax.random.normal(jax.random.key(2), (4, 4, 3, 5))
  lhs = jnp.vdot(_lax_conv_s2(x, k), y)
  rhs = jnp.vdot(x, _lax_conv_t2(y, common.adjoint_kernel(k)))
  np.testing.assert_allclose(lhs, rhs, rtol=1e-5)


@pytest.mark.parametrize('hw', [(7, 7), (4, 6), (1, 1)])
def test_conv_transpose_module_matches_flax(hw):
  x = jax.random.normal(jax.random.key(0), (2,) + hw + (3,))
  ref = nn.ConvTranspose(5, (4, 4), (2, 2), padding='SAME')
  params = ref.init(jax.random.key(1), x)
  fast = layers.ConvTranspose(5, impl='fast')
  # Same parameter tree: the reference's parameters load unchanged.
  assert jax.tree.map(jnp.shape, fast.init(jax.random.key(1), x)) == \
      jax.tree.map(jnp.shape, params)
  _close(fast.apply(params, x), ref.apply(params, x))
  loss = lambda m: lambda p, x: jnp.sum(jnp.sin(m.apply(p, x)))
  _close(jax.grad(loss(fast), argnums=(0, 1))(params, x),
         jax.grad(loss(ref), argnums=(0, 1))(params, x))


@pytest.mark.parametrize('hw', [(8, 8), (14, 6), (2, 2)])
def test_strided_conv_module_matches_flax_including_double_grad(hw):
  x = jax.random.normal(jax.random.key(0), (2,) + hw + (3,))
  ref = nn.Conv(4, (4, 4), (2, 2), padding='SAME')
  params = ref.init(jax.random.key(1), x)
  fast = layers.Conv(4, (4, 4), (2, 2), impl='fast')
  _close(fast.apply(params, x), ref.apply(params, x))

  def penalty(m):
    def f(p):
      g = jax.grad(lambda xx: jnp.sum(jnp.tanh(m.apply(p, xx))))(x)
      return jnp.mean(jnp.sum(g ** 2, axis=(1, 2, 3)))
    return f
  _close(penalty(fast)(params), penalty(ref)(params))
  _close(jax.grad(penalty(fast))(params), jax.grad(penalty(ref))(params), 1e-4)


def test_other_layers_are_the_standard_ops():
  """Other kernels / strides and odd inputs use XLA's op as is; the stride-1
  forward pass is XLA's op too unless the channels are few (``_s1_form``:
  matmul forms, tested against lax above)."""
  x3 = jax.random.normal(jax.random.key(0), (2, 7, 7, 3))  # odd: no conv_s2
  x17 = jax.random.normal(jax.random.key(0), (2, 7, 7, 17))
  for ref, fast, x in [(nn.Conv(4, (4, 4), (2, 2), padding='SAME'),
                        layers.Conv(4, (4, 4), (2, 2), impl='fast'), x3),
                       (nn.Conv(4, (3, 3), (2, 2), padding='SAME'),
                        layers.Conv(4, (3, 3), (2, 2), impl='fast'), x3),
                       (nn.Conv(9, (3, 3), padding='SAME'),
                        layers.Conv(9, (3, 3), impl='fast'), x17),
                       (nn.Conv(9, (3, 3), padding='VALID'),
                        layers.Conv(9, (3, 3), padding='VALID', impl='fast'), x17),
                       (nn.ConvTranspose(4, (5, 5), (2, 2), padding='SAME'),
                        layers.ConvTranspose(4, (5, 5), impl='fast'), x3)]:
    params = ref.init(jax.random.key(1), x)
    np.testing.assert_array_equal(fast.apply(params, x), ref.apply(params, x))


def test_fast_modules_use_the_custom_vjp():
  """The fast path is taken (the jaxpr calls the custom-VJP function)."""
  x = jnp.ones((1, 8, 8, 2))
  for m in (layers.Conv(3, (4, 4), (2, 2), impl='fast'),
            layers.Conv(3, (3, 3), impl='fast'),
            layers.ConvTranspose(3, impl='fast')):
    p = m.init(jax.random.key(0), x)
    assert 'custom_vjp_call' in str(jax.make_jaxpr(m.apply)(p, x))
    native = m.clone(impl='native')
    assert 'custom_vjp_call' not in str(jax.make_jaxpr(native.apply)(p, x))


def test_resolve_impl():
  assert kernels.resolve_impl('native') == 'native'
  # auto: the custom VJPs on the CPU, the vendor kernels elsewhere.
  assert kernels.resolve_impl('auto') == ('fast' if jax.default_backend() == 'cpu'
                                     else 'native')
  assert kernels.resolve_impl('fast') == 'fast'
  assert kernels.resolve_impl('fast_matmul') == 'fast_matmul'
  with pytest.raises(ValueError, match='config.model.conv_impl'):
    kernels.resolve_impl('cudnn')


def test_unroll_loops():
  """The scan-vs-unroll policy: 'auto' unrolls only conv models whose convs
  resolve to 'native' on the CPU backend; explicit values win; an unknown
  value names config.loop_impl and lists the allowed ones."""
  on_cpu = jax.default_backend() == 'cpu'
  auto = lambda conv_model, impl: kernels.unroll_loops(
      'auto', conv_model=conv_model, conv_impl=impl)
  assert auto(True, 'native') is on_cpu
  assert auto(False, 'native') is False
  assert auto(True, 'fast') is False and auto(True, 'auto') is False
  assert kernels.unroll_loops('unroll', conv_model=False,
                              conv_impl='fast') is True
  assert kernels.unroll_loops('scan', conv_model=True,
                              conv_impl='native') is False
  with pytest.raises(ValueError, match=r"^config\.loop_impl: 'loop'; "
                     r"allowed: \['auto', 'scan', 'unroll'\]$"):
    kernels.unroll_loops('loop', conv_model=True, conv_impl='auto')


def test_fast_matmul_modules_equal_fast_ones():
  """``impl='fast_matmul'``: the same function and gradients, the matmul
  weight gradients in the jaxpr of the gradient."""
  x3 = jax.random.normal(jax.random.key(0), (2, 8, 8, 3))
  x17 = jax.random.normal(jax.random.key(0), (2, 8, 8, 17))
  # (the 3x3 conv with 17 -> 9 channels: 'fast' uses the conv forms there)
  for m, x in ((layers.Conv(4, (4, 4), (2, 2), impl='fast'), x3),
               (layers.Conv(9, (3, 3), impl='fast'), x17),
               (layers.ConvTranspose(4, impl='fast'), x3)):
    p = m.init(jax.random.key(1), x)
    mm = m.clone(impl='fast_matmul')
    loss = lambda mod: lambda p: jnp.sum(jnp.sin(mod.apply(p, x)))
    _close(mm.apply(p, x), m.apply(p, x))
    _close(jax.grad(loss(mm))(p), jax.grad(loss(m))(p), 1e-4)
    convs = lambda mod: str(jax.make_jaxpr(jax.grad(loss(mod)))(p)).count(
        'conv_general_dilated')
    assert convs(m) > convs(mm)


@pytest.mark.parametrize('op_name', ['s1', 's2', 't2'])
def test_conv_weight_gradients_compile_to_canonical_convs_in_a_loop(op_name):
  """The reason for :func:`weight_grads.conv_weight_grad`: inside a ``lax.scan`` body
  (which XLA's ConvCanonicalization pass does not visit) every convolution
  of the compiled gradient is already NHWC/HWIO/NHWC, so XLA:CPU runs it on
  Eigen, not as its naive loop nest; lax's own kernel gradient is not."""
  if jax.default_backend() != 'cpu':
    pytest.skip('an XLA:CPU property')
  # s1: enough channels for the convolution forms (_s1_form,
  # _s1_wgrad_by_matmul); few channels take matmuls, no convolution at all.
  x = jnp.ones((4, 8, 8, 17 if op_name == 's1' else 3))
  k = {'s1': (3, 3, 17, 9)}.get(op_name, (4, 4, 3, 5))
  assert stride1._s1_form(17, 9) == 'conv'  # pylint: disable=protected-access
  assert not stride1._s1_wgrad_by_matmul(17, 9)  # pylint: disable=protected-access
  fast = {'s1': lambda x, k: stride1.conv_s1(x, k, ((1, 1), (1, 1))),
          's2': strided.conv_s2, 't2': strided.conv_t2}[op_name]
  lax_op = {'s1': lambda x, k: jax.lax.conv_general_dilated(
      x, k, (1, 1), 'SAME', dimension_numbers=_DN),
            's2': _lax_conv_s2, 't2': _lax_conv_t2}[op_name]

  def labels(op):
    def body(c, _):
      g = jax.grad(lambda kk: jnp.sum(jnp.sin(op(x, kk))))(c)
      return c - 0.1 * g, None
    step = lambda k: jax.lax.scan(body, k, None, length=2)[0]
    text = jax.jit(step).lower(jnp.ones(k)).compile().as_text()
    return {part.split(',')[0] for part in text.split('dim_labels=')[1:]}
  assert labels(fast) == {'b01f_01io->b01f'}
  assert labels(lax_op) != {'b01f_01io->b01f'}
