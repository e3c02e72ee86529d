r"""Benchmark: bfloat16 vs float32 compute (``config.model.compute_dtype``).

    python -m experiments.bench.mixed_precision [--steps=N] [--width=W] \
        [--batch=B] [--variants=wgan_gp,sngan] [--data_dir=DIR] \
        [--nonative_f32] [--out=FILE.md]

For each recipe of ``experiments/configs/mnist.py`` (the DCGAN at 28x28;
default ``wgan_gp`` and ``sngan``, both ``n_critic`` 5) it builds the config
with ``model.compute_dtype`` float32 and bfloat16 (widths ``--width``,
batch ``--batch``, everything else the recipe's) and, with
``--native_f32``, float32 with ``model.conv_impl='native'`` (XLA's
convolutions, which bfloat16 uses: the *native-conv* columns separate the
cost of leaving the custom CPU convolutions from that of bfloat16 itself),
and runs ``--steps`` + 1 train steps of each side by side: the loop's
compiled step (:class:`gan_stability.train.loop.OnMesh`, one device, one
step per call), the same initial state (the compute dtype does not enter
it), the same real batches and the same key stream. Calls alternate
between the runs so that load from other processes hits all alike. The
first call of each compiles (or reads the persistent compilation cache)
and is not timed, nor are the ``--warmup`` calls after it; *ms/step* is the
median of the rest. The loss
columns are the largest ``|bf16 - float32|`` of each metric over all the
steps (the two runs drift apart slowly as their parameters differ by
rounding), next to the float32 run's largest ``|value|`` for scale.

Real MNIST is read from ``--data_dir`` (default ``../shared/data/mnist``
from the repository root); when its IDX files are absent, random 28x28
'digits' are used (:func:`gan_stability.data.idx.write_random_digits`; the
table says which).

**Speed on the CPU.** On XLA:CPU bfloat16 is not expected to be faster:
XLA:CPU (jax 0.10) runs a bfloat16 dot or convolution as the float32 op
between converts (its optimised HLO shows it, even on a CPU with
AVX512-BF16), so bfloat16 adds conversions and saves no arithmetic; and in
bfloat16 the models step aside from the custom float32 CPU convolutions of
:mod:`gan_stability.kernels` to XLA's own, whose gradients are the slow ones
on the CPU (``docs/kernels.md``). The speed column is meaningful on an
accelerator (GPU/TPU), where bfloat16 matmuls and convolutions run at a
multiple of the float32 rate and halve the activations' memory traffic; the
loss columns hold anywhere. See ``docs/mixed_precision.md``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

import numpy as np
from absl import flags

from experiments import entry

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
DTYPES = ('float32', 'bfloat16')
# The runs of a row: (name, compute_dtype, conv_impl or None for the
# config's). 'float32_native' separates the two costs of bfloat16 on the CPU.
ARMS = (('float32', 'float32', None), ('float32_native', 'float32', 'native'),
        ('bfloat16', 'bfloat16', None))
LOSSES = ('d_loss', 'g_loss', 'penalty')
IDX_FILES = ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz')

flags.DEFINE_integer('steps', 10, 'Train steps timed and compared per run '
                     '(after the compiling first step).')
flags.DEFINE_integer('warmup', 1, 'Steps after the first not timed (their '
                     'losses are compared).')
flags.DEFINE_integer('width', 16, 'g_width and d_width of the DCGAN (the '
                     'recipes: 64).')
flags.DEFINE_integer('batch', 16, 'Batch size (the recipes: 64).')
flags.DEFINE_list('variants', ['wgan_gp', 'sngan'],
                  'experiments/configs/mnist.py variants.')
flags.DEFINE_string('data_dir', os.path.join(REPO, '..', 'shared', 'data',
                                             'mnist'),
                    'MNIST IDX directory; random digits if it lacks them.')
flags.DEFINE_bool('native_f32', True, 'Also time float32 with '
                  "model.conv_impl='native' (XLA's convolutions, which "
                  'bfloat16 uses).')
flags.DEFINE_string('out', '', 'Also write the Markdown table here.')
FLAGS = flags.FLAGS


def make_config(variant: str, dtype: str, data_dir: str, *, steps: int,
                width: int, batch: int, conv_impl: str | None = None):
  """The MNIST ``variant`` at ``width`` / ``batch`` in compute ``dtype``
  (and ``conv_impl`` when given)."""
  from experiments.configs import mnist  # pylint: disable=g-import-not-at-top
  from gan_stability import config as config_lib  # pylint: disable=g-import-not-at-top
  c = mnist.get_config(variant)
  c.data.dir = data_dir
  c.model.update(g_width=width, d_width=width, compute_dtype=dtype)
  if conv_impl is not None:
    c.model.conv_impl = conv_impl
  c.update(batch_size=batch, num_devices=1, num_steps=steps,
           steps_per_dispatch=1, log_every=1, eval_every=steps,
           checkpoint_every=steps, write_tensorboard=False,
           write_samples=False)
  c.eval.metrics = ''
  config_lib.validate(c, num_devices=1)
  return c


class Run:
  """One config's compiled train step, its state and its ``n`` steps of
  real batches."""

  def __init__(self, config, n: int):
    import jax  # pylint: disable=g-import-not-at-top
    from gan_stability import data as data_lib  # pylint: disable=g-import-not-at-top
    from gan_stability.train import loop, tasks  # pylint: disable=g-import-not-at-top
    task = tasks.make_task(config)
    self.program = loop.OnMesh(task)
    self.state = self.program.place(
        jax.jit(task.init_state)(jax.random.key(config.seed)))
    it = data_lib.make_iterator(config, seed=config.seed)
    self.draws = [[next(it) for _ in range(task.draws_per_step)]
                  for _ in range(n)]
    self.key = jax.random.key(config.seed + 1)
    self.seconds: list[float] = []
    self.metrics: list[dict[str, float]] = []

  def step(self, i: int) -> None:
    """Runs step ``i``; records its seconds and metrics."""
    import jax  # pylint: disable=g-import-not-at-top
    batch = self.program.batch([[self.draws[i]]])
    t = time.perf_counter()
    self.state, metrics = self.program.multi_step(self.state, batch, self.key)
    jax.block_until_ready((self.state, metrics))
    self.seconds.append(time.perf_counter() - t)
    self.metrics.append({k: float(np.asarray(v)[0])
                         for k, v in metrics.items()})


def compare(variant: str, data_dir: str) -> dict:
  """Runs the configs of ``variant`` (:data:`ARMS`) side by side."""
  n = FLAGS.steps + 1
  arms = [a for a in ARMS if FLAGS.native_f32 or a[0] != 'float32_native']
  runs = {name: Run(make_config(variant, dt, data_dir, steps=n,
                                width=FLAGS.width, batch=FLAGS.batch,
                                conv_impl=impl), n)
          for name, dt, impl in arms}
  for i in range(n):
    for run in runs.values():
      run.step(i)
  row = {'variant': variant}
  for name, run in runs.items():
    row[f'ms_{name}'] = 1e3 * statistics.median(
        run.seconds[1 + FLAGS.warmup:] or run.seconds[1:])
  f32, bf16 = runs['float32'].metrics, runs['bfloat16'].metrics
  for k in LOSSES:
    a = np.array([m[k] for m in f32])
    b = np.array([m[k] for m in bf16])
    row[f'diff_{k}'] = float(np.max(np.abs(b - a)))
    row[f'scale_{k}'] = float(np.max(np.abs(a)))
  row['finite'] = all(np.isfinite(m[k]) for m in bf16 for k in LOSSES)
  return row


def table(rows: list[dict], header: str) -> str:
  """The Markdown table of :func:`compare`'s rows."""
  native = 'ms_float32_native' in rows[0]
  cols = ['recipe', 'float32 ms/step']
  cols += ['float32 native-conv ms/step'] if native else []
  cols += ['bfloat16 ms/step', 'bf16 / f32']
  cols += ['bf16 / f32 native-conv'] if native else []
  cols += ['max abs diff d_loss (f32 max abs)',
           'max abs diff g_loss (f32 max abs)',
           'max abs diff penalty (f32 max abs)', 'bf16 finite']
  lines = [header, '', '| ' + ' | '.join(cols) + ' |',
           '|' + '---|' * len(cols)]
  for r in rows:
    loss = lambda k: (f"{r[f'diff_{k}']:.1e} ({r[f'scale_{k}']:.2g})"
                      if r[f'scale_{k}'] else 'n/a (0)')
    cells = [r['variant'], f"{r['ms_float32']:.0f}"]
    cells += [f"{r['ms_float32_native']:.0f}"] if native else []
    cells += [f"{r['ms_bfloat16']:.0f}",
              f"{r['ms_bfloat16'] / r['ms_float32']:.2f}"]
    cells += [f"{r['ms_bfloat16'] / r['ms_float32_native']:.2f}"
              ] if native else []
    cells += [loss('d_loss'), loss('g_loss'), loss('penalty'),
              'yes' if r['finite'] else 'NO']
    lines.append('| ' + ' | '.join(cells) + ' |')
  return '\n'.join(lines) + '\n'


