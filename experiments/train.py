r"""Trains a GAN (or the VAE baseline, configs/vae.py): ``python -m experiments.train --config=CFG.py:VARIANT --workdir=DIR``.

Any config field can be overridden with ``--config.field=value`` (nested:
``--config.model.spectral_norm=True``). Rerunning the same command resumes.
SIGTERM (preemption) saves a checkpoint and exits with status 143
(``EXIT_PREEMPTED``); rerun the same command to resume. Bad input: one line
on stderr, status 2.

Multi-host: the same command on every host with ``--multihost`` (ids from
``--coordinator_address/--num_processes/--process_id``, the ``JAX_*``
variables or the cluster environment; ``experiments/cli.py``). On one
machine: ``python -m experiments.launch --num_processes=2 -- python -m
experiments.train --multihost ...`` (docs/distributed.md).
"""

import os

from absl import flags
from ml_collections import config_flags

from experiments import cli
from experiments import entry

flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.')
config_flags.DEFINE_config_file('config', None, 'Config file, as path.py:variant.',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def check_workdir(workdir: str, flag: str = '--workdir') -> None:
  """Refuses an empty ``workdir`` or one that is a file: one line naming
  ``flag``, status 2."""
  if not workdir.strip():
    entry.fail(f'{flag}: empty; give the run directory')
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    entry.fail(f'{flag}: {workdir} is a file, not a directory')


def main(argv):
  entry.no_arguments(argv)
  check_workdir(FLAGS.workdir)

  def body():
    from gan_stability import train  # pylint: disable=g-import-not-at-top
    result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print('final:', {k: round(v, 4) if isinstance(v, float) else v
                     for k, v in result.items()}, flush=True)

  cli.run(body)


if __name__ == '__main__':
  cli.main(main)
