r"""Benchmark: FID Inception features of 28x28 MNIST digits on this machine.

    python -m experiments.bench.fid_features [--num=10000] [--batch_size=25]
    python -m experiments.bench.fid_features --time_resize --num=50 --batch_size=50

Times :func:`gan_stability.metrics.inception.features` (resize 28x28 ->
299x299 in the ``'bilinear'`` mode on the device, then the Inception-v3 FID
network) on the
first ``--num`` MNIST test digits (train digits beyond 10,000), after a
warm-up call that compiles. When ``torch`` is importable, the same network,
written in PyTorch below from the same ``.npz`` weights (batch norm folded into
the convolutions, as any inference engine does; ``channels_last`` by default,
``--notorch_channels_last`` for NCHW; bilinear
``F.interpolate`` with ``align_corners=False``, the same half-pixel resize as
``jax.image.resize`` for upsampling), runs on the same images. The two
implementations alternate in chunks of ``--chunk`` images so that load from
other processes on a shared machine hits both alike. Prints images/s for each,
the ratio JAX / PyTorch, and how far the two feature sets are apart. The
PyTorch network is first checked against the golden features of the weights
folder.

torch is optional and not a dependency of the package (CPU wheel:
``pip install torch``).
"""

from __future__ import annotations

import os
import time

import numpy as np
from absl import flags

from experiments import entry

from gan_stability.data import idx
from gan_stability.metrics import inception

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SHARED = os.path.normpath(os.path.join(_REPO, '..', 'shared'))

flags.DEFINE_integer('num', 10000, 'Number of 28x28 images to featurise.')
flags.DEFINE_integer('batch_size', 25, 'Images per network call (both).')
flags.DEFINE_integer('chunk', 500, 'Images per alternation JAX <-> PyTorch.')
flags.DEFINE_bool('torch', True, 'Also time the PyTorch network if importable.')
flags.DEFINE_bool('torch_channels_last', True,
                  'PyTorch memory format: channels_last (NHWC, faster in our '
                  'runs) or contiguous NCHW.')
flags.DEFINE_bool('time_resize', False, 'Only time the resize modes: '
                  'inception.prepare per mode against the network, per batch '
                  '(interleaved repeats), and exit.')
flags.DEFINE_integer('repeats', 20, 'With --time_resize: timed batches per '
                     'mode.')
flags.DEFINE_string('weights_dir', os.environ.get(
    'GAN_STABILITY_WEIGHTS_DIR', os.path.join(_SHARED, 'weights')),
                    'Folder with fid_inception_v3_2015.npz.')
flags.DEFINE_string('data_dir', os.environ.get(
    'GAN_STABILITY_DATA_DIR', os.path.join(_SHARED, 'data')),
                    'Folder with mnist/ IDX files.')
FLAGS = flags.FLAGS


# ------------------------------------------------------ PyTorch network ---