def main(argv):
  entry.no_arguments(argv)
  entry.check_at_least(1, 'steps', 'width', 'batch')
  entry.check_at_least(0, 'warmup')
  import jax  # pylint: disable=g-import-not-at-top
  from experiments.configs import mnist  # pylint: disable=g-import-not-at-top
  for v in FLAGS.variants:
    try:
      mnist.get_config(v)
    except ValueError as e:
      entry.fail(f'--variants: {e}')
  with tempfile.TemporaryDirectory() as tmp:
    data_dir = FLAGS.data_dir
    if all(os.path.exists(os.path.join(data_dir, f)) for f in IDX_FILES):
      data = f'MNIST ({os.path.normpath(data_dir)})'
    else:
      from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
      data_dir = idx.write_random_digits(tmp, num_train=max(
          256, FLAGS.batch * 5 * (FLAGS.steps + 1)), num_test=16)
      data = 'random digits (no MNIST IDX files in --data_dir)'
    rows = [compare(v, data_dir) for v in FLAGS.variants]
  dev = jax.devices()[0]
  header = (f'bfloat16 vs float32, DCGAN 28x28 width {FLAGS.width}, batch '
            f'{FLAGS.batch}, {FLAGS.steps} steps after the first '
            f'(median of the last {max(1, FLAGS.steps - FLAGS.warmup)}), '
            f'data: {data}; {dev.platform} ({dev.device_kind}), jax '
            f'{jax.__version__}, {os.cpu_count()} CPUs')
  out = table(rows, header)
  print(out, end='')
  if FLAGS.out:
    with open(FLAGS.out, 'w') as f:
      f.write(out)


if __name__ == '__main__':
  entry.main(main)
