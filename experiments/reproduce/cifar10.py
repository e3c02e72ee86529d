r"""CIFAR-10 SN-GAN and WGAN-GP, standard CNN and ResNet (Miyato et al. 2018).

    python -m experiments.reproduce.cifar10 --workdir=/tmp/repro_cifar10 \
        [--data_dir=TFDS_DATA_DIR] [--inception_path=fid_inception_v3_2015.npz] \
        [--eval_protocol=10k_5k|50k_50k] [--seeds=3] [--archs=cnn,resnet] \
        [--recipes=sngan,wgan_gp] [--time_steps=5] [--out=DIR]
    python -m experiments.reproduce.cifar10 --quick --workdir=/tmp/q  # a check

Reproduces the CIFAR-10 rows of Miyato, Kataoka, Koyama & Yoshida,
"Spectral Normalization for Generative Adversarial Networks", ICLR 2018
(Table 2; architectures in Tables 3 and 4) for the two recipes this project
implements, on both architectures: 2 recipes x 2 architectures x seeds, each
one training run of the sweep runner (finished runs are skipped, interrupted
ones resume: rerun the command), then one evaluation of its final checkpoint.

Configs (``experiments/configs/cifar10.py``, recipes in
``experiments/configs/recipes.py``; every value below is set there):

* data: ``tfds:cifar10`` train split (50,000 images, 32x32x3, scaled to
  [-1, 1]), through ``tfds.data_source`` from ``--data_dir`` (the TFDS
  data_dir; '' = the TFDS default);
* ``cnn`` - the standard CNN of Miyato et al. Table 3
  (``gan_stability/models/cnn.py``): z 128, G widths 512-256-128-64 with
  batch norm (``g_width 512``), D 64-64-128-128-256-256-512 with leaky ReLU
  0.1 (``d_width 64``), no normalisation in D besides spectral norm;
* ``resnet`` - the ResNet of Gulrajani et al. 2017 Appendix F, = Miyato et
  al. Table 4 (``gan_stability/models/resnet.py``): z 128, G 256 channels,
  D 128 channels (``model.g_width=256, model.d_width=128``, as the ResNet
  command of docs/images.md);
* ``sngan`` - spectral norm on every D layer (one power iteration per
  step), the non-saturating loss, n_dis 5, Adam(lr 1e-4, beta1 0.5, beta2
  0.9): Miyato et al. Table 1 setting A;
* ``wgan_gp`` - Wasserstein loss + gradient penalty lambda 10 on random
  interpolates, n_critic 5, Adam(lr 1e-4, beta1 0, beta2 0.9): Gulrajani et
  al. 2017, Algorithm 1 (as in Miyato et al.'s comparison);
* batch 64 and 100,000 generator updates (each after n_critic D updates on
  their own real batches): the defaults of ``experiments/configs/
  cifar10.py``. The paper (checked against a text copy of arXiv:1802.05957,
  sec. 4.1): "The number of updates for GAN generator were 100K for all
  experiments"; it does not state its batch size.

Differences from the paper (checked against its text): its plain "SN-GANs"
rows use the standard objective (15) for D and the non-saturating
``-E log D(G(z))`` for G, as the ``sngan`` recipe does; its best rows
("SN-GANs, Eq. (17)" and every ResNet row) use the hinge loss (eqs. 16-17;
``loss='hinge'`` here). Table 2 gives the standard-CNN rows "with optimal
settings" without naming which of the Table 1 settings A-F each used (the
recipe here is setting A: lr 1e-4, betas (0.5, 0.9), n_dis 5). The ResNet
runs use Gulrajani et al.'s hyper-parameters (Appendix B.2: lr 2e-4,
betas (0, 0.9), n_dis 5) and, for SN-GAN, twice the generator's feature
maps; the paper states no learning-rate decay for CIFAR-10. ``dz = 128``.

Evaluation (``--eval_protocol``):

* ``10k_5k`` (default) - FID between 10,000 real training images and 5,000
  generated samples: what Miyato et al. used (Appendix B.1: "We computed the
  Frechet inception distance between the true distribution and the
  generated distribution empirically over 10000 and 5000 samples"; which
  count is real and which generated, and the real split, are not stated;
  10,000 real / 5,000 generated is the natural reading). Their Inception
  score: 5,000 samples, each experiment repeated 10 times, mean and standard
  deviation; ResNet rows: mean and standard deviation over models trained
  with different seeds (footnote 5).
* ``50k_50k`` - 50,000 real (the whole train split) and 50,000 generated:
  the common modern protocol, lower (better) FID than 10k/5k for the same
  generator, since FID is biased upwards at small sample sizes.

FID and KID (x 1e3, cubic polynomial kernel) are computed by the project's
evaluator (``gan_stability/eval/``) on the FID Inception-v3
(``--inception_path``, the ``.npz`` of ``third_party/README.md``); without
it they are skipped, with a message, and the table shows "skipped". The
real-image statistics are cached once per protocol in
``WORKDIR/eval_cache``. IS is not computed: the FID Inception weights stop
at the pool features (no logits layer), so the table says "n/a". Every
evaluation also reports ``diversity`` (RMS difference per pixel between the
first and second half of the samples, ``gan_stability/metrics/
dynamics.py``), which needs no weights.

Cost. Nothing has been run for real: this machine has no CIFAR-10 files and
no accelerator, and the script refuses to start without the data (nothing is
trained, no number is produced). Measured train-step times on this
project's 2-core CPU (``docs/bench/train_steps.md``, batch 64, n_critic 5):
standard CNN SN-GAN 3,041 ms, standard CNN WGAN-GP 4,600 ms, ResNet SN-GAN
14,706 ms per generator update (ResNet WGAN-GP: not measured) - 84, 128 and
409 hours for one 100,000-step run. No GPU/TPU time has been measured; the
script prints the estimate ``hours = ms/step x num_steps x seeds / 3.6e6``
per row from these CPU numbers, and from a measurement on the current
device with ``--time_steps=N`` (run it on the accelerator: it compiles each
full-size train step and times N of them after one warm-up call). The
evaluation costs Inception features of ``num_fake`` images per run plus
``num_real`` once (their speed on this CPU: docs/metrics.md).

Writes ``cifar10.md`` (our rows beside the published ones, and the time
estimate), ``cifar10.csv`` (one row per run) and ``summary.csv`` (mean and
standard error over seeds) to ``--out`` (default ``WORKDIR``).

``--quick`` runs every (recipe, architecture) for 2 steps with tiny widths on
``tfds.testing.mock_data`` (random images), evaluates 16 samples against 16
"real" ones (FID/KID only if ``--inception_path`` is given) and writes the
table: a check of the pipeline, not a result.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time

import numpy as np
from absl import flags, logging

from experiments import entry
from experiments.reproduce import common
from gan_stability.sweep import spec as sw

FLAGS = flags.FLAGS
SPEC = 'experiments/reproduce/cifar10.py'
BASE = 'experiments/configs/cifar10.py:sngan'
DATA_SHAPE = (32, 32, 3)

# (label, cifar10.py variant)
RECIPES = (('SN-GAN', 'sngan'), ('WGAN-GP', 'wgan_gp'))
# name -> (label, model.name, g_width, d_width, quick g_width, quick d_width)
ARCHS = {
    'cnn': ('standard CNN', 'sngan_cnn', 512, 64, 16, 8),
    'resnet': ('ResNet', 'resnet', 256, 128, 8, 8),
}
# name -> (real images, generated samples)
PROTOCOLS = {'10k_5k': (10_000, 5_000), '50k_50k': (50_000, 50_000)}
DEFAULT_PROTOCOL = '10k_5k'
QUICK_EVAL = (16, 16)
NUM_STEPS = 100_000
QUICK_STEPS = 2
DEFAULT_SEEDS = 3
MOCK_EXAMPLES = 32

BUDGET = {
    'log_every': 500, 'eval_every': 10_000, 'checkpoint_every': 2_000,
    'write_tensorboard': False,
}
QUICK = {
    'batch_size': 8, 'log_every': 2, 'eval_every': 2, 'checkpoint_every': 2,
    'eval_samples': 8, 'write_samples': False, 'log_sigmas': False,
    'model.z_dim': 16, 'data.samples_per_row': 2,
    # Implementation only (the same functions): XLA's own convolutions and
    # rolled loops compile ~2x faster, which is what a 2-step check pays for.
    'model.conv_impl': 'native', 'loop_impl': 'scan',
}

# ms per generator update (n_critic 5 D updates + 1 G update, batch 64),
# measured on this project's 2-core CPU by experiments/bench/train_steps.py
# on 2026-11-24 (jax 0.10.2, fast_conv's custom VJPs at commit c620a21, loops
# unrolled; matmul peak 331 GFLOP/s). The milliseconds of this shared
# machine vary from run to run (runs on 2026-11-25 met matmul peaks of 205
# to 337 GFLOP/s; docs/bench/train_steps.md holds the latest), so these
# estimates are kept as they were. Keyed by (recipe, arch).
CPU_MS_PER_STEP = {('sngan', 'cnn'): 3040.6, ('wgan_gp', 'cnn'): 4599.6,
                   ('sngan', 'resnet'): 14706.2}
# FID feature speed on this CPU, measured 2026-11-24 (1,000 images); 14.9 on
# 2026-11-25 with the Eigen convolutions (500 images): kept as an upper bound
# on the time.
CPU_INCEPTION_IMAGES_PER_S = 6.5


# ------------------------------------------------------------- the sweep ---


def make_arg(*, archs=tuple(ARCHS), recipes=tuple(r[1] for r in RECIPES),
             seeds: int = DEFAULT_SEEDS, num_steps: int = NUM_STEPS,
             quick: bool = False, data_dir: str = '') -> str:
  """``ARCH+ARCH,recipes=R+R,seeds=N,steps=N[,quick],data=DIR``: the sweep
  argument the workers rebuild the sweep from (``data=`` is last and takes
  the rest of the text; empty = the TFDS default data_dir)."""
  parts = ['+'.join(archs), 'recipes=' + '+'.join(recipes),
           f'seeds={seeds}', f'steps={num_steps}']
  if quick:
    parts.append('quick')
  return ','.join(parts + [f'data={data_dir}'])


def parse_arg(arg: str | None):
  """Inverse of :func:`make_arg`: ``(archs, recipes, seeds, steps, quick,
  data_dir)``."""
  variants = [r[1] for r in RECIPES]
  error = ValueError(
      f'reproduce/cifar10: sweep argument {arg!r}; allowed: ARCH[+ARCH],'
      'recipes=R[+R],seeds=N,steps=N[,quick],data=DIR with ARCH in '
      f'{list(ARCHS)}, R in {variants}, N >= 1')
  head, sep, data_dir = (arg or '').partition(',data=')
  if not sep:
    raise error
  first, *rest = head.split(',')
  archs = tuple(first.split('+'))
  if any(a not in ARCHS for a in archs) or len(set(archs)) != len(archs):
    raise error
  recipes, seeds, steps, quick = None, None, None, False
  for part in rest:
    key, _, value = part.partition('=')
    if part == 'quick':
      quick = True
    elif key == 'recipes' and value and all(
        v in variants for v in value.split('+')):
      recipes = tuple(value.split('+'))
    elif key in ('seeds', 'steps') and value.isdigit() and int(value) >= 1:
      if key == 'seeds':
        seeds = int(value)
      else:
        steps = int(value)
    else:
      raise error
  if recipes is None or seeds is None or steps is None or len(
      set(recipes)) != len(recipes):
    raise error
  return archs, recipes, seeds, steps, quick, data_dir


def get_sweep(arg: str | None = None) -> sw.Sweep:
  """The sweep (``--sweep=experiments/reproduce/cifar10.py:ARG``)."""
  archs, recipes, seeds, steps, quick, data_dir = parse_arg(arg)
  overrides = {**BUDGET, **(QUICK if quick else {}), 'num_steps': steps,
               'data.dir': data_dir}
  w = (4, 5) if quick else (2, 3)
  return sw.Sweep(
      base=BASE,
      overrides=overrides,
      axes=sw.product(
          sw.axis('variant', list(recipes)),
          sw.zip(sw.axis('model.name', [ARCHS[a][1] for a in archs]),
                 sw.axis('model.g_width', [ARCHS[a][w[0]] for a in archs]),
                 sw.axis('model.d_width', [ARCHS[a][w[1]] for a in archs])),
          sw.axis('seed', range(seeds))),
      seeds_in_one_program=False,
      description='CIFAR-10, Miyato et al. 2018 Table 2.')


def arch_of(model_name: str) -> str:
  return next(a for a, spec in ARCHS.items() if spec[1] == model_name)


def recipe_label(variant: str) -> str:
  return next(label for label, v in RECIPES if v == variant)


# ------------------------------------------------------------------ runs ---


def mock_data(quick: bool):
  """``tfds.testing.mock_data`` (random images) for ``--quick``, else nothing."""
  if not quick:
    return contextlib.nullcontext()
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  return tfds.testing.mock_data(num_examples=MOCK_EXAMPLES,
                                policy=tfds.testing.MockPolicy.USE_CODE)


def check_data(config) -> None:
  """Raises FileNotFoundError, before anything is trained, when the CIFAR-10
  TFDS files are not in ``config.data.dir`` (they are read, then cached for
  the in-process runs)."""
  from gan_stability import data as data_lib  # pylint: disable=g-import-not-at-top
  try:
    data_lib.load_images(config)
  except Exception as e:  # pylint: disable=broad-except
    where = config.data.dir or 'the TFDS default data_dir'
    raise FileNotFoundError(
        f'--data_dir: no prepared CIFAR-10 TFDS dataset in {where} '
        f'({type(e).__name__}: {str(e)[:300]}). Prepare it on a machine with '
        'network access (tensorflow_datasets with file_format=array_record) '
        'and pass its data_dir. Nothing was trained and no number is '
        'claimed.') from e


def train(workdir: str, arg: str, *, parallel: int = 1) -> float:
  """Trains (or resumes, or skips) every run of the sweep; wall seconds."""
  return common.run_sweep(SPEC, arg, workdir, get_sweep(arg),
                          parallel=parallel, tag='cifar10')


def eval_metrics(inception_path: str) -> str:
  """``config.eval.metrics`` of the protocol: FID and KID need the weights."""
  return 'fid,kid' if inception_path else ''


def evaluate_run(run_dir: str, *, num_real: int, num_fake: int,
                 inception_path: str, cache_dir: str) -> dict:
  """Evaluates the run's final checkpoint on ``num_fake`` samples against
  ``num_real`` training images (FID/KID when ``inception_path`` is given;
  diversity always). Reuses an earlier result of the same protocol from
  ``metrics.jsonl``; otherwise appends one (``evaluate_only: true``)."""
  metrics = eval_metrics(inception_path)
  earlier = common.final_evaluation(run_dir, eval_num_samples=num_fake,
                                    eval_num_real=num_real,
                                    eval_metrics=metrics)
  if earlier is not None:
    return earlier
  from gan_stability.eval import offline  # pylint: disable=g-import-not-at-top
  return offline.evaluate_checkpoint(
      run_dir, num_samples=num_fake,
      eval_overrides={'metrics': metrics, 'num_real': num_real,
                      'inception_path': inception_path,
                      'cache_dir': cache_dir})


def collect_rows(workdir: str, *, num_real: int, num_fake: int,
                 inception_path: str) -> list[dict]:
  """One row per run (evaluating finished runs not yet evaluated)."""
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  _, runs, unfinished = report.collect(workdir)
  if unfinished:
    raise RuntimeError(f'{unfinished} runs not finished; rerun the command')
  rows = []
  for r in runs:
    row = {
        'recipe': recipe_label(r.values['variant']),
        'variant': r.values['variant'],
        'arch': arch_of(r.values['model.name']),
        'g_width': r.values['model.g_width'],
        'd_width': r.values['model.d_width'], 'seed': r.values['seed'],
        'status': r.status,
        'step': max((int(x['step']) for x in r.records
                     if not x.get('evaluate_only')), default=0),
        'num_real': num_real, 'num_fake': num_fake,
        'fid': float('nan'), 'kid': float('nan'), 'diversity': float('nan'),
    }
    if r.ok:
      result = evaluate_run(os.path.join(workdir, 'runs', r.name),
                            num_real=num_real, num_fake=num_fake,
                            inception_path=inception_path,
                            cache_dir=os.path.join(workdir, 'eval_cache'))
      if result.get('samples_finite') is False:
        row['status'] = 'non-finite samples'
      for m in ('fid', 'kid', 'diversity'):
        if isinstance(result.get(m), (int, float)):
          row[m] = float(result[m])
    rows.append(row)
  return rows


def summarise(rows: list[dict], archs, recipes) -> list[dict]:
  """Mean and standard error over seeds per (recipe, architecture)."""
  from gan_stability.sweep import report  # pylint: disable=g-import-not-at-top
  out = []
  for arch in archs:
    for variant in recipes:
      sel = [r for r in rows if (r['arch'], r['variant']) == (arch, variant)]
      if not sel:
        continue
      row = {'recipe': recipe_label(variant), 'arch': arch,
             'seeds': len(sel), 'ok': sum(r['status'] == 'ok' for r in sel)}
      for m in ('fid', 'kid', 'diversity'):
        row[m], row[m + '_se'], _ = report.mean_se([r[m] for r in sel])
      out.append(row)
  return out


# ------------------------------------------------------------ time cost ---


def time_train_step(config, steps: int, data_shape=DATA_SHAPE) -> float:
  """Median ms of one train step of ``config`` (``steps`` timed calls after
  one warm-up call, on random data of ``data_shape``), built as the training
  loop builds it, on one device of the current backend."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_stability.train import gan, loop  # pylint: disable=g-import-not-at-top
  config = config.copy_and_resolve_references()
  config.update(steps_per_dispatch=1, num_devices=1)
  task = gan.GANTask(config, tuple(data_shape))
  program = loop.OnMesh(task)  # the loop's compiled step
  key = jax.random.key(config.seed)
  state = program.place(task.init_state(key))
  rng = np.random.default_rng(0)
  local = rng.uniform(-1, 1, (config.n_critic, config.batch_size)
                      + tuple(data_shape)).astype(np.float32)
  batch = program.batch([[[{'x': x} for x in local]]])
  fn = program.multi_step
  times = []
  for i in range(steps + 1):
    t = time.perf_counter()
    state, metrics = fn(state, batch, key)
    jax.block_until_ready((state, metrics))
    if i:  # the first call compiles
      times.append(time.perf_counter() - t)
  return 1e3 * statistics.median(times)


