r"""Synthetic data for training: the Classification Accuracy Score table.

    python -m experiments.cas --data_dir=/path/to/fashion_mnist_idx \
        --run=GAN=/runs/gan_cond --run=VAE=/runs/vae_cond --out=DIR \
        [--num_train=5000 --seeds=3 --epochs=10 --judge=PATH.npz]
    python -m experiments.cas --quick --out=/tmp/cas_quick   # a check

For each ``--run=NAME=WORKDIR`` (a class-conditional GAN or VAE run of
``experiments.train``, e.g. ``mnist.py:nonsaturating_cond`` or
``vae.py:fashion_mnist_cond``) the latest checkpoint draws ``--num_train``
samples with balanced requested labels (``i mod 10``), and:

* **CAS** (Ravuri & Vinyals 2019): the project's classifier
  (:class:`gan_stability.metrics.classifier.MnistClassifier`, trained from
  scratch, ``--epochs`` of Adam 1e-3 with cosine decay, batch 128, no
  augmentation) is trained on the synthetic set and tested on the 10,000
  real test images; beside it the same classifier trained on ``--num_train``
  *real* training images (a class-balanced subset: the ceiling at that size)
  and on real + synthetic (``2 x --num_train`` images: the augmentation
  value; its control, the real images alone for ``2 x --epochs``, i.e. as
  many optimisation steps, is the row ``Real, 2E epochs``). Mean +- standard
  error over ``--seeds`` classifier seeds; seed
  ``s`` also draws its own synthetic set (``fold_in(key(1234), s)``).
* **GAN-test** (Shmelkov et al. 2018): a *judge* classifier trained on the
  full real training split (``--judge``, or trained here for
  ``--judge_epochs`` and saved as ``OUT/judge_classifier.npz``) classifies
  the samples; the accuracy w.r.t. the requested labels.
* **Sample quality and coverage** in the judge's 128-d feature space, as the
  training loop measures them (``config.eval.classifier_path`` = the judge):
  FID (``cfid``), precision / recall (k = 3; Kynkaanniemi et al. 2019) and
  density / coverage (k = 5; Naeem et al. 2020) against 10,000 real training
  images, on the seed-0 samples; the *Real* row gives the same metrics for
  as many real *test* images (the reference a perfect generator reaches).
* **Privacy sanity** (``manifold.memorisation_report``): pixel-space
  distances of each sample to its nearest training image, against the same
  distances of held-out test images (as many as samples): the median ratio
  (well below 1 = copying) and the share of samples closer than the 1st
  percentile of the held-out distances (~1 % for a model that does not copy).

Writes ``cas.md`` (the table), ``cas.csv`` (one row per training set and
seed), ``summary.csv`` and ``samples_<NAME>.png`` (a 10 x 10 grid, class k in
row k) to ``--out``. ``--quick`` trains tiny conditional GAN and VAE smoke
runs for 2 steps on random IDX "digits" in ``OUT/quick`` and uses 60 samples,
1 epoch, 2 seeds: a check of the pipeline, not a result.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags

from experiments import entry
from experiments.reproduce import common
from gan_stability.errors import ConfigError, DamagedFile

FLAGS = flags.FLAGS
NUM_CLASSES = 10
SAMPLE_KEY = 1234
NUM_REAL_EVAL = 10_000
QUALITY_METRICS = 'cfid,pr,dc'


def define_flags(flag_values=FLAGS) -> None:
  flags.DEFINE_string('data_dir', '', 'IDX directory of the real data '
                      '(train-* and t10k-*; Fashion-MNIST or MNIST).',
                      flag_values=flag_values)
  flags.DEFINE_multi_string('run', [], 'NAME=WORKDIR of a class-conditional '
                            'GAN or VAE run (repeatable).',
                            flag_values=flag_values)
  flags.DEFINE_integer('num_train', 5000, 'Synthetic (and real) training '
                       'images per classifier.', flag_values=flag_values)
  flags.DEFINE_integer('seeds', 3, 'Classifier seeds per row.',
                       flag_values=flag_values)
  flags.DEFINE_integer('epochs', 10, 'Classifier epochs.',
                       flag_values=flag_values)
  flags.DEFINE_string('judge', '', 'Classifier .npz trained on the full real '
                      'training split (default: train it, OUT/'
                      'judge_classifier.npz).', flag_values=flag_values)
  flags.DEFINE_integer('judge_epochs', 4, 'Epochs of the judge when trained '
                       'here.', flag_values=flag_values)
  flags.DEFINE_string('out', '', 'Output directory.', flag_values=flag_values)
  flags.DEFINE_bool('quick', False, 'Tiny smoke runs on random digits: a '
                    'check.', flag_values=flag_values)


def parse_runs(specs: list[str]) -> list[tuple[str, str]]:
  """``['GAN=/a', 'VAE=/b']`` -> ``[('GAN', '/a'), ('VAE', '/b')]``."""
  runs = []
  for s in specs:
    name, sep, path = s.partition('=')
    if not sep or not name or not path:
      raise ConfigError(f'--run={s!r}: expected NAME=WORKDIR')
    if name in dict(runs):
      raise ConfigError(f'--run: the name {name!r} is given twice')
    if name == 'Real':
      raise ConfigError("--run: the name 'Real' is the real-data row")
    runs.append((name, path))
  return runs


def balanced_subset(labels: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
  """Indices of ``n`` examples, ``n / 10`` of each class (``n`` a multiple
  of 10), drawn without replacement by ``default_rng(seed)``; sorted."""
  if n % NUM_CLASSES:
    raise ConfigError(f'--num_train={n} must be a multiple of {NUM_CLASSES}')
  rng = np.random.default_rng(seed)
  per = n // NUM_CLASSES
  picks = []
  for k in range(NUM_CLASSES):
    rows = np.flatnonzero(labels == k)
    if len(rows) < per:
      raise ConfigError(f'--num_train={n}: class {k} has only {len(rows)} '
                       'training images')
    picks.append(rng.choice(rows, per, replace=False))
  return np.sort(np.concatenate(picks))


def _load_sampler(workdir: str):
  """``(config, sample_fn, step)`` of a run's latest checkpoint; refuses
  unconditional runs and data that is not 28 x 28 x 1 with 10 classes."""
  from gan_stability.train import tasks, workdir as workdir_lib  # pylint: disable=g-import-not-at-top
  config = workdir_lib.load_run_config(workdir)
  if config.model.get('num_classes', 0) != NUM_CLASSES:
    raise ConfigError(f'--run {workdir}: CAS needs a class-conditional model '
                     f'with {NUM_CLASSES} classes (a *_cond config); got '
                     f"model.num_classes={config.model.get('num_classes', 0)}")
  if config.data.pad_to:
    raise ConfigError(f'--run {workdir}: trained on padded images '
                     f'(data.pad_to={config.data.pad_to}); CAS uses 28 x 28')
  sample_fn, step = tasks.restore_sampler(config, workdir)
  return config, sample_fn, step


def _judge(path: str, out: str, train_x, train_y, test_x, test_y, epochs: int):
  """The judge classifier: loaded from ``path``, or trained on the full real
  training split and saved to ``OUT/judge_classifier.npz`` (reused)."""
  from gan_stability.metrics import classifier  # pylint: disable=g-import-not-at-top
  path = path or os.path.join(out, 'judge_classifier.npz')
  if os.path.exists(path):
    params = classifier.load_classifier(path)
  else:
    print(f'training the judge on {len(train_x)} real images, {epochs} '
          'epochs', flush=True)
    t = time.time()
    params, _ = classifier.train_classifier(train_x, train_y, epochs=epochs,
                                            seed=0)
    classifier.save_classifier(path, params, {
        'epochs': epochs, 'seed': 0, 'train_images': len(train_x),
        'training_seconds': round(time.time() - t, 1),
        'test_accuracy': classifier.evaluate(params, test_x,
                                             test_y)['accuracy']})
  return path, params


def quality_metrics(config, images: np.ndarray, judge_path: str, workdir: str,
                    cache_dir: str) -> dict:
  """``cfid``, precision/recall and density/coverage of ``images`` (float,
  [-1, 1]) in the judge's feature space against the first 10,000 (or all)
  real training images: the run's evaluator with the judge as classifier."""
  from gan_stability.eval import evaluators  # pylint: disable=g-import-not-at-top
  c = config.copy_and_resolve_references()
  c.eval.update(metrics=QUALITY_METRICS, features='classifier',
                classifier_path=judge_path, cache_dir=cache_dir,
                num_real=NUM_REAL_EVAL)
  c.eval_samples = len(images)
  evaluator = evaluators.make_evaluator(c, workdir=workdir)
  result = evaluator(images, 0, sample_dir=None)
  keys = ('cfid', 'precision', 'recall', 'density', 'coverage')
  return {k: float(result[k]) for k in keys if k in result}


