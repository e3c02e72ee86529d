r"""Exports a training run's sampling networks as a small directory that
``gan_stability.load`` reads without the run (no optimiser state, no
data)::

  python -m experiments.export --run=DIR --out=OUT [--step=S]
      [--nodiscriminator] [--command='how it was trained'] [--note=...]

``OUT`` gets ``config.json``, ``model.json`` (data shape, step, the digest
of ``sample(64, seed=0)``, ``--command`` and ``--note``) and
``variables.npz`` (the generator's evaluation weights and, unless
``--nodiscriminator``, the discriminator's). The shipped generators
(``gan_stability/assets/generators/``) were written this way. Bad input:
one line ``error: ...`` and status 2.
"""

from __future__ import annotations

import os

from absl import flags

from experiments import cli
from experiments import entry
from gan_stability.errors import ConfigError

flags.DEFINE_string('run', None, 'The training run directory.')
flags.DEFINE_string('out', None, 'The directory to write (must not exist, '
                    'or be empty).')
flags.DEFINE_integer('step', None, 'Checkpoint step (default: the latest).')
flags.DEFINE_bool('discriminator', True, "Include D's variables.")
flags.DEFINE_string('command', '', 'The command that trained the run '
                    '(recorded in model.json).')
flags.DEFINE_string('note', '', 'Free text recorded in model.json.')
flags.mark_flags_as_required(['run', 'out'])
FLAGS = flags.FLAGS


def run(*, run_path: str, out: str, step: int | None = None,
        discriminator: bool = True, about: dict | None = None) -> dict:
  """Loads ``run_path`` and exports it to ``out``; returns ``model.json``."""
  from gan_stability import trained  # pylint: disable=g-import-not-at-top
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
    raise ConfigError(f'--out: {out} exists and is not an empty folder')
  try:
    model = trained.load(run_path, step=step)
  except FileNotFoundError as e:
    raise FileNotFoundError(f'--run: {e}') from None
  return trained.export(model, out, discriminator=discriminator,
                        about=about)


def main(argv):
  entry.no_arguments(argv)
  about = {k: FLAGS[k].value for k in ('command', 'note') if FLAGS[k].value}

  def body():
    info = run(run_path=FLAGS.run, out=FLAGS.out, step=FLAGS.step,
               discriminator=FLAGS.discriminator, about=about)
    size = sum(os.path.getsize(os.path.join(FLAGS.out, f))
               for f in os.listdir(FLAGS.out))
    print(f"wrote {FLAGS.out}: step {info['step']}, {size / 1e6:.1f} MB, "
          f"sample digest {info['sample_digest'][:16]}", flush=True)

  cli.run(body)


if __name__ == '__main__':
  cli.main(main)