def device_name() -> str:
  import jax  # pylint: disable=g-import-not-at-top
  d = jax.devices()[0]
  kind = getattr(d, 'device_kind', '') or ''
  return d.platform if kind.lower() in ('', d.platform) else f'{d.platform} ({kind})'


def estimate_hours(ms_per_step: float, num_steps: int, seeds: int) -> float:
  """``ms/step x num_steps x seeds / 3.6e6``: training hours of one row."""
  return ms_per_step * num_steps * seeds / 3.6e6


def cost_table(*, archs, recipes, seeds: int, num_steps: int,
               protocol_name: str, measured: dict, device: str,
               quick: bool) -> str:
  """The time estimate (Markdown) of the full-size runs: the CPU numbers of
  docs/bench and the ``measured`` ``{(recipe, arch): ms/step}``."""
  num_real, num_fake = PROTOCOLS[protocol_name]
  lines = [
      '### Time estimate', '',
      f'hours = ms/step × num_steps × seeds / 3.6e6, here with num_steps = '
      f'{num_steps:,} and seeds = {seeds}. No accelerator has been measured '
      'for this project; "this CPU" is docs/bench/train_steps.md (full-size '
      'networks, batch 64, 2 cores). Run with --time_steps=N on the '
      'accelerator for its column.', '',
      '| recipe | architecture | ms/step, this CPU | hours, this CPU | '
      f'ms/step, measured now on {device}'
      + (' (the quick networks, batch 8)' if quick else '')
      + ' | hours at that rate |',
      '|---|---|---|---|---|---|']
  for arch in archs:
    for variant in recipes:
      cpu = CPU_MS_PER_STEP.get((variant, arch))
      now = measured.get((variant, arch))
      lines.append(
          f'| {recipe_label(variant)} | {ARCHS[arch][0]} | '
          + (f'{cpu:,.0f} | {estimate_hours(cpu, num_steps, seeds):,.0f} | '
             if cpu else 'not measured | — | ')
          + (f'{now:,.1f} | {estimate_hours(now, num_steps, seeds):,.2f} |'
             if now else 'not measured (--time_steps=0) | — |'))
  runs = len(archs) * len(recipes) * seeds
  images = runs * num_fake + num_real
  lines += ['', f'Evaluation ({protocol_name}): Inception features of '
            f'{num_fake:,} samples per '
            f'run and {num_real:,} real images once = {images:,} images for '
            f'{runs} runs; at {CPU_INCEPTION_IMAGES_PER_S} images/s (this '
            f'CPU) {images / CPU_INCEPTION_IMAGES_PER_S / 3600:,.1f} h; '
            'accelerator: not measured.']
  return '\n'.join(lines) + '\n'