def privacy(train_x, generated, held_out) -> dict:
  """The pixel-space memorisation report (flattened [-1, 1] images)."""
  from gan_stability.metrics import cas, manifold  # pylint: disable=g-import-not-at-top
  flat = lambda x: cas.as_float_images(x).reshape(len(x), -1)
  n = min(len(generated), len(held_out))
  r = manifold.memorisation_report(flat(train_x), flat(generated[:n]),
                                   flat(held_out[:n]),
                                   threshold_percentile=1.0)
  return {'nn_median_ratio': r['median_ratio'],
          'nn_frac_closer_p1': r['frac_generated_closer'],
          'nn_generated_p50': r['generated_p50'],
          'nn_held_out_p50': r['held_out_p50']}


def _table(summary: list[dict], meta: dict) -> str:
  lines = [
      f"CAS on {meta['dataset']}: a fixed classifier trained on "
      f"{meta['num_train']:,} images per source, tested on the "
      f"{meta['num_test']:,} real test images; mean ± s.e. over {common.seeds_label(meta['seeds'], meta['seeds'])} "
      f"({meta['epochs']} epochs each). GAN-test: the judge classifier "
      f"(trained on all {meta['num_real_train']:,} real training images, "
      f"{meta['judge_accuracy'] * 100:.1f} % on the test images) on the "
      f"samples. cFID / P / R / D / C: judge feature space, against "
      f"{meta['num_real_eval']:,} real training images (Real: as many real "
      'test images as samples). NN ratio: median '
      'nearest-training-image distance of samples / of held-out images; '
      '< 1 %: share of samples nearer than the 1st percentile of held-out.',
      '',
      '| training data | images | CAS accuracy (%) | GAN-test (%) | cFID | '
      'precision | recall | density | coverage | NN ratio | < 1 % |',
      '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|']
  for s in summary:
    q = lambda k, d=2: ('' if not np.isfinite(s.get(k, np.nan))
                        else f'{s[k]:.{d}f}')
    lines.append(
        f"| {s['row']} | {s['num_train']:,} | "
        f"{common.pm(100 * s['cas_mean'], 100 * s['cas_se'], 1)} | "
        f"{q('gan_test_pct', 1)} | {q('cfid', 1)} | {q('precision')} | "
        f"{q('recall')} | {q('density')} | {q('coverage')} | "
        f"{q('nn_median_ratio')} | {q('nn_frac_closer_p1_pct', 1)} |")
  lines += ['', f"Models: {meta['models']}. Wall time of this table: "
            f"{meta['seconds']:.0f} s on {meta['machine']}.", '']
  return '\n'.join(lines)