def build_torch_net(npz_path: str, channels_last: bool = False):
  """The FID Inception-v3 in PyTorch (eval only), from the same weights."""
  import torch
  import torch.nn.functional as F

  weights = np.load(npz_path)
  fmt = torch.channels_last if channels_last else torch.contiguous_format
  layers = {}
  for name, (_, _, _, _, stride, pad) in inception.LAYERS.items():
    g = lambda a: weights[f'net.layers.{name}.{a}'].astype(np.float64)
    scale = 1.0 / np.sqrt(g('var') + inception.BN_EPS)
    w = torch.from_numpy((g('weight') * scale[:, None, None, None]
                          ).astype(np.float32)).contiguous(memory_format=fmt)
    b = torch.from_numpy((g('beta') - g('mean') * scale).astype(np.float32))
    layers[name] = (w, b, stride, pad)

  def cbr(name, x):
    w, b, stride, pad = layers[name]
    return F.relu(F.conv2d(x, w, b, stride=stride, padding=pad))

  def avg(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)

  def block_a(n, x):
    t = cbr(f'{n}.tower.conv_1', cbr(f'{n}.tower.conv', x))
    t1 = cbr(f'{n}.tower_1.conv', x)
    t1 = cbr(f'{n}.tower_1.conv_2', cbr(f'{n}.tower_1.conv_1', t1))
    return torch.cat([cbr(f'{n}.conv', x), t, t1,
                      cbr(f'{n}.tower_2.conv', avg(x))], 1)

  def block_b(n, x):
    t = cbr(f'{n}.tower.conv', x)
    t = cbr(f'{n}.tower.conv_2', cbr(f'{n}.tower.conv_1', t))
    return torch.cat([cbr(f'{n}.conv', x), t, F.max_pool2d(x, 3, 2)], 1)

  def block_c(n, x):
    t = cbr(f'{n}.tower.conv', x)
    for i in (1, 2):
      t = cbr(f'{n}.tower.conv_{i}', t)
    t1 = cbr(f'{n}.tower_1.conv', x)
    for i in (1, 2, 3, 4):
      t1 = cbr(f'{n}.tower_1.conv_{i}', t1)
    return torch.cat([cbr(f'{n}.conv', x), t, t1,
                      cbr(f'{n}.tower_2.conv', avg(x))], 1)

  def block_d(n, x):
    t = cbr(f'{n}.tower.conv_1', cbr(f'{n}.tower.conv', x))
    t1 = cbr(f'{n}.tower_1.conv', x)
    for i in (1, 2, 3):
      t1 = cbr(f'{n}.tower_1.conv_{i}', t1)
    return torch.cat([t, t1, F.max_pool2d(x, 3, 2)], 1)

  def block_e(n, x, pool):
    a = cbr(f'{n}.tower_conv', x)
    b = cbr(f'{n}.tower_1_conv_1', cbr(f'{n}.tower_1_conv', x))
    return torch.cat([
        cbr(f'{n}.conv', x),
        cbr(f'{n}.tower_mixed_conv', a), cbr(f'{n}.tower_mixed_conv_1', a),
        cbr(f'{n}.tower_1_mixed_conv', b), cbr(f'{n}.tower_1_mixed_conv_1', b),
        cbr(f'{n}.tower_2_conv', pool(x))], 1)

  def net(x):  # NCHW in [-1, 1) -> [B, 2048]
    for name in ('conv', 'conv_1', 'conv_2'):
      x = cbr(name, x)
    x = F.max_pool2d(x, 3, 2)
    x = F.max_pool2d(cbr('conv_4', cbr('conv_3', x)), 3, 2)
    for n in ('mixed', 'mixed_1', 'mixed_2'):
      x = block_a(n, x)
    x = block_b('mixed_3', x)
    for n in ('mixed_4', 'mixed_5', 'mixed_6', 'mixed_7'):
      x = block_c(n, x)
    x = block_d('mixed_8', x)
    x = block_e('mixed_9', x, avg)
    x = block_e('mixed_10', x, lambda v: F.max_pool2d(v, 3, 1, padding=1))
    return x.mean(dim=(2, 3))

  def features(images: np.ndarray, batch_size: int) -> np.ndarray:
    """[N, H, W, 1 or 3] in [0, 255] -> [N, 2048], fixed batch shape."""
    out = []
    with torch.inference_mode():
      for s in range(0, len(images), batch_size):
        batch = np.asarray(images[s:s + batch_size])
        count = len(batch)
        if count < batch_size:
          batch = np.concatenate([batch, np.zeros(
              (batch_size - count,) + batch.shape[1:], batch.dtype)])
        x = torch.from_numpy(batch).permute(0, 3, 1, 2).float()
        if x.shape[2:] != (299, 299):
          x = F.interpolate(x, size=(299, 299), mode='bilinear',
                            align_corners=False)
        x = x.expand(-1, 3, -1, -1) / 128.0 - 1.0
        x = x.contiguous(memory_format=fmt)
        out.append(net(x)[:count].numpy())
    return np.concatenate(out)

  return net, features


# ------------------------------------------------------------ benchmark ---


def _load_digits(data_dir: str, num: int) -> np.ndarray:
  mnist = os.path.join(data_dir, 'mnist')
  test, _ = idx.load_idx_dataset(mnist, 'test')
  if num <= len(test):
    return test[:num]
  train, _ = idx.load_idx_dataset(mnist, 'train')
  return np.concatenate([test, train])[:num]


def _golden_check_torch(net, weights_dir, data_dir) -> float:
  import torch
  digits = idx.read_idx(os.path.join(data_dir, 'mnist',
                                     't10k-images-idx3-ubyte.gz'))[:16]
  up = np.stack([np.kron(d, np.ones((10, 10), np.uint8)) for d in digits])
  up = np.pad(up, ((0, 0), (9, 10), (9, 10))).astype(np.float32) / 128 - 1
  x = torch.from_numpy(np.repeat(up[:, None], 3, axis=1))
  if FLAGS.torch_channels_last:
    x = x.contiguous(memory_format=torch.channels_last)
  with torch.inference_mode():
    ours = net(x).numpy()
  golden = np.load(os.path.join(weights_dir,
                                'golden_features_mnist_t10k_first16.npy'))
  return float(np.abs(ours - golden).max() / np.abs(golden).max())