# ---------------------------------------------------------------- tables ---


def markdown(summary: list[dict], *, archs, inception: bool, note: str,
             cost: str) -> str:
  from experiments.reproduce import published  # pylint: disable=g-import-not-at-top
  skipped = 'skipped (no --inception_path)'
  lines = []
  for arch in archs:
    lines += [f'### {ARCHS[arch][0]}', '',
              '| method | FID | KID × 1e3 | IS | diversity | source |',
              '|---|---|---|---|---|---|']
    for r in summary:
      if r['arch'] != arch:
        continue
      seeds = common.seeds_label(r['seeds'], r['ok'])
      fid = common.pm(r['fid'], r['fid_se'], 1) if inception else skipped
      kid = common.pm(r['kid'], r['kid_se'], 2) if inception else skipped
      lines.append(f"| {r['recipe']} | {fid} | {kid} | n/a | "
                   f"{common.pm(r['diversity'], r['diversity_se'], 3, 'g')} | "
                   f'ours, {seeds} |')
    for a, method, is_, fid, src in published.CIFAR10:
      if a == arch:
        lines.append(f'| {method} | {fid} | | {is_} | | {src} (theirs) |')
    lines.append('')
  return '\n'.join(lines + [note, '', cost])


def run(workdir: str, *, data_dir: str = '', archs=tuple(ARCHS),
        recipes=tuple(r[1] for r in RECIPES), seeds: int = DEFAULT_SEEDS,
        num_steps: int | None = None, protocol: str = DEFAULT_PROTOCOL,
        inception_path: str = '', time_steps: int = 0, quick: bool = False,
        parallel: int = 1, out: str = '') -> str:
  """Trains, evaluates, writes the outputs; returns the Markdown text."""
  out = out or workdir
  os.makedirs(out, exist_ok=True)
  num_steps = num_steps or (QUICK_STEPS if quick else NUM_STEPS)
  num_real, num_fake = QUICK_EVAL if quick else PROTOCOLS[protocol]
  arg = make_arg(archs=archs, recipes=recipes, seeds=seeds,
                 num_steps=num_steps, quick=quick, data_dir=data_dir)
  points = sw.expand(get_sweep(arg))  # every config validated
  if not inception_path:
    print('[cifar10] FID/KID skipped: no --inception_path (the FID '
          'Inception-v3 .npz); the table reports diversity only.', flush=True)
  t = time.time()
  with mock_data(quick):
    if not quick:
      check_data(points[0].config)
    train_seconds = train(workdir, arg, parallel=parallel)
    rows = collect_rows(workdir, num_real=num_real, num_fake=num_fake,
                        inception_path=inception_path)
  total = time.time() - t
  measured = {}
  if time_steps:
    first = {}
    for p in points:  # one config per (recipe, architecture): the first seed
      first.setdefault((p.values['variant'], arch_of(p.values['model.name'])),
                       p.config)
    for key, config in first.items():
      measured[key] = time_train_step(config, time_steps)
      print(f'[cifar10] {key}: {measured[key]:.1f} ms/step on {device_name()}',
            flush=True)
  summary = summarise(rows, archs, recipes)
  steps = max(r['step'] for r in rows)
  batch = QUICK['batch_size'] if quick else 64
  note = (
      f'Ours: {steps:,} generator updates per run (after 5 D updates each), '
      f'batch {batch}; evaluation protocol {protocol if not quick else "quick"}'
      f': {num_fake:,} generated samples against the first {num_real:,} '
      'training images; mean ± standard error over seeds. IS: n/a (the FID '
      'Inception weights have no logits layer). '
      f'{len(rows)} run{"s" if len(rows) != 1 else ""}, '
      f'{train_seconds:.0f} s in the sweep runner (finished runs are '
      f'skipped) and {total:.0f} s in all this time. '
      + ('QUICK CHECK on tfds.testing.mock_data (random images) with tiny '
         'networks: the numbers are not results. ' if quick else '')
      + 'Published rows: Miyato et al. 2018 Table 2 as noted in '
      'experiments/reproduce/published.py (checked against a text copy of '
      'the paper; FID over 10,000 real and 5,000 generated images). '
      'Command: `python -m experiments.reproduce.cifar10 --workdir=WORKDIR '
      f"--archs={','.join(archs)} --recipes={','.join(recipes)} "
      f'--seeds={seeds} --num_steps={num_steps} --eval_protocol={protocol}'
      + (' --inception_path=PATH' if inception_path else '')
      + (' --quick' if quick else '') + '`.')
  cost = cost_table(archs=archs, recipes=recipes, seeds=seeds,
                    num_steps=NUM_STEPS if quick else num_steps,
                    protocol_name=protocol, measured=measured,
                    device=device_name(), quick=quick)
  text = markdown(summary, archs=archs, inception=bool(inception_path),
                  note=note, cost=cost)
  common.write_outputs(out, 'cifar10', text, rows, summary)
  return text


