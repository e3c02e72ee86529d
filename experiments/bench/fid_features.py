r"""Benchmark: FID Inception features of 28x28 MNIST digits on this machine.

    python -m experiments.bench.fid_features [--num=10000] [--batch_size=25]
    python -m experiments.bench.fid_features --time_resize --num=50 --batch_size=50
    python -m experiments.bench.fid_features --time_layers [--batch_size=25]

Times :func:`gan_stability.metrics.inception.features` (resize 28x28 ->
299x299 in the ``'bilinear'`` mode on the device, then the Inception-v3 FID
network) on the first ``--num`` MNIST test digits (train digits beyond
10,000), after a warm-up call that compiles: with ``impl='auto'`` (Winograd
layers on the CPU) and, unless ``--nodirect``, with ``impl='direct'`` (every
convolution as XLA's). When ``torch`` is importable, the same network,
written in PyTorch below from the same ``.npz`` weights (batch norm folded into
the convolutions, as any inference engine does; ``channels_last`` by default,
``--notorch_channels_last`` for NCHW; bilinear
``F.interpolate`` with ``align_corners=False``, the same half-pixel resize as
``jax.image.resize`` for upsampling), runs on the same images. The two
implementations alternate in chunks of ``--chunk`` images so that load from
other processes on a shared machine hits all alike. Prints images/s for each,
the speed relative to PyTorch, and how far the feature sets are apart
(``--out``: also as a markdown file). The
PyTorch network is first checked against the golden features of the weights
folder.

torch is optional and not a dependency of the package (CPU wheel:
``pip install torch``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
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
flags.DEFINE_bool('direct', True, "Also time the JAX network with every "
                  "convolution as XLA's (impl='direct').")
flags.DEFINE_string('out', '', 'Also write the results (markdown) to this '
                    'file.')
flags.DEFINE_bool('sequential', False, 'Run each network over all images '
                  'before the next (instead of alternating chunks).')
flags.DEFINE_bool('torch_worker', False, 'Internal: serve PyTorch feature '
                  'requests on stdin (the child process of the benchmark).')
flags.DEFINE_bool('torch_channels_last', True,
                  'PyTorch memory format: channels_last (NHWC, faster in our '
                  'runs) or contiguous NCHW.')
flags.DEFINE_bool('time_resize', False, 'Only time the resize modes: '
                  'inception.prepare per mode against the network, per batch '
                  '(interleaved repeats), and exit.')
flags.DEFINE_bool('time_layers', False, 'Only time the stride-1 spatial '
                  'convolutions of the network, one of each shape, as XLA\'s '
                  'convolution and as Winograd with several tiles (random '
                  'inputs, batch --batch_size), and exit: the measurement '
                  'behind inception.WINOGRAD_TILES.')
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


# The Winograd forms tried per kernel shape by --time_layers: ('tiles',
# (m_h, m_w)) = winograd_nd.conv, ('rows', m) = winograd_nd.row_conv.
_LAYER_FORMS = {
    (3, 3): (('tiles', (2, 2)), ('tiles', (4, 4)), ('rows', 2), ('rows', 4)),
    (5, 5): (('tiles', (2, 2)), ('rows', 2), ('rows', 4)),
    (1, 7): (('tiles', (1, 2)), ('tiles', (1, 4))),
    (7, 1): (('tiles', (2, 1)), ('tiles', (4, 1))),
    (1, 3): (('tiles', (1, 2)), ('tiles', (1, 4))),
    (3, 1): (('tiles', (2, 1)), ('tiles', (4, 1)))}


def _time_layers(bs: int) -> None:
  """Per distinct stride-1 spatial convolution of the network: ms per batch
  of XLA's convolution (+ bias and relu, as in the network) and of the
  Winograd forms (kernels transformed beforehand, as the network does),
  interleaved repeats, and their max error relative to the largest
  output."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from gan_stability.kernels import compile_options, winograd_nd  # pylint: disable=g-import-not-at-top
  opts = compile_options.default_compiler_options()
  shapes = {}
  for name, (cout, cin, kh, kw, stride, pad) in inception.LAYERS.items():
    if stride == 1 and (kh, kw) != (1, 1):
      size = inception._BLOCK_INPUT[name.split('.')[0]]  # pylint: disable=protected-access
      shapes.setdefault((size, cin, cout, kh, kw, pad), name)
  rng = np.random.default_rng(0)
  print(f'ms per batch of {bs} (median of {FLAGS.repeats}); in use: '
        f'tiles {inception.WINOGRAD_TILES}, rows {inception.WINOGRAD_ROWS}')
  for (size, cin, cout, kh, kw, pad), name in shapes.items():
    x = jnp.asarray(rng.normal(size=(bs, size, size, cin)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(kh, kw, cin, cout)) / np.sqrt(
        kh * kw * cin), jnp.float32)
    fns = {'direct': (jax.jit(lambda x, k, pad=pad: jax.nn.relu(
        inception._conv(x, k, 1, pad)), compiler_options=opts), k)}  # pylint: disable=protected-access
    for kind, tile in _LAYER_FORMS[(kh, kw)]:
      if kind == 'tiles':
        fn = lambda x, u, pad=pad, t=tile: jax.nn.relu(
            winograd_nd.conv_transformed(x, u, (kh, kw), pad, t))
        u = winograd_nd.kernel_transform(k, tile)
      else:
        fn = lambda x, u, pad=pad, t=tile: jax.nn.relu(
            winograd_nd.row_conv_transformed(x, u, (kh, kw), pad, t))
        u = winograd_nd.row_kernel_transform(k, tile)
      fns[f'{kind} {tile}'] = (jax.jit(fn, compiler_options=opts), u)
    outs = {n: np.asarray(f(x, w)) for n, (f, w) in fns.items()}
    ms = {n: [] for n in fns}
    for _ in range(FLAGS.repeats):
      for n, (f, w) in fns.items():
        t0 = time.perf_counter()
        jax.block_until_ready(f(x, w))
        ms[n].append(1e3 * (time.perf_counter() - t0))
    ref, direct = outs['direct'], np.median(ms['direct'])
    cells = [f'direct {direct:.2f}']
    for n in fns:
      if n != 'direct':
        err = np.abs(outs[n] - ref).max() / np.abs(ref).max()
        cells.append(f'{n} {np.median(ms[n]):.2f} '
                     f'(x{direct / np.median(ms[n]):.2f}, err {err:.0e})')
    print(f'{name} {size}x{size} {kh}x{kw} {cin}->{cout}: '
          + ' | '.join(cells), flush=True)


