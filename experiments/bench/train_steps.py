r"""Benchmark: the library's train step vs the same step in eager PyTorch.

    python -m experiments.bench.train_steps [--quick] [--only=CASE,...] \
        [--steps=N] [--out=FILE.md] [--image_width=W] [--image_batch=B]

For every case (a config of ``experiments/configs`` and a recipe) this times

* **JAX**: the train step exactly as the training loop compiles it
  (:class:`gan_stability.train.loop.OnMesh`: the GAN task's train step with
  the mesh's latent sharding, inside the loop's multi-step, ``jax.jit`` with
  the state replicated, the batch sharded over a 1-device ``'data'`` mesh,
  ``donate_argnums=0`` and the config's compiler options) - one train step
  per call (``steps_per_dispatch=1``),
  the same global batch ``[1, n_critic, B, ...]`` every call; the ``_x50``
  MoG rows fuse 50 steps per call (``lax.scan``, the MoG configs' default
  ``steps_per_dispatch``) and give the call's time / 50;
* **PyTorch**: :class:`experiments.bench.torch_models.TorchGAN`, the same
  networks (the JAX initial parameters are copied in, and a forward pass of
  G and D is checked equal), batch, loss, penalty, ``n_critic`` and Adam, in
  eager mode with ``torch.set_num_threads(<cores>)``.

One train step = ``n_critic`` D updates + one G update. Each step is timed
with ``block_until_ready`` after warm-up; the table gives the median. The two
frameworks run in the same process, alternating in ``--rounds`` blocks so
that load from other processes hits both alike.

Other columns: *compile s* = first call minus the median step; *peak MiB* =
``argument + output - alias + temp`` bytes of XLA's ``memory_analysis()`` of
the compiled step (or the process's peak-RSS growth if XLA gives none; the
cell says which); *GFLOP/step* = XLA's ``cost_analysis()['flops']`` - of the
compiled step when its loops are unrolled, else of the same step lowered
with its loops unrolled (XLA counts a while-loop body once, whatever its trip
count); *GFLOP/s* = that / the median step; *% peak* = GFLOP/s over the
median GFLOP/s of a ``--matmul_size`` square float32 ``jnp.dot``, measured in
the same run at start and at end (the larger is used). XLA counts the
multiplications each op performs (and elementwise ops, so small models can
exceed 100%): for a native (transposed) convolution only the kernel taps that
meet input pixels, while the custom-VJP forms of ``kernels`` also count the
taps that fall on padding (the transposed conv's forward matmul computes
every tap and drops those off the edge), so the conv table also gives the
rate at the native flop count. *fwd rel. diff* = max |JAX - PyTorch| /
max |JAX| of G(z) and D(x) with the same weights (checks that the twins are the same functions).

A second table compares ``model.conv_impl`` 'native', 'fast_matmul' and 'fast' (the exact
custom-VJP forms of ``gan_stability/kernels/``) for the DCGAN-28
WGAN-GP step (when that case is selected). A third compares the configs'
``cpu_ynn_fusions`` (which XLA:CPU op kinds run in YNNPACK;
``gan_stability/kernels/compile_options.py``) with XLA's default for the cases
of :data:`YNN_CASES` that are selected (both compiled, then timed in
alternating blocks). ``--cpu_ynn_fusions`` overrides the setting of every
case. The single-step MoG rows time 10x ``--steps`` (their steps take
milliseconds, and vary more).

``--quick`` uses fewer steps and smaller image models (widths and batch are
in the table); full size is the configs' (DCGAN-28 64/64 batch 64, SN-GAN CNN
512/64 batch 64, ResNet 256/128 batch 64), which is slow on a small CPU - use
``--only``. torch is optional (``pip install torch``, CPU wheel); without it
the PyTorch columns read n/a. Where the two steps are not computed
identically is listed in :class:`experiments.bench.torch_models.TorchGAN`.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import sys
import time

import numpy as np
from absl import flags, logging

from experiments import entry

flags.DEFINE_bool('quick', False, 'Few steps, small image models.')
flags.DEFINE_list('only', [], 'Cases to run (default: all). Known: see CASES.')
flags.DEFINE_integer('steps', 0, 'Timed steps per framework and case '
                     '(0: 20, or 5 with --quick).')
flags.DEFINE_integer('warmup', 0, 'Untimed steps after the first call '
                     '(0: 2, or 1 with --quick).')
flags.DEFINE_integer('rounds', 2, 'Alternating JAX / PyTorch blocks.')
flags.DEFINE_float('max_seconds', 300.0, 'Stop timing one framework on one '
                   'case after this many seconds (at least 3 steps).')
flags.DEFINE_integer('image_width', 0, 'Override g_width and d_width of the '
                     'image cases (0: the case default).')
flags.DEFINE_integer('image_batch', 0, 'Override the batch of the image '
                     'cases (0: the case default).')
flags.DEFINE_integer('matmul_size', 0, 'Square matmul for the peak '
                     '(0: 2048, or 1024 with --quick).')
flags.DEFINE_bool('torch', True, 'Time PyTorch too (if importable).')
flags.DEFINE_enum('torch_device', 'auto', ['auto', 'cpu', 'cuda'],
                  "PyTorch's device; 'auto': cuda when JAX runs on a GPU and "
                  'torch sees one, else cpu. On cuda, TF32 matmuls are allowed '
                  "(torch.set_float32_matmul_precision('high')), as XLA's "
                  'default float32 precision on the GPU uses TF32.')
flags.DEFINE_enum('omp_wait_policy', 'auto', ['auto', 'keep', 'passive'],
                  "PyTorch's OpenMP threads: 'passive' sets OMP_WAIT_POLICY="
                  'PASSIVE before torch is imported; \'auto\' does so only when '
                  'the load average is at least the number of cores (spinning '
                  'OpenMP threads are slowed 10-100x on an oversubscribed '
                  "CPU); 'keep' leaves the environment alone.")
flags.DEFINE_bool('conv_table', True, 'The native vs fast conv table '
                  '(when dcgan28_wgan_gp is selected).')
flags.DEFINE_string('cpu_ynn_fusions', '', "Override config.cpu_ynn_fusions "
                    "of every case ('': the configs' setting).")
flags.DEFINE_bool('ynn_table', True, 'The YNNPACK-fusions table (XLA default '
                  'vs the setting) for the selected YNN_CASES.')
flags.DEFINE_string('out', '', 'Also write the Markdown report here.')
FLAGS = flags.FLAGS

MIB = 2.0 ** 20


@dataclasses.dataclass(frozen=True)
class Case:
  """A benchmark row: ``experiments/configs/<config>.py:<variant>``."""
  name: str
  label: str
  config: str
  variant: str
  data_shape: tuple[int, ...]
  model: str = ''                      # model.name override ('' = config's)
  full: tuple = ()                     # (g_width, d_width, batch) or ()
  quick: tuple = ()
  dispatch: int = 1                    # train steps fused per call (lax.scan)
  steps_factor: int = 1                # x --steps (ms-scale steps vary more)


CASES = (
    Case('mog_vanilla', 'MoG MLP', 'mog', 'vanilla', (2,), steps_factor=10),
    Case('mog_wgan_gp', 'MoG MLP', 'mog', 'wgan_gp', (2,), steps_factor=10),
    Case('mog_sngan', 'MoG MLP', 'mog', 'sngan', (2,), steps_factor=10),
    # The loop's default for the MLPs: 50 steps per dispatch (one scan).
    Case('mog_vanilla_x50', 'MoG MLP', 'mog', 'vanilla', (2,), dispatch=50),
    Case('mog_wgan_gp_x50', 'MoG MLP', 'mog', 'wgan_gp', (2,), dispatch=50),
    Case('mog_sngan_x50', 'MoG MLP', 'mog', 'sngan', (2,), dispatch=50),
    Case('dcgan28_vanilla', 'DCGAN-28', 'mnist', 'vanilla', (28, 28, 1),
         full=(64, 64, 64), quick=(16, 16, 32)),
    Case('dcgan28_wgan_gp', 'DCGAN-28', 'mnist', 'wgan_gp', (28, 28, 1),
         full=(64, 64, 64), quick=(16, 16, 32)),
    Case('dcgan28_sngan', 'DCGAN-28', 'mnist', 'sngan', (28, 28, 1),
         full=(64, 64, 64), quick=(16, 16, 32)),
    Case('sngan32_sngan', 'SN-DCGAN-32 (std CNN)', 'cifar10', 'sngan',
         (32, 32, 3), 'sngan_cnn', full=(512, 64, 64), quick=(64, 16, 16)),
    Case('sngan32_wgan_gp', 'SN-DCGAN-32 (std CNN)', 'cifar10', 'wgan_gp',
         (32, 32, 3), 'sngan_cnn', full=(512, 64, 64), quick=(64, 16, 16)),
    Case('resnet32_sngan', 'ResNet-32', 'cifar10', 'sngan', (32, 32, 3),
         'resnet', full=(256, 128, 64), quick=(32, 16, 16)),
)
CONV_CASE = 'dcgan28_wgan_gp'
YNN_CASES = ('mog_vanilla', 'dcgan28_vanilla', 'dcgan28_wgan_gp')


def make_config(case: Case, *, quick: bool, image_width: int = 0,
                image_batch: int = 0, conv_impl: str = '',
                cpu_ynn_fusions: str = ''):
  """The case's validated training config (``case.dispatch`` steps per call)."""
  import importlib  # pylint: disable=g-import-not-at-top
  from gan_stability import config as config_lib  # pylint: disable=g-import-not-at-top
  c = importlib.import_module(f'experiments.configs.{case.config}').get_config(
      case.variant)
  if case.model:
    c.model.name = case.model
  if case.full:
    g_width, d_width, batch = case.quick if quick else case.full
    if image_width:
      g_width = d_width = image_width
    c.model.update(g_width=g_width, d_width=d_width)
    c.batch_size = image_batch or batch
    if case.config == 'mnist':
      c.data.dir = '(synthetic batch)'  # nothing is read
  if conv_impl:
    c.model.conv_impl = conv_impl
  if cpu_ynn_fusions:
    c.cpu_ynn_fusions = cpu_ynn_fusions
  c.steps_per_dispatch = case.dispatch
  c.log_every = c.eval_every = c.checkpoint_every = case.dispatch
  config_lib.validate(c, num_devices=1)
  return c


