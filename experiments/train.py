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

from absl import flags
from ml_collections import config_flags

from experiments import cli

flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.')
config_flags.DEFINE_config_file('config', None, 'Config file, as path.py:variant.',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv

  def body():
    from gan_stability import train  # pylint: disable=g-import-not-at-top
    result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print('final:', {k: round(v, 4) if isinstance(v, float) else v
                     for k, v in result.items()}, flush=True)

  cli.run(body)


if __name__ == '__main__':
  cli.main(main)