# ------------------------------------------------------------------- CLI ---


def define_flags(flag_values=FLAGS):
  """Command-line flags (defined only when run as a script: the sweep
  workers import this file for :func:`get_sweep`)."""
  common.define_sweep_flags(flag_values,
                            workdir='/tmp/gan_stability_cifar10')
  flags.DEFINE_string('data_dir', '', "TFDS data_dir holding the prepared "
                      "cifar10 dataset ('' = the TFDS default).",
                      flag_values=flag_values)
  flags.DEFINE_list('archs', list(ARCHS), f'Architectures, of {list(ARCHS)}.',
                    flag_values=flag_values)
  flags.DEFINE_list('recipes', [r[1] for r in RECIPES],
                    f'Recipes, of {[r[1] for r in RECIPES]}.',
                    flag_values=flag_values)
  flags.DEFINE_integer('seeds', DEFAULT_SEEDS, 'Seeds per row (>= 1).',
                       flag_values=flag_values)
  flags.DEFINE_integer('num_steps', None, 'Generator updates per run '
                       f'(default {NUM_STEPS}; --quick: {QUICK_STEPS}).',
                       flag_values=flag_values)
  flags.DEFINE_string('eval_protocol', DEFAULT_PROTOCOL,
                      f'Real/generated images for FID: {list(PROTOCOLS)}.',
                      flag_values=flag_values)
  flags.DEFINE_string('inception_path', '', 'FID Inception-v3 .npz; without '
                      'it FID/KID are skipped.', flag_values=flag_values)
  flags.DEFINE_integer('time_steps', 0, 'Time this many train steps of each '
                       'full-size config on the current device (0: no).',
                       flag_values=flag_values)
  flags.DEFINE_bool('quick', False, 'Mock data, tiny networks, 2 steps: a '
                    'check.', flag_values=flag_values)