def _quick_setup(out: str) -> tuple[str, list[tuple[str, str]]]:
  """Random-digit IDX data and 2-step conditional GAN / VAE smoke runs."""
  from experiments.configs import mnist, vae  # pylint: disable=g-import-not-at-top
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  from gan_stability.train import train_and_evaluate  # pylint: disable=g-import-not-at-top
  data_dir = idx.write_random_digits(os.path.join(out, 'quick', 'data'),
                                     num_train=200, num_test=60)
  runs = []
  for name, config in (('GAN', mnist.get_config('smoke_cond')),
                       ('VAE', vae.get_config('smoke_cond'))):
    config.data.dir = data_dir
    workdir = os.path.join(out, 'quick', name.lower())
    train_and_evaluate(config, workdir)
    runs.append((name, workdir))
  return data_dir, runs


def run(*, data_dir: str, runs: list[tuple[str, str]], out: str,
        num_train: int, seeds: int, epochs: int, judge: str,
        judge_epochs: int, batch_size: int = 128,
        num_quality: int | None = None) -> list[dict]:
  """The whole protocol (see the module docstring); returns the summary."""
  import jax  # pylint: disable=g-import-not-at-top
  from gan_stability.data import idx  # pylint: disable=g-import-not-at-top
  from gan_stability import plotting  # pylint: disable=g-import-not-at-top
  from gan_stability.metrics import cas, classifier  # pylint: disable=g-import-not-at-top
  t0 = time.time()
  os.makedirs(out, exist_ok=True)
  train_x, train_y = idx.load_idx_dataset(data_dir, 'train')
  test_x, test_y = idx.load_idx_dataset(data_dir, 'test')
  samplers = [(name, *_load_sampler(wd), wd) for name, wd in runs]
  judge_path, judge_params = _judge(judge, out, train_x, train_y, test_x,
                                    test_y, judge_epochs)
  judge_accuracy = classifier.evaluate(judge_params, test_x, test_y)['accuracy']
  real_rows = balanced_subset(train_y, num_train)
  real = (train_x[real_rows], train_y[real_rows])
  labels = cas.balanced_labels(num_train)
  num_quality = num_quality or num_train
  cache_dir = os.path.join(out, 'eval_cache')

  def score(x, y, seed, num_epochs=epochs):
    return cas.classification_accuracy_score(
        x, y, test_x, test_y, epochs=num_epochs, seed=seed,
        batch_size=min(batch_size, len(x)))['accuracy']

  per_seed: list[dict] = []
  extras: dict[str, dict] = {}
  quality_config = samplers[0][1] if samplers else None
  if quality_config is not None:
    extras['Real'] = quality_metrics(quality_config, test_x[:num_quality],
                                     judge_path, out, cache_dir)
  # GAN-test of real data: the judge's own test accuracy.
  extras.setdefault('Real', {})['gan_test_pct'] = 100 * judge_accuracy
  for seed in range(seeds):
    # The control of the real + synthetic rows: as many optimisation steps
    # (twice the epochs) on the real images alone.
    for row, num_epochs in (('Real', epochs),
                            (f'Real, {2 * epochs} epochs', 2 * epochs)):
      per_seed.append({'row': row, 'seed': seed, 'num_train': num_train,
                       'accuracy': score(*real, seed, num_epochs)})
      print(f"[cas] seed {seed} {row}: {per_seed[-1]['accuracy']:.4f}",
            flush=True)
    for name, config, sample_fn, step, _ in samplers:
      key = jax.random.fold_in(jax.random.key(SAMPLE_KEY), seed)
      synth = sample_fn(key, num_train, labels)
      if seed == 0:
        agree = cas.label_agreement(judge_params, synth, labels)
        extras[name] = {
            'gan_test_pct': 100 * agree['accuracy'], 'step': step,
            **quality_metrics(config, synth[:num_quality], judge_path, out,
                              cache_dir),
            **privacy(train_x, synth[:num_quality], test_x[:num_quality])}
        plotting.save_image_grid(
            os.path.join(out, f'samples_{name}.png'),
            synth[np.argsort(labels, kind='stable')].reshape(
                NUM_CLASSES, -1, *synth.shape[1:])[:, :NUM_CLASSES].reshape(
                    -1, *synth.shape[1:]), NUM_CLASSES)
      for row, (x, y) in ((name, (synth, labels)),
                          (f'Real + {name}',
                           cas.combine(real, (synth, labels)))):
        per_seed.append({'row': row, 'seed': seed, 'num_train': len(x),
                         'accuracy': score(x, y, seed)})
        print(f"[cas] seed {seed} {row}: {per_seed[-1]['accuracy']:.4f}",
              flush=True)

  summary = []
  for row in dict.fromkeys(r['row'] for r in per_seed):
    acc = np.array([r['accuracy'] for r in per_seed if r['row'] == row])
    se = acc.std(ddof=1) / np.sqrt(len(acc)) if len(acc) > 1 else np.nan
    entry = {'row': row, 'num_train': [r['num_train'] for r in per_seed
                                       if r['row'] == row][0],
             'cas_mean': float(acc.mean()), 'cas_se': float(se),
             'seeds': len(acc)}
    entry.update(extras.get(row, {}))
    if 'nn_frac_closer_p1' in entry:
      entry['nn_frac_closer_p1_pct'] = 100 * entry['nn_frac_closer_p1']
    summary.append(entry)
  meta = {'dataset': os.path.basename(os.path.normpath(data_dir)),
          'num_train': num_train, 'seeds': seeds, 'epochs': epochs,
          'num_real_train': len(train_x), 'judge_accuracy': judge_accuracy,
          'num_test': len(test_x),
          'num_real_eval': min(NUM_REAL_EVAL, len(train_x)),
          'models': '; '.join(
              f'{name} = {config.variant} at step {step} ({wd})'
              for name, config, _, step, wd in samplers),
          'seconds': time.time() - t0,
          'machine': f'{os.cpu_count()} CPU cores ({jax.default_backend()})'}
  keys = sorted({k for s in summary for k in s})
  summary = [{k: s.get(k, '') for k in ['row'] + [k for k in keys
                                                  if k != 'row']}
             for s in summary]
  common.write_outputs(out, 'cas', _table(
      [{k: (v if v != '' else np.nan) for k, v in s.items()} for s in summary],
      meta), per_seed, summary)
  return summary