def _torch_worker(images: np.ndarray, npz: str) -> None:
  """The child process: the PyTorch network, then one request per stdin
  line ``start count path``: features of ``images[start:start + count]``
  saved to ``path`` (.npy), seconds printed as a JSON line."""
  import torch
  net, torch_features = build_torch_net(
      npz, channels_last=FLAGS.torch_channels_last)
  golden = _golden_check_torch(net, FLAGS.weights_dir, FLAGS.data_dir)
  print(json.dumps({'version': torch.__version__,
                    'threads': torch.get_num_threads(), 'golden': golden}),
        flush=True)
  for line in sys.stdin:
    start, count, path = line.split()
    start, count = int(start), int(count)
    t0 = time.perf_counter()
    f = torch_features(images[start:start + count], FLAGS.batch_size)
    seconds = time.perf_counter() - t0
    np.save(path, f)
    print(json.dumps({'seconds': seconds}), flush=True)


class _TorchProcess:
  """PyTorch in a child process (this module with ``--torch_worker``),
  called like the JAX runners: ``(start, count) -> (features, seconds)``.

  A separate process because PyTorch ran slower in a process where JAX had
  run (16-24 instead of 26-27 images/s in the first passes after JAX on the
  2-core development machine), which would flatter JAX. The child idles on
  its stdin while JAX runs, so the two still alternate in one run.
  """

  def __init__(self):
    args = [sys.executable, '-m', 'experiments.bench.fid_features',
            '--torch_worker', f'--num={FLAGS.num}',
            f'--batch_size={FLAGS.batch_size}',
            f'--weights_dir={FLAGS.weights_dir}',
            f'--data_dir={FLAGS.data_dir}',
            f'--torch_channels_last={FLAGS.torch_channels_last}']
    self._dir = tempfile.mkdtemp(prefix='fid_bench_')
    self._proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True,
                                  cwd=_REPO)
    self.info = self._reply()
    print(f'torch {self.info["version"]} in a child process, '
          f'{self.info["threads"]} threads, channels_last='
          f'{FLAGS.torch_channels_last}; PyTorch port vs golden features: '
          f'max abs diff / max abs golden = {self.info["golden"]:.2e}')

  def _reply(self) -> dict:
    for line in self._proc.stdout:
      if line.startswith('{'):
        return json.loads(line)
    raise RuntimeError(f'the PyTorch worker exited ({self._proc.wait()})')

  def __call__(self, start: int, count: int):
    path = os.path.join(self._dir, 'features.npy')
    self._proc.stdin.write(f'{start} {count} {path}\n')
    self._proc.stdin.flush()
    seconds = self._reply()['seconds']
    return np.load(path), seconds

  def close(self) -> None:
    self._proc.stdin.close()
    self._proc.wait(timeout=60)
    shutil.rmtree(self._dir, ignore_errors=True)


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'num', 'batch_size', 'chunk', 'repeats')
  num, bs = FLAGS.num, FLAGS.batch_size
  npz = os.path.join(FLAGS.weights_dir, 'fid_inception_v3_2015.npz')
  images = _load_digits(FLAGS.data_dir, num)
  if FLAGS.torch_worker:  # before JAX starts a backend in this process
    _torch_worker(images, npz)
    return
  import jax  # pylint: disable=g-import-not-at-top
  print(f'{len(images)} MNIST digits {images.shape[1:]} {images.dtype}; '
        f'batch {bs}; jax {jax.__version__} on {jax.devices()[0].platform}; '
        f'{os.cpu_count()} CPUs; load average {os.getloadavg()}')

  if FLAGS.time_layers:
    _time_layers(bs)
    return
  params = inception.load_params(npz)
  if FLAGS.time_resize:
    _time_resize(params, images[:bs])
    return
  # The 'bilinear' mode: the resize PyTorch's F.interpolate does too.
  def jax_runner(impl):
    def run(start, count):
      t0 = time.perf_counter()
      f = inception.features(params, images[start:start + count],
                             resize='bilinear', batch_size=bs, impl=impl)
      return f, time.perf_counter() - t0
    return run

  runners = {'jax': jax_runner(inception.resolve_impl('auto'))}
  if FLAGS.direct:
    runners['jax_direct'] = jax_runner('direct')
  torch_version = None
  if FLAGS.torch:
    if importlib.util.find_spec('torch') is None:
      print('torch not importable: PyTorch comparison skipped')
    else:
      runners['torch'] = _TorchProcess()
      torch_version = runners['torch'].info['version']

  for name, run in runners.items():  # warm-up (compilation) on one batch
    print(f'{name}: warm-up batch {run(0, bs)[1]:.1f}s')

  seconds = {name: 0.0 for name in runners}
  feats = {name: [] for name in runners}
  starts = range(0, len(images), FLAGS.chunk)
  order = ([(name, st) for name in runners for st in starts]
           if FLAGS.sequential else
           [(name, st) for st in starts for name in runners])
  for name, start in order:
    count = min(FLAGS.chunk, len(images) - start)
    f, dt = runners[name](start, count)
    feats[name].append(f)
    seconds[name] += dt
    print(f'  {name} {start + count}/{len(images)}: '
          f'{count / dt:.2f} img/s', flush=True)
  if 'torch' in runners:
    runners['torch'].close()

  mode = 'one after the other' if FLAGS.sequential else (
      f'alternating in chunks of {FLAGS.chunk}')
  lines = [f'results for --num={len(images)} --batch_size={bs}, {mode} '
           f'(load average at end {os.getloadavg()}):', '',
           '| network | images/s | seconds | speed vs PyTorch |',
           '|---|---|---|---|']
  label = {'jax': f'JAX, impl={inception.resolve_impl("auto")!r}',
           'jax_direct': "JAX, impl='direct'", 'torch': 'PyTorch'}
  for name, s in seconds.items():
    ratio = (f'{seconds["torch"] / s:.3f}x' if 'torch' in seconds else '-')
    lines.append(f'| {label[name]} | {len(images) / s:.2f} | {s:.1f} | '
                 f'{ratio} |')
  lines.append('')
  got = {name: np.concatenate(f) for name, f in feats.items()}
  pairs = [(n, 'torch') for n in got if n != 'torch' and 'torch' in got]
  if 'jax_direct' in got:
    pairs.append(('jax', 'jax_direct'))
  for a, b in pairs:
    diff = np.abs(got[a] - got[b]).max() / np.abs(got[b]).max()
    lines.append(f'* features {label[a]} vs {label[b]}: max abs diff / max '
                 f'abs = {diff:.2e}')
  text = '\n'.join(lines)
  print('\n' + text)
  if FLAGS.out:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, 'w') as f:
      env = ''.join(f'{k}={v} ' for k, v in sorted(os.environ.items())
                    if k.startswith('MALLOC_'))  # allocator settings matter
      f.write('# FID Inception features: JAX and PyTorch side by side\n\n'
              f'`{env}python -m experiments.bench.fid_features '
              f'--num={FLAGS.num} --chunk={FLAGS.chunk} '
              f'{"--sequential " if FLAGS.sequential else ""}'
              f'--batch_size={bs} --out={FLAGS.out}`, on '
              f'{os.cpu_count()} CPUs, jax {jax.__version__}' +
              (f', torch {torch_version} (in its own process)'
               if torch_version else '') +
              '.\n\n' + text + '\n')


if __name__ == '__main__':
  entry.main(main)