def check_flags(*, archs, recipes, seeds, num_steps, eval_protocol,
                inception_path, time_steps, parallel, quick) -> None:
  """Raises ValueError naming the first bad flag and its allowed values."""
  variants = [r[1] for r in RECIPES]
  if not archs or any(a not in ARCHS for a in archs) or len(
      set(archs)) != len(archs):
    raise ValueError(f'--archs: {",".join(archs)!r}; allowed: distinct '
                     f'values of {list(ARCHS)}')
  if not recipes or any(r not in variants for r in recipes) or len(
      set(recipes)) != len(recipes):
    raise ValueError(f'--recipes: {",".join(recipes)!r}; allowed: distinct '
                     f'values of {variants}')
  if eval_protocol not in PROTOCOLS:
    raise ValueError(f'--eval_protocol: {eval_protocol!r}; allowed: '
                     f'{list(PROTOCOLS)}')
  if seeds < 1:
    raise ValueError(f'--seeds: {seeds}; allowed: >= 1')
  if num_steps is not None and num_steps < 1:
    raise ValueError(f'--num_steps: {num_steps}; allowed: >= 1')
  if time_steps < 0:
    raise ValueError(f'--time_steps: {time_steps}; allowed: >= 0')
  if parallel < 1 or (quick and parallel != 1):
    raise ValueError(f'--parallel: {parallel}; allowed: >= 1, and 1 with '
                     '--quick (its mock data exists only in this process)')
  if inception_path and not os.path.isfile(inception_path):
    raise ValueError(f'--inception_path: {inception_path!r} is not a file '
                     "(the FID Inception-v3 .npz), or '' to skip FID/KID")