def _time_resize(params, batch: np.ndarray) -> None:
  """Milliseconds per batch of each resize mode's ``prepare`` (28x28 ->
  299x299 on the device) beside the network's ``apply``, the repeats of
  all of them interleaved."""
  import jax  # pylint: disable=g-import-not-at-top
  work = {f'prepare {m}': (lambda m=m: inception.prepare(batch, m))
          for m in inception.RESIZE_MODES}
  x = inception.prepare(batch, 'tf1')
  work['network (apply)'] = lambda: inception.apply(params, x)
  for fn in work.values():  # compile
    jax.block_until_ready(fn())
  ms = {name: [] for name in work}
  for _ in range(FLAGS.repeats):
    for name, fn in work.items():
      t0 = time.perf_counter()
      jax.block_until_ready(fn())
      ms[name].append(1e3 * (time.perf_counter() - t0))
  print(f'median ms per batch of {len(batch)} over {FLAGS.repeats} repeats:')
  for name, v in ms.items():
    print(f'  {name:16s} {np.median(v):9.2f}')


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'num', 'batch_size', 'chunk', 'repeats')
  import jax
  num, bs = FLAGS.num, FLAGS.batch_size
  npz = os.path.join(FLAGS.weights_dir, 'fid_inception_v3_2015.npz')
  images = _load_digits(FLAGS.data_dir, num)
  print(f'{len(images)} MNIST digits {images.shape[1:]} {images.dtype}; '
        f'batch {bs}; jax {jax.__version__} on {jax.devices()[0].platform}; '
        f'{os.cpu_count()} CPUs; load average {os.getloadavg()}')

  params = inception.load_params(npz)
  if FLAGS.time_resize:
    _time_resize(params, images[:bs])
    return
  # The 'bilinear' mode: the resize PyTorch's F.interpolate does too.
  runners = {'jax': lambda x: inception.features(params, x, resize='bilinear',
                                                 batch_size=bs)}
  torch_features = None
  if FLAGS.torch:
    try:
      import torch
    except ImportError:
      print('torch not importable: PyTorch comparison skipped')
    else:
      net, torch_features = build_torch_net(
          npz, channels_last=FLAGS.torch_channels_last)
      print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
            f'channels_last={FLAGS.torch_channels_last}; '
            'PyTorch port vs golden features: max abs diff / max abs golden '
            f'= {_golden_check_torch(net, FLAGS.weights_dir, FLAGS.data_dir):.2e}')
      runners['torch'] = lambda x: torch_features(x, bs)

  for name, run in runners.items():  # warm-up (compilation) on one batch
    t0 = time.perf_counter()
    run(images[:bs])
    print(f'{name}: warm-up batch {time.perf_counter() - t0:.1f}s')

  seconds = {name: 0.0 for name in runners}
  feats = {name: [] for name in runners}
  for start in range(0, len(images), FLAGS.chunk):
    chunk = images[start:start + FLAGS.chunk]
    for name, run in runners.items():
      t0 = time.perf_counter()
      feats[name].append(run(chunk))
      seconds[name] += time.perf_counter() - t0
    done = start + len(chunk)
    print(f'  {done}/{len(images)}: ' + ', '.join(
        f'{n} {done / s:.2f} img/s' for n, s in seconds.items()), flush=True)

  print(f'\nresults for --num={len(images)} --batch_size={bs} '
        f'(load average at end {os.getloadavg()}):')
  for name, s in seconds.items():
    print(f'  {name:5s}: {len(images) / s:8.2f} images/s ({s:.1f} s)')
  if 'torch' in seconds:
    jax_feats = np.concatenate(feats['jax'])
    torch_feats = np.concatenate(feats['torch'])
    diff = np.abs(jax_feats - torch_feats).max() / np.abs(torch_feats).max()
    print(f'  throughput ratio JAX / PyTorch = '
          f'{seconds["torch"] / seconds["jax"]:.3f} (> 1: JAX faster)')
    print(f'  features JAX vs PyTorch: max abs diff / max abs = {diff:.2e}')


if __name__ == '__main__':
  entry.main(main)