def describe(config) -> str:
  m = config.model
  if m.name == 'mlp':
    return f'G {m.g_layers}x{m.g_hidden}, D {m.d_layers}x{m.d_hidden}'
  return f'g_width {m.g_width}, d_width {m.d_width}'


def fake_batch(config, data_shape, seed: int = 0) -> np.ndarray:
  """``[n_critic, B, ...]`` float32 'data' in [-1, 1] (its values do not
  change the cost of a step)."""
  rng = np.random.default_rng(seed)
  shape = (config.n_critic, config.batch_size) + tuple(data_shape)
  return rng.uniform(-1.0, 1.0, shape).astype(np.float32)


def _median_ms(times: list[float]) -> float:
  return 1e3 * statistics.median(times)


# --------------------------------------------------------------------- JAX ---


def matmul_peak(n: int, reps: int) -> float:
  """Median GFLOP/s of an ``n x n`` float32 ``jnp.dot`` (jitted)."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  ka, kb = jax.random.split(jax.random.key(0))
  a = jax.random.normal(ka, (n, n), jnp.float32)
  b = jax.random.normal(kb, (n, n), jnp.float32)
  dot = jax.jit(jnp.dot)
  dot(a, b).block_until_ready()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    dot(a, b).block_until_ready()
    times.append(time.perf_counter() - t)
  return 2.0 * n ** 3 / statistics.median(times) / 1e9


def torch_matmul_peak(n: int, reps: int, device: str = 'cpu') -> float:
  import torch  # pylint: disable=g-import-not-at-top
  a = torch.randn(n, n, device=device)
  b = torch.randn(n, n, device=device)
  sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
  a @ b
  sync()
  times = []
  for _ in range(reps):
    t = time.perf_counter()
    a @ b
    sync()
    times.append(time.perf_counter() - t)
  return 2.0 * n ** 3 / statistics.median(times) / 1e9


def _flops(cost) -> float | None:
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or 'flops' not in cost:
    return None
  return float(cost['flops'])


class JaxStep:
  """The loop's jitted step for ``config`` on a 1-device mesh, ready to time."""

  def __init__(self, config, data_shape, batch: np.ndarray):
    import jax  # pylint: disable=g-import-not-at-top
    from gan_stability.train import gan, loop  # pylint: disable=g-import-not-at-top
    config = config.copy_and_resolve_references()
    config.num_devices = 1
    self.config, self.data_shape = config, tuple(data_shape)
    task = gan.GANTask(config, self.data_shape)
    self.generator, self.discriminator = task.generator, task.discriminator
    self.program = loop.OnMesh(task)  # the loop's compiled step
    self.unroll = task.unroll
    self.step_fn = self.program.multi_step
    # Jitted: the same state as the loop's eager call (up to float rounding),
    # without compiling every initialiser op by op.
    init = jax.jit(task.init_state)(jax.random.key(config.seed))
    # A host copy (not a view of buffers the step donates), for the torch twin.
    self.initial = jax.tree.map(np.array, jax.device_get(init))
    self.state = self.program.place(init)
    # ``[k, n_critic, B, ...]``: the same batch for each of the k fused steps.
    self.k = config.steps_per_dispatch
    one_step = [{'x': x} for x in batch]  # the n_critic draws of one step
    self.batch = self.program.batch([[one_step] * self.k])
    self.batch1 = self.program.batch([[one_step]])
    self.key = jax.random.key(config.seed + 1)
    self.compiled = None

  def call(self) -> float:
    """Seconds of one call (``k`` fused train steps)."""
    import jax  # pylint: disable=g-import-not-at-top
    t = time.perf_counter()
    self.state, metrics = self.step_fn(self.state, self.batch, self.key)
    jax.block_until_ready((self.state, metrics))
    return time.perf_counter() - t

  def step(self) -> float:
    """Seconds per train step: one call / ``k``."""
    return self.call() / self.k

  def first_call(self) -> tuple[float, float]:
    """Seconds of the first call (compiles) and peak-RSS growth in bytes."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = self.call()
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) * 1024
    return t, grown

  def analyses(self) -> dict:
    """XLA memory and flop counts of the compiled step (see module doc)."""
    from gan_stability.train import gan, loop  # pylint: disable=g-import-not-at-top
    out = {'peak_bytes': None, 'flops': None, 'flops_source': ''}
    lowered = self.step_fn.lower(self.state, self.batch, self.key)
    compiled = lowered.compile()
    try:
      mem = compiled.memory_analysis()
    except Exception:  # pylint: disable=broad-except
      mem = None
    if mem is not None:
      out['peak_bytes'] = (mem.argument_size_in_bytes + mem.output_size_in_bytes
                           - mem.alias_size_in_bytes + mem.temp_size_in_bytes)
    if self.unroll and self.k == 1:
      out['flops'] = _flops(compiled.cost_analysis())
      out['flops_source'] = 'compiled step'
    else:  # one step (k = 1), its loops unrolled
      unrolled = self.config.copy_and_resolve_references()
      unrolled.loop_impl = 'unroll'
      program = loop.OnMesh(gan.GANTask(unrolled, self.data_shape))
      low = program.multi_step.lower(self.state, self.batch1, self.key)
      out['flops'] = _flops(low.cost_analysis())
      out['flops_source'] = 'step lowered with loops unrolled'
    return out

  def counts(self) -> tuple[int, int]:
    import jax  # pylint: disable=g-import-not-at-top
    n = lambda tree: int(sum(np.size(x) for x in jax.tree.leaves(tree)))
    return n(self.initial.g_params), n(self.initial.d_params)


# ----------------------------------------------------------------- PyTorch ---


def import_torch(cores: int):
  """``torch`` or ``None`` when it is not installed (or ``--notorch``).

  Sets ``OMP_WAIT_POLICY`` first as ``--omp_wait_policy`` says (it is read
  when torch loads its OpenMP runtime)."""
  if not FLAGS.torch:
    return None
  policy = FLAGS.omp_wait_policy
  if policy == 'auto':
    policy = 'passive' if os.getloadavg()[0] >= cores else 'keep'
  if policy == 'passive' and 'torch' not in sys.modules:
    os.environ['OMP_WAIT_POLICY'] = 'PASSIVE'
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return None
  return torch


class TorchStep:
  """The PyTorch twin of a :class:`JaxStep`, from the same initial state."""

  def __init__(self, jax_step: JaxStep, batch: np.ndarray, device: str = 'cpu'):
    import jax  # pylint: disable=g-import-not-at-top
    import torch  # pylint: disable=g-import-not-at-top
    from experiments.bench import torch_models as tm  # pylint: disable=g-import-not-at-top
    c, s = jax_step.config, jax_step.initial
    g, d = tm.build(c.model, jax_step.data_shape)
    self.counts = (tm.num_params(g), tm.num_params(d))
    tm.copy_from_flax(g, s.g_params, s.g_collections)
    tm.copy_from_flax(d, s.d_params, s.d_collections)
    self.device = torch.device(device)
    g, d = g.to(self.device), d.to(self.device)
    # Forward check: G (train-mode batch norm) and D (no power iteration)
    # against the Flax modules on the same inputs and weights.
    rng = np.random.default_rng(1)
    n = min(8, c.batch_size)
    z = rng.standard_normal((n, c.model.z_dim)).astype(np.float32)
    x = batch[0, :n]
    g_jax = jax.jit(lambda v, z: jax_step.generator.apply(
        v, z, train=True, mutable=list(s.g_collections))[0])(
            {'params': s.g_params, **s.g_collections}, z)
    d_jax = jax.jit(lambda v, x: jax_step.discriminator.apply(
        v, x, update_stats=False, train=True,
        mutable=list(s.d_collections))[0])(
            {'params': s.d_params, **s.d_collections}, x)
    g.train()
    d.train()
    for sn in tm.spectral_norms(d):
      sn.train(False)
    with torch.no_grad():
      g_t = tm.from_torch_images(g(torch.from_numpy(z).to(self.device)))
      d_t = d(tm.to_torch_images(x).to(self.device)).cpu().numpy()
    for sn in tm.spectral_norms(d):
      sn.train(True)
    rel = lambda ref, x: float(np.max(np.abs(np.asarray(ref) - x))
                               / max(np.max(np.abs(np.asarray(ref))), 1e-12))
    self.forward_diff = (rel(g_jax, g_t), rel(d_jax, d_t))
    # TF32 on the GPU (both frameworks) rounds to ~1e-3 relative.
    if max(self.forward_diff) > (1e-3 if device == 'cpu' else 3e-2):
      raise AssertionError(f'PyTorch twin differs from the Flax model: relative '
                           f'difference G {self.forward_diff[0]:.1e}, '
                           f'D {self.forward_diff[1]:.1e}')
    self.gan = tm.TorchGAN(c, g, d)
    self.real = tm.to_torch_images(batch).to(self.device)

  def step(self) -> float:
    t = time.perf_counter()
    self.gan.step(self.real)
    return time.perf_counter() - t


# ------------------------------------------------------------------ runner ---


def time_alternating(runners: list, steps: int, warmup: int, rounds: int,
                     max_seconds: float) -> list[list[float]]:
  """Per runner, ``steps`` timed steps in ``rounds`` alternating blocks."""
  for r in runners:
    for _ in range(warmup):
      r.step()
  times = [[] for _ in runners]
  spent = [0.0 for _ in runners]
  per_round = [steps // rounds + (i < steps % rounds) for i in range(rounds)]
  for n in per_round:
    for i, r in enumerate(runners):
      for _ in range(n):
        if spent[i] > max_seconds and len(times[i]) >= 3:
          break
        t = r.step()
        times[i].append(t)
        spent[i] += t
  return times


def run_case(case: Case, *, quick: bool, steps: int, warmup: int,
             conv_impl: str = '', with_torch: bool = True,
             torch_device: str = 'cpu') -> dict:
  """Times one case; returns a result row (see :func:`table`)."""
  config = make_config(case, quick=quick, image_width=FLAGS.image_width,
                       image_batch=FLAGS.image_batch, conv_impl=conv_impl,
                       cpu_ynn_fusions=FLAGS.cpu_ynn_fusions)
  from gan_stability import kernels  # pylint: disable=g-import-not-at-top
  batch = fake_batch(config, case.data_shape)
  js = JaxStep(config, case.data_shape, batch)
  first, rss_grown = js.first_call()
  row = {'case': case.name, 'label': case.label, 'describe': describe(config),
         'batch': config.batch_size, 'n_critic': config.n_critic,
         'loop': 'unroll' if js.unroll else 'scan', 'dispatch': js.k,
         'conv_impl': ('' if config.model.name == 'mlp' else
                       kernels.resolve_impl(config.model.get('conv_impl', 'auto'))),
         'ynn': config.cpu_ynn_fusions,
         'jax_params': js.counts(), 'torch_params': None, 'forward_diff': None,
         'steps': 0, 'torch_steps': 0}
  row.update(js.analyses())
  if row['peak_bytes'] is None:
    row['peak_bytes'], row['peak_source'] = rss_grown, 'RSS'
  else:
    row['peak_source'] = 'XLA'
  runners = [js]
  if with_torch:
    ts = TorchStep(js, batch, torch_device)
    row['torch_params'], row['forward_diff'] = ts.counts, ts.forward_diff
    if ts.counts != row['jax_params']:
      raise AssertionError(f'{case.name}: parameter counts differ: JAX '
                           f'{row["jax_params"]} vs PyTorch {ts.counts}')
    runners.append(ts)
  times = time_alternating(runners, steps * case.steps_factor, warmup,
                           FLAGS.rounds, FLAGS.max_seconds)
  row['jax_ms'], row['steps'] = _median_ms(times[0]), len(times[0])
  row['compile_s'] = first - js.k * row['jax_ms'] / 1e3
  if with_torch:
    row['torch_ms'], row['torch_steps'] = _median_ms(times[1]), len(times[1])
  return row


def time_ynn_pair(case: Case, setting: str, *, quick: bool, steps: int,
                  warmup: int) -> list[dict]:
  """JAX ms/step of ``case`` with ``cpu_ynn_fusions`` 'xla' and ``setting``,
  both compiled first and then timed in alternating blocks."""
  steppers, rows = [], []
  for ynn in ('xla', setting):
    config = make_config(case, quick=quick, image_width=FLAGS.image_width,
                         image_batch=FLAGS.image_batch, cpu_ynn_fusions=ynn)
    js = JaxStep(config, case.data_shape, fake_batch(config, case.data_shape))
    js.first_call()
    steppers.append(js)
    rows.append({'case': case.name, 'ynn': ynn})
  times = time_alternating(steppers, steps * case.steps_factor, warmup,
                           FLAGS.rounds, FLAGS.max_seconds)
  for row, t in zip(rows, times):
    row['jax_ms'], row['steps'] = _median_ms(t), len(t)
  return rows


def _fmt(x, spec: str) -> str:
  return 'n/a' if x is None else format(x, spec)


def _params(p) -> str:
  return 'n/a' if p is None else f'{p[0]:,} / {p[1]:,}'


def table(rows: list[dict], peak: float) -> list[str]:
  lines = [
      '| case | model | params G / D (JAX) | params G / D (PyTorch) | batch | '
      'n_critic | JAX ms/step | PyTorch ms/step | JAX / PyTorch | '
      'JAX compile s | JAX peak MiB | GFLOP/step (XLA) | GFLOP/s | % peak | '
      'fwd rel. diff G / D |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    torch_ms = r.get('torch_ms')
    gflop = None if r['flops'] is None else r['flops'] / 1e9
    rate = None if gflop is None else gflop / (r['jax_ms'] / 1e3)
    model = f"{r['label']}, {r['describe']}"
    if r['conv_impl']:
      model += f", conv {r['conv_impl']}"
    model += f", {r['loop']}"
    if r.get('dispatch', 1) > 1:
      model += f", {r['dispatch']} steps per call"
    fwd = ('n/a' if r['forward_diff'] is None else
           f"{r['forward_diff'][0]:.0e} / {r['forward_diff'][1]:.0e}")
    lines.append(
        f"| {r['case']} | {model} | {_params(r['jax_params'])} | "
        f"{_params(r['torch_params'])} | {r['batch']} | {r['n_critic']} | "
        f"{r['jax_ms']:.1f} | {_fmt(torch_ms, '.1f')} | "
        f"{_fmt(None if torch_ms is None else r['jax_ms'] / torch_ms, '.2f')} | "
        f"{r['compile_s']:.1f} | {r['peak_bytes'] / MIB:.1f} ({r['peak_source']}) | "
        f"{_fmt(gflop, '.3f')} | {_fmt(rate, '.2f')} | "
        f"{_fmt(None if rate is None else 100 * rate / peak, '.1f')} | {fwd} |")
  return lines


def conv_table(rows: list[dict], peak: float) -> list[str]:
  native = next((r for r in rows if r['conv_impl'] == 'native'), None)
  useful = None if native is None else native['flops']
  lines = ['| conv_impl | loops | JAX ms/step | speed-up vs native | '
           'JAX compile s | JAX peak MiB | GFLOP/step (XLA) | GFLOP/s | % peak | '
           'GFLOP/s at the native count | % peak |',
           '|---|---|---|---|---|---|---|---|---|---|---|']
  for r in rows:
    sec = r['jax_ms'] / 1e3
    gflop = None if r['flops'] is None else r['flops'] / 1e9
    rate = None if gflop is None else gflop / sec
    rate_n = None if useful is None else useful / 1e9 / sec
    speed = None if native is None else native['jax_ms'] / r['jax_ms']
    pct = lambda x: _fmt(None if x is None else 100 * x / peak, '.1f')
    lines.append(
        f"| {r['conv_impl']} | {r['loop']} | {r['jax_ms']:.1f} | "
        f"{_fmt(speed, '.2f')}x | {r['compile_s']:.1f} | "
        f"{r['peak_bytes'] / MIB:.1f} ({r['peak_source']}) | {_fmt(gflop, '.3f')} | "
        f"{_fmt(rate, '.2f')} | {pct(rate)} | {_fmt(rate_n, '.2f')} | {pct(rate_n)} |")
  return lines


def ynn_table(rows: list[dict]) -> list[str]:
  lines = ['| case | cpu_ynn_fusions | JAX ms/step | speed-up vs xla |',
           '|---|---|---|---|']
  base = {r['case']: r['jax_ms'] for r in rows if r['ynn'] == 'xla'}
  for r in rows:
    b = base.get(r['case'])
    lines.append(f"| {r['case']} | {r['ynn']} | {r['jax_ms']:.1f} | "
                 f"{_fmt(None if b is None else b / r['jax_ms'], '.2f')}x |")
  return lines


def check_flags() -> None:
  """Refuses a negative count or an empty budget: one line naming the flag,
  status 2."""
  for name in ('steps', 'warmup', 'image_width', 'image_batch',
               'matmul_size'):
    if FLAGS[name].value < 0:
      entry.fail(f'--{name}: expected >= 0 (0: the default), got '
                 f'{FLAGS[name].value}')
  if FLAGS.rounds < 1:
    entry.fail(f'--rounds: expected >= 1, got {FLAGS.rounds}')
  if not FLAGS.max_seconds > 0:
    entry.fail(f'--max_seconds: expected > 0, got {FLAGS.max_seconds}')


def main(argv):
  entry.no_arguments(argv)
  check_flags()
  logging.set_verbosity(logging.WARNING)
  import jax  # pylint: disable=g-import-not-at-top
  quick = FLAGS.quick
  steps = FLAGS.steps or (5 if quick else 20)
  warmup = FLAGS.warmup or (1 if quick else 2)
  size = FLAGS.matmul_size or (1024 if quick else 2048)
  known = {c.name: c for c in CASES}
  unknown = [n for n in FLAGS.only if n not in known]
  if unknown:
    entry.fail(f'--only: unknown cases {unknown}; known: {sorted(known)}')
  cases = [known[n] for n in FLAGS.only] if FLAGS.only else list(CASES)
  cores = len(os.sched_getaffinity(0))
  torch = import_torch(cores)
  torch_device = 'cpu'
  if torch is not None:
    torch.set_num_threads(cores)
    torch_device = FLAGS.torch_device
    if torch_device == 'auto':
      torch_device = ('cuda' if jax.devices()[0].platform == 'gpu'
                      and torch.cuda.is_available() else 'cpu')
    if torch_device == 'cuda':
      torch.set_float32_matmul_precision('high')
      torch.backends.cudnn.benchmark = True
  load0 = os.getloadavg()[0]
  t_start = time.perf_counter()

  reps = 10 if quick else 20
  peak = matmul_peak(size, reps)
  header = [
      f'jax {jax.__version__} ({jax.devices()[0].platform}, 1 device), '
      + ((f'torch {torch.__version__} ({torch.get_num_threads()} threads, '
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})"
          if torch_device == 'cpu' else
          f'torch {torch.__version__} (cuda: {torch.cuda.get_device_name()}, '
          'TF32 matmuls, cudnn.benchmark)')
         if torch is not None else 'torch not available (PyTorch columns n/a)')
      + f', {cores} CPU cores, load average {load0:.1f} at start'
      + (f', cpu_ynn_fusions={FLAGS.cpu_ynn_fusions} (all cases)'
         if FLAGS.cpu_ynn_fusions else ", the configs' cpu_ynn_fusions")
      + (', --quick' if quick else ''),
      f'matmul peak: {size}x{size} float32 jnp.dot, median {peak:.1f} GFLOP/s'
      + (f' (torch.mm: {torch_matmul_peak(size, reps, torch_device):.1f})'
         if torch is not None else '')]
  print('\n'.join(header), flush=True)

  rows = []
  for case in cases:
    row = run_case(case, quick=quick, steps=steps, warmup=warmup,
                   with_torch=torch is not None, torch_device=torch_device)
    rows.append(row)
    print(table([row], peak)[-1], flush=True)

  conv_rows = []
  conv_case = known[CONV_CASE]
  if FLAGS.conv_table and conv_case in cases:
    done = next(r for r in rows if r['case'] == CONV_CASE)
    for impl in ('native', 'fast_matmul', 'fast'):
      if done['conv_impl'] == impl:
        conv_rows.append(done)
      else:
        conv_rows.append(run_case(conv_case, quick=quick, steps=steps,
                                  warmup=warmup, conv_impl=impl,
                                  with_torch=False))
      print(conv_table(conv_rows, peak)[-1], flush=True)

  ynn_rows = []
  if FLAGS.ynn_table:
    for name in YNN_CASES:
      done = next((r for r in rows if r['case'] == name), None)
      if done is None or done['ynn'] == 'xla':
        continue
      ynn_rows += time_ynn_pair(known[name], done['ynn'], quick=quick,
                                steps=steps, warmup=warmup)
      for line in ynn_table(ynn_rows)[-2:]:
        print(line, flush=True)

  peak_end = matmul_peak(size, reps)
  header[-1] += (f' at start, {peak_end:.1f} at end; % peak is of the larger'
                 ' (the lines printed while running: of the first)')
  peak = max(peak, peak_end)
  timed = sorted({r['steps'] for r in rows + conv_rows + ynn_rows}
                 | {r['torch_steps'] for r in rows if r['torch_steps']})
  timed_s = (f'{timed[0]}' if len(timed) == 1 else f'{timed[0]}-{timed[-1]}')
  report = header + [
      f'load average {os.getloadavg()[0]:.1f} at end; '
      f'{time.perf_counter() - t_start:.0f} s in all; median of {timed_s} timed '
      f'steps after {warmup} warm-up steps, in {FLAGS.rounds} alternating '
      'rounds; one train step = n_critic D updates + 1 G update, one step '
      'per call unless the model column says otherwise (then ms/step = call '
      '/ steps per call)', '',
      '## Train step, JAX vs PyTorch (1 device)', ''] + table(rows, peak)
  report += ['', 'cpu_ynn_fusions (XLA:CPU op kinds run by YNNPACK): ' + ', '.join(
      sorted({r['ynn'] for r in rows})) + ' (auto: reduce on the CPU). '
             'GFLOP/step: ' + '; '.join(sorted({
      r['flops_source'] for r in rows if r['flops_source']})) + '. Peak MiB: '
             'XLA = argument + output - alias + temp of the compiled step, '
             'RSS = peak-RSS growth over the first call. fwd rel. diff: max '
             '|JAX - PyTorch| / max |JAX| of G(z) and D(x) with the same '
             'weights.']
  if conv_rows:
    report += ['', f'## model.conv_impl for {CONV_CASE} '
               f'({conv_rows[0]["describe"]}, batch {conv_rows[0]["batch"]})', '']
    report += conv_table(conv_rows, peak)
  if ynn_rows:
    report += ['', '## cpu_ynn_fusions: the configs\' setting vs XLA\'s '
               'default (xla), timed alternately', ''] + ynn_table(ynn_rows)
  text = '\n'.join(report) + '\n'
  print('\n' + text, flush=True)
  if FLAGS.out:
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, 'w') as f:
      f.write(text)


if __name__ == '__main__':
  entry.main(main)