def main(argv):
  entry.no_arguments(argv)
  if not FLAGS['verbosity'].present:
    logging.set_verbosity(logging.WARNING)
  try:  # every flag is checked before anything is built or compiled
    check_flags(archs=FLAGS.archs, recipes=FLAGS.recipes, seeds=FLAGS.seeds,
                num_steps=FLAGS.num_steps, eval_protocol=FLAGS.eval_protocol,
                inception_path=FLAGS.inception_path,
                time_steps=FLAGS.time_steps, parallel=FLAGS.parallel,
                quick=FLAGS.quick)
  except ValueError as e:
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)
  try:
    run(FLAGS.workdir, data_dir=FLAGS.data_dir, archs=tuple(FLAGS.archs),
        recipes=tuple(FLAGS.recipes), seeds=FLAGS.seeds,
        num_steps=FLAGS.num_steps, protocol=FLAGS.eval_protocol,
        inception_path=FLAGS.inception_path, time_steps=FLAGS.time_steps,
        quick=FLAGS.quick, parallel=FLAGS.parallel, out=FLAGS.out)
  except FileNotFoundError as e:  # no CIFAR-10 files: say so, claim nothing
    print(f'error: {e}', file=sys.stderr)
    sys.exit(2)


if __name__ == '__main__':
  define_flags()
  entry.main(main)
