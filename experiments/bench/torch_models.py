"""PyTorch twins of the library's GAN models and train step, for benchmarks.

Used by :mod:`experiments.bench.train_steps` only. torch is optional and not a
dependency of the package; nothing in ``gan_stability`` imports this file.

* :func:`build` - ``(G, D)`` ``torch.nn.Module`` s for a config's ``model``
  block, layer for layer the Flax modules of :mod:`gan_stability.models`
  (``mlp``, ``dcgan``, ``sngan_cnn``, ``resnet``). Submodules carry the Flax
  names (``block_0.conv_1`` is ``block_0/conv_1``), so :func:`copy_from_flax`
  can load a JAX state's parameters, batch-norm statistics and spectral-norm
  vectors into them; images are NCHW.
* :class:`TorchGAN` - the train step of :mod:`gan_stability.train.gan` in
  eager PyTorch: ``n_critic`` discriminator updates, each on its own real
  batch, then one generator update; losses, penalty and Adam from the config.

Layout conversions done by :func:`copy_from_flax`: ``Conv`` HWIO -> OIHW;
``ConvTranspose`` HWIO -> IOHW with the kernel flipped in space (``lax.
conv_transpose`` does not flip, ``torch.nn.ConvTranspose2d`` does); dense
layers next to a reshape between (H, W, C) and (C, H, W) orders have their
rows or columns permuted.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

# gan_stability.models.norms: batch-norm running averages with decay 0.9
# (torch momentum 0.1) and epsilon 1e-5.
BN_MOMENTUM = 0.1
EPS = 1e-5

ACTIVATIONS = {
    'relu': F.relu,
    'leaky_relu': lambda x: F.leaky_relu(x, 0.2),
    'tanh': torch.tanh,
    'elu': F.elu,
}


# ----------------------------------------------------------------- layers ---


def _same_pad(size: int, k: int, s: int) -> int:
  """XLA's symmetric ``'SAME'`` padding (torch's ``padding``) for one axis."""
  out = -(-size // s)
  total = max((out - 1) * s + k - size, 0)
  if total % 2:
    raise NotImplementedError(f'asymmetric SAME padding (size {size}, kernel '
                              f'{k}, stride {s}) has no torch twin here')
  return total // 2


def conv(cin: int, cout: int, k: int, s: int, size: int, bias: bool = True):
  """``layers.Conv(cout, (k, k), (s, s), 'SAME')`` on ``size x size`` input."""
  return nn.Conv2d(cin, cout, k, s, padding=_same_pad(size, k, s), bias=bias)


def conv_transpose(cin: int, cout: int, k: int, bias: bool = True):
  """``layers.ConvTranspose(cout, (k, k), (2, 2), 'SAME')``: output 2x input."""
  if k != 4:
    raise NotImplementedError('only 4x4 stride-2 transposed convolutions')
  return nn.ConvTranspose2d(cin, cout, k, 2, padding=1, bias=bias)


def dense(cin: int, cout: int, bias: bool = True, *, nhwc_in=None,
          nhwc_out=None):
  """``nn.Dense``; ``nhwc_in`` / ``nhwc_out`` = (H, W, C) when the Flax layer
  reads / writes features in (H, W, C) order and torch in (C, H, W)."""
  layer = nn.Linear(cin, cout, bias=bias)
  layer.nhwc_in, layer.nhwc_out = nhwc_in, nhwc_out
  return layer


class ChannelLayerNorm(nn.Module):
  """``norms.norm_layer('layer')``: normalise over (C, H, W) of each example,
  per-channel scale and offset (Flax ``LayerNorm(reduction_axes=(1, 2, 3))``)."""

  def __init__(self, channels: int):
    super().__init__()
    self.weight = nn.Parameter(torch.ones(channels))
    self.bias = nn.Parameter(torch.zeros(channels))

  def forward(self, x):
    x = F.layer_norm(x, x.shape[1:], eps=EPS)
    return x * self.weight[:, None, None] + self.bias[:, None, None]


def norm(kind: str, channels: int) -> nn.Module:
  if kind == 'none':
    return nn.Identity()
  if kind == 'batch':
    return nn.BatchNorm2d(channels, eps=EPS, momentum=BN_MOMENTUM)
  if kind == 'layer':
    return ChannelLayerNorm(channels)
  raise ValueError(f'normalisation {kind!r}')


def _sn(module: nn.Module, on: bool, steps: int) -> nn.Module:
  return torch_spectral_norm(module, n_power_iterations=steps) if on else module


# ----------------------------------------------------------------- models ---


class MLPGenerator(nn.Module):
  def __init__(self, z_dim, out_dim, hidden, num_layers, activation):
    super().__init__()
    self.act = ACTIVATIONS[activation]
    self.num_layers = num_layers
    for i in range(num_layers):
      setattr(self, f'dense_{i}', dense(z_dim if i == 0 else hidden, hidden))
    self.out = dense(hidden, out_dim)

  def forward(self, z):
    h = z
    for i in range(self.num_layers):
      h = self.act(getattr(self, f'dense_{i}')(h))
    return self.out(h)


class MLPDiscriminator(nn.Module):
  def __init__(self, in_dim, hidden, num_layers, activation, sn, sn_steps):
    super().__init__()
    self.act = ACTIVATIONS[activation]
    self.num_layers = num_layers
    for i in range(num_layers):
      setattr(self, f'dense_{i}', _sn(dense(in_dim if i == 0 else hidden, hidden),
                                      sn, sn_steps))
    self.out = _sn(dense(hidden, 1), sn, sn_steps)

  def forward(self, x):
    h = x.reshape(x.shape[0], -1)
    for i in range(self.num_layers):
      h = self.act(getattr(self, f'dense_{i}')(h))
    return self.out(h).squeeze(-1)


class ConvGenerator(nn.Module):
  """DCGAN (``dcgan.DCGANGenerator``) and SN-GAN CNN (``cnn.SNGANGenerator``):
  dense -> (BN, ReLU) -> 4x4 stride-2 deconvs with (BN, ReLU) -> output layer
  (a deconv for DCGAN, a 3x3 conv for the SN-GAN CNN) -> tanh."""

  def __init__(self, z_dim, base, widths, channels, norm_kind, out_conv: bool):
    super().__init__()
    bias = norm_kind != 'batch'
    self.base, self.w0 = base, widths[0]
    self.dense = dense(z_dim, base * base * widths[0], bias,
                       nhwc_out=(base, base, widths[0]))
    self.bn_0 = norm(norm_kind, widths[0])
    self.n_up = len(widths)
    for i in range(1, len(widths)):
      setattr(self, f'deconv_{i}', conv_transpose(widths[i - 1], widths[i], 4, bias))
      setattr(self, f'bn_{i}', norm(norm_kind, widths[i]))
    if out_conv:
      self.conv_out = conv(widths[-1], channels, 3, 1, base * 2 ** (len(widths) - 1))
    else:
      self.deconv_out = conv_transpose(widths[-1], channels, 4)

  def forward(self, z):
    h = self.dense(z).view(z.shape[0], self.w0, self.base, self.base)
    h = F.relu(self.bn_0(h))
    for i in range(1, self.n_up):
      h = F.relu(getattr(self, f'bn_{i}')(getattr(self, f'deconv_{i}')(h)))
    out = self.conv_out if hasattr(self, 'conv_out') else self.deconv_out
    return torch.tanh(out(h))


class ConvDiscriminator(nn.Module):
  """``blocks.conv_discriminator``: ``(features, kernel, stride)`` convs, norm
  after all but the first, LeakyReLU(slope), flatten (H, W, C), dense."""

  def __init__(self, in_shape, specs, norm_kind, slope, sn, sn_steps):
    super().__init__()
    size, _, cin = in_shape
    self.slope, self.n = slope, len(specs)
    for i, (features, k, s) in enumerate(specs):
      normed = i > 0 and norm_kind != 'none'
      setattr(self, f'conv_{i}', _sn(conv(cin, features, k, s, size,
                                          bias=not (normed and norm_kind == 'batch')),
                                     sn, sn_steps))
      if normed:
        setattr(self, f'norm_{i}', norm(norm_kind, features))
      size, cin = -(-size // s), features
    self.out = _sn(dense(size * size * cin, 1, nhwc_in=(size, size, cin)),
                   sn, sn_steps)

  def forward(self, x):
    h = x
    for i in range(self.n):
      h = getattr(self, f'conv_{i}')(h)
      if hasattr(self, f'norm_{i}'):
        h = getattr(self, f'norm_{i}')(h)
      h = F.leaky_relu(h, self.slope)
    return self.out(h.flatten(1)).squeeze(-1)


def _up(x):
  return F.interpolate(x, scale_factor=2, mode='nearest')


class GBlockUp(nn.Module):
  def __init__(self, cin, features, size, norm_kind):
    super().__init__()
    self.bn_1 = norm(norm_kind, cin)
    self.conv_1 = conv(cin, features, 3, 1, 2 * size)
    self.bn_2 = norm(norm_kind, features)
    self.conv_2 = conv(features, features, 3, 1, 2 * size)
    self.shortcut = conv(cin, features, 1, 1, 2 * size)

  def forward(self, x):
    h = self.conv_1(_up(F.relu(self.bn_1(x))))
    h = self.conv_2(F.relu(self.bn_2(h)))
    return h + self.shortcut(_up(x))


class ResNetGenerator(nn.Module):
  def __init__(self, z_dim, out_shape, width, norm_kind):
    super().__init__()
    size, _, channels = out_shape
    self.base, self.width = size // 8, width
    self.dense = dense(z_dim, self.base ** 2 * width,
                       nhwc_out=(self.base, self.base, width))
    for i in range(3):
      setattr(self, f'block_{i}', GBlockUp(width, width, self.base * 2 ** i, norm_kind))
    self.bn_out = norm(norm_kind, width)
    self.conv_out = conv(width, channels, 3, 1, size)

  def forward(self, z):
    h = self.dense(z).view(z.shape[0], self.width, self.base, self.base)
    for i in range(3):
      h = getattr(self, f'block_{i}')(h)
    return torch.tanh(self.conv_out(F.relu(self.bn_out(h))))


class DBlock(nn.Module):
  def __init__(self, cin, features, size, downsample, optimized, norm_kind,
               sn, sn_steps):
    super().__init__()
    self.downsample, self.optimized = downsample, optimized
    if not optimized:
      self.norm_1 = norm(norm_kind, cin)
    self.conv_1 = _sn(conv(cin, features, 3, 1, size), sn, sn_steps)
    self.norm_2 = norm(norm_kind, features)
    self.conv_2 = _sn(conv(features, features, 3, 1, size), sn, sn_steps)
    self.learnable = optimized or downsample or cin != features
    if self.learnable:
      sc_size = size // 2 if optimized and downsample else size
      self.shortcut = _sn(conv(cin, features, 1, 1, sc_size), sn, sn_steps)

  def forward(self, x):
    h = x if self.optimized else F.relu(self.norm_1(x))
    h = self.conv_1(h)
    h = self.conv_2(F.relu(self.norm_2(h)))
    if self.downsample:
      h = F.avg_pool2d(h, 2)
    sc = x
    if self.optimized:
      sc = self.shortcut(F.avg_pool2d(sc, 2) if self.downsample else sc)
    elif self.learnable:
      sc = self.shortcut(sc)
      sc = F.avg_pool2d(sc, 2) if self.downsample else sc
    return h + sc


class ResNetDiscriminator(nn.Module):
  def __init__(self, in_shape, width, norm_kind, sn, sn_steps):
    super().__init__()
    size, _, cin = in_shape
    specs = ((True, True), (True, False), (False, False), (False, False))
    for i, (down, optimized) in enumerate(specs):
      setattr(self, f'block_{i}', DBlock(cin, width, size, down, optimized,
                                         norm_kind, sn, sn_steps))
      size, cin = size // 2 if down else size, width
    self.out = _sn(dense(width, 1), sn, sn_steps)

  def forward(self, x):
    h = x
    for i in range(4):
      h = getattr(self, f'block_{i}')(h)
    return self.out(F.relu(h).sum(dim=(2, 3))).squeeze(-1)


def build(model_cfg, data_shape) -> tuple[nn.Module, nn.Module]:
  """``(G, D)`` twins of ``gan_stability.models.build(model_cfg, data_shape)``."""
  m = model_cfg
  if m.packing != 1:
    raise NotImplementedError('torch twins: model.packing must be 1')
  if m.name == 'mlp':
    g = MLPGenerator(m.z_dim, data_shape[0], m.g_hidden, m.g_layers,
                     m.g_activation)
    d = MLPDiscriminator(data_shape[0], m.d_hidden, m.d_layers, m.d_activation,
                         m.spectral_norm, m.sn_steps)
    return g, d
  size, _, channels = data_shape
  if m.name == 'dcgan':
    from gan_stability.models import dcgan  # pylint: disable=g-import-not-at-top
    base, n = dcgan.layout(size)
    g = ConvGenerator(m.z_dim, base, [m.g_width * 2 ** (n - 1 - i) for i in range(n)],
                      channels, m.g_norm, out_conv=False)
    d = ConvDiscriminator(data_shape, [(m.d_width * 2 ** i, 4, 2) for i in range(n)],
                          m.d_norm, 0.2, m.spectral_norm, m.sn_steps)
    return g, d
  if m.name == 'sngan_cnn':
    from gan_stability.models import cnn  # pylint: disable=g-import-not-at-top
    g = ConvGenerator(m.z_dim, size // 8,
                      [max(1, m.g_width // 2 ** i) for i in range(4)], channels,
                      m.g_norm, out_conv=True)
    d = ConvDiscriminator(data_shape, [(m.d_width * mult, k, s)
                                       for k, s, mult in cnn.D_LAYERS],
                          m.d_norm, 0.1, m.spectral_norm, m.sn_steps)
    return g, d
  if m.name == 'resnet':
    return (ResNetGenerator(m.z_dim, data_shape, m.g_width, m.g_norm),
            ResNetDiscriminator(data_shape, m.d_width, m.d_norm,
                                m.spectral_norm, m.sn_steps))
  raise NotImplementedError(f'torch twins: model {m.name!r}')


# ------------------------------------------------------- loading weights ---


def num_params(module: nn.Module) -> int:
  return sum(p.numel() for p in module.parameters())


def _weight(module: nn.Module) -> torch.Tensor:
  if parametrize.is_parametrized(module, 'weight'):
    return module.parametrizations.weight.original
  return module.weight


def _flax_to_torch(module: nn.Module, name: str, value: np.ndarray) -> np.ndarray:
  """A Flax parameter ``name`` of ``module``'s twin, in torch's layout."""
  if isinstance(module, nn.Linear):
    if name == 'kernel':
      if module.nhwc_out is not None:
        h, w, c = module.nhwc_out
        value = value.reshape(-1, h, w, c).transpose(0, 3, 1, 2).reshape(value.shape)
      if module.nhwc_in is not None:
        h, w, c = module.nhwc_in
        value = value.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(value.shape)
      return value.T
    if module.nhwc_out is not None:  # bias
      h, w, c = module.nhwc_out
      return value.reshape(h, w, c).transpose(2, 0, 1).ravel()
    return value
  if isinstance(module, nn.ConvTranspose2d) and name == 'kernel':
    return value[::-1, ::-1].transpose(2, 3, 0, 1)
  if isinstance(module, nn.Conv2d) and name == 'kernel':
    return value.transpose(3, 2, 0, 1)
  return value


_TARGETS = {'kernel': _weight, 'scale': lambda m: m.weight,
            'bias': lambda m: m.bias, 'mean': lambda m: m.running_mean,
            'var': lambda m: m.running_var}


def _flat(tree) -> dict[str, np.ndarray]:
  import jax  # pylint: disable=g-import-not-at-top
  out = {}
  for path, value in jax.tree_util.tree_flatten_with_path(tree)[0]:
    out['/'.join(str(getattr(p, 'key', p)) for p in path)] = np.asarray(value)
  return out


def copy_from_flax(module: nn.Module, params, collections=None) -> int:
  """Loads Flax ``params`` (and ``batch_stats`` / ``spectral_stats`` from
  ``collections``) into the twin ``module``; returns the number of parameter
  elements copied. Raises if a shape differs or a torch parameter is left
  unset, so a successful copy also proves the parameter lists are equal.

  Spectral norm: Flax keeps ``u`` and, applied with ``update_stats=False``,
  normalises by ``sigma = u1 . W v0`` with ``v0 = W^T u / |.|`` and
  ``u1 = W v0 / |.|``; torch's buffers are set to ``(u1, v0)`` so that torch
  without a power iteration (eval mode) divides by the same ``sigma``.
  """
  collections = dict(collections or {})
  items = [('params', k, v) for k, v in _flat(params).items()]
  items += [('batch_stats', k, v)
            for k, v in _flat(collections.get('batch_stats', {})).items()]
  copied, touched = 0, set()
  for _, path, value in items:
    *mod_path, name = path.split('/')
    sub = module.get_submodule('.'.join(mod_path))
    target = _TARGETS[name](sub)
    value = np.array(_flax_to_torch(sub, name, value), np.float32, order='C')
    if tuple(target.shape) != value.shape:
      raise ValueError(f'{path}: flax {value.shape} vs torch {tuple(target.shape)}')
    with torch.no_grad():
      target.copy_(torch.from_numpy(value))
    if isinstance(target, nn.Parameter):
      copied += value.size
      touched.add(id(target))
  missing = [n for n, p in module.named_parameters() if id(p) not in touched]
  if missing:
    raise ValueError(f'torch parameters without a Flax twin: {missing}')
  for path, u in _flat(collections.get('spectral_stats', {})).items():
    if not path.endswith('/kernel/u'):
      continue
    parts = [p for p in path[:-len('/kernel/u')].split('/')
             if not p.startswith(('SNWrap_', 'SpectralNorm_'))]
    sub = module.get_submodule('.'.join(parts))
    sn = sub.parametrizations.weight[0]
    with torch.no_grad():
      mat = sn._reshape_weight_to_matrix(_weight(sub))  # pylint: disable=protected-access
      u0 = torch.from_numpy(np.array(u, np.float32).reshape(-1))
      v0 = F.normalize(mat.T @ u0, dim=0, eps=sn.eps)
      sn._u.copy_(F.normalize(mat @ v0, dim=0, eps=sn.eps))  # pylint: disable=protected-access
      sn._v.copy_(v0)  # pylint: disable=protected-access
  return copied


def spectral_norms(module: nn.Module) -> list[nn.Module]:
  """The spectral-norm parametrisations inside ``module``."""
  return [m.parametrizations.weight[0] for m in module.modules()
          if parametrize.is_parametrized(m, 'weight')]


# ------------------------------------------------------------- train step ---


def _d_loss(loss: str):
  sp = F.softplus
  return {
      'minimax': lambda r, f: sp(-r).mean() + sp(f).mean(),
      'nonsaturating': lambda r, f: sp(-r).mean() + sp(f).mean(),
      'wasserstein': lambda r, f: f.mean() - r.mean(),
      'hinge': lambda r, f: F.relu(1 - r).mean() + F.relu(1 + f).mean(),
      'least_squares': lambda r, f: (0.5 * (r - 1) ** 2).mean() + (0.5 * f ** 2).mean(),
  }[loss]


def _g_loss(loss: str):
  sp = F.softplus
  return {
      'minimax': lambda f: -sp(f).mean(),
      'nonsaturating': lambda f: sp(-f).mean(),
      'wasserstein': lambda f: -f.mean(),
      'hinge': lambda f: -f.mean(),
      'least_squares': lambda f: (0.5 * (f - 1) ** 2).mean(),
  }[loss]


def gradient_penalty(d, real, fake, target: float = 1.0):
  """``penalties.gradient_penalty`` (two-sided): ``E(|grad D(x_hat)| - t)^2``
  on random interpolates, differentiable (``create_graph=True``)."""
  eps = torch.rand((real.shape[0],) + (1,) * (real.ndim - 1), dtype=real.dtype,
                   device=real.device)
  x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
  grads, = torch.autograd.grad(d(x_hat).sum(), x_hat, create_graph=True)
  norms = torch.sqrt(grads.square().flatten(1).sum(1) + 1e-12)
  return (norms - target).square().mean()


class TorchGAN:
  """Eager PyTorch version of ``make_train_step(config, G, D)``.

  ``step(real)`` with ``real`` of shape ``[n_critic, B, ...]`` (NCHW images)
  does what the JAX step does: for each critic update, G samples in train
  mode without gradient, D is applied to the real and the fake batch (and the
  penalty's interpolates), one power iteration per spectral-norm layer
  (``parametrize.cached``), an Adam update of D; then one G update through D
  (D's parameters get no gradient, no power iteration).

  Not identical to the JAX step:

  * random numbers: torch's generator for ``z`` and the penalty's
    ``eps`` (same distributions, other values; JAX draws them with threefry
    inside the compiled step);
  * spectral norm: both do one power iteration per D update, but torch
    starts it from its stored ``v`` (``u = Wv, v = W^T u``) and Flax from its
    stored ``u`` (``v = W^T u, u = W v``); in the G update Flax
    (``update_stats=False``) still runs one iteration from the stored ``u``
    without keeping it, torch (eval mode) none;
  * batch norm in train mode: torch updates the running averages on every
    forward pass (with the unbiased batch variance), the JAX step keeps only
    those of the passes that own them (G's in the G update, D's on the real
    batch); the normalised outputs are the same;
  * the JAX step also computes its metrics (gradient, parameter and update
    norms: a few reductions over the parameters); torch computes the losses;
  * layouts and kernels: NHWC, XLA (convolutions with ``kernels``'
    custom VJPs, or XLA's own gradients; one compiled program) vs NCHW,
    oneDNN/ATen ops one by one;
    torch's Adam is its default (per-tensor loop on the CPU).
  """

  def __init__(self, config, g: nn.Module, d: nn.Module):
    if config.penalty not in ('none', 'gp'):
      raise NotImplementedError(f'torch twin: penalty {config.penalty!r}')
    if config.d_clip > 0 or config.ema_decay > 0:
      raise NotImplementedError('torch twin: d_clip and ema_decay must be 0')
    o = config.optimizer
    if o.name != 'adam' or o.lr_schedule != 'constant':
      raise NotImplementedError('torch twin: constant-rate Adam only')
    self.g, self.d = g.train(), d.train()
    self.z_dim = config.model.z_dim
    self.device = next(g.parameters()).device
    self.n_critic = config.n_critic
    self.d_loss, self.g_loss = _d_loss(config.loss), _g_loss(config.loss)
    self.penalty = config.penalty == 'gp'
    self.weight, self.target = float(config.penalty_weight), float(config.gp_target)
    self.sn = spectral_norms(d)
    # optax.adam: eps added to sqrt(v_hat), as torch's.
    self.g_opt = torch.optim.Adam(g.parameters(), lr=o.g_lr, betas=(o.b1, o.b2), eps=1e-8)
    self.d_opt = torch.optim.Adam(d.parameters(), lr=o.d_lr, betas=(o.b1, o.b2), eps=1e-8)
    self.g_params = list(g.parameters())
    self.d_params = list(d.parameters())

  def _set_power_iteration(self, on: bool):
    for sn in self.sn:
      sn.train(on)

  def step(self, real: torch.Tensor) -> dict[str, float]:
    batch = real.shape[1]
    for i in range(real.shape[0]):
      with torch.no_grad():
        fake = self.g(torch.randn(batch, self.z_dim, device=self.device))
      with parametrize.cached():
        adv = self.d_loss(self.d(real[i]), self.d(fake))
        loss = adv
        if self.penalty:
          loss = adv + self.weight * gradient_penalty(self.d, real[i], fake,
                                                      self.target)
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward(inputs=self.d_params)
      self.d_opt.step()
    self._set_power_iteration(False)
    try:
      g_loss = self.g_loss(self.d(self.g(torch.randn(batch, self.z_dim, device=self.device))))
      self.g_opt.zero_grad(set_to_none=True)
      g_loss.backward(inputs=self.g_params)
      self.g_opt.step()
    finally:
      self._set_power_iteration(True)
    # float() waits for the device (the timing includes all queued work).
    return {'d_loss': float(adv.detach()), 'g_loss': float(g_loss.detach())}


def to_torch_images(x: np.ndarray) -> torch.Tensor:
  """``[..., H, W, C]`` numpy -> contiguous ``[..., C, H, W]`` tensor."""
  if x.ndim < 4:
    return torch.from_numpy(np.ascontiguousarray(x))
  axes = tuple(range(x.ndim - 3)) + (x.ndim - 1, x.ndim - 3, x.ndim - 2)
  return torch.from_numpy(np.ascontiguousarray(x.transpose(axes)))


def from_torch_images(x: torch.Tensor) -> np.ndarray:
  """``[B, C, H, W]`` -> ``[B, H, W, C]`` numpy (2-D tensors unchanged)."""
  x = x.detach().cpu().numpy()
  return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


__all__ = ['build', 'copy_from_flax', 'num_params', 'spectral_norms',
           'TorchGAN', 'gradient_penalty', 'to_torch_images',
           'from_torch_images']