def check_flags(runs: list[tuple[str, str]]) -> None:
  """Raises ConfigError naming the first bad flag, before anything loads."""
  if not os.path.isdir(FLAGS.data_dir):
    raise ConfigError(f'--data_dir: {FLAGS.data_dir} is not a directory (the '
                      'IDX files train-* and t10k-*)')
  for name, path in runs:
    if not os.path.isfile(os.path.join(path, 'config.json')):
      raise ConfigError(f'--run={name}={path}: not a training run directory '
                        '(no config.json)')
  if FLAGS.num_train < NUM_CLASSES or FLAGS.num_train % NUM_CLASSES:
    raise ConfigError(f'--num_train={FLAGS.num_train}: expected a positive '
                      f'multiple of {NUM_CLASSES}')
  for name in ('seeds', 'epochs', 'judge_epochs'):
    if FLAGS[name].value < 1:
      raise ConfigError(f'--{name}: expected >= 1, got {FLAGS[name].value}')


def main(argv):
  entry.no_arguments(argv)
  out = FLAGS.out or ('/tmp/cas_quick' if FLAGS.quick else '')
  if not out:
    entry.fail('--out: required (the output directory)')
  if os.path.exists(out) and not os.path.isdir(out):
    entry.fail(f'--out: {out} is a file, not a directory')
  try:
    if FLAGS.quick:
      data_dir, runs = _quick_setup(out)
      run(data_dir=data_dir, runs=runs, out=out, num_train=60, seeds=2,
          epochs=1, judge=FLAGS.judge, judge_epochs=1, batch_size=20)
      return
    if not FLAGS.data_dir or not FLAGS.run:
      entry.fail('--data_dir and at least one --run are required (or '
                 '--quick)')
    runs = parse_runs(FLAGS.run)
    check_flags(runs)
    run(data_dir=FLAGS.data_dir, runs=runs, out=out,
        num_train=FLAGS.num_train, seeds=FLAGS.seeds, epochs=FLAGS.epochs,
        judge=FLAGS.judge, judge_epochs=FLAGS.judge_epochs)
  except (ConfigError, DamagedFile, FileNotFoundError) as e:
    entry.fail(str(e))


if __name__ == '__main__':
  define_flags()
  entry.main(main)
  sys.exit(0)
