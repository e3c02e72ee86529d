r"""Trains a GAN (or the VAE baseline, configs/vae.py): ``python -m experiments.train --config=CFG.py:VARIANT --workdir=DIR``.

Any config field can be overridden with ``--config.field=value`` (nested:
``--config.model.spectral_norm=True``). Rerunning the same command resumes.
SIGTERM (preemption) saves a checkpoint and exits with status 143
(``EXIT_PREEMPTED``); rerun the same command to resume.
Multi-host: start the same command on every host with ``--multihost``
(calls ``jax.distributed.initialize()`` without arguments: the coordinator
and process ids come from a cluster environment JAX detects, e.g. SLURM;
docs/distributed.md).
"""

import sys

from absl import app, flags, logging
from ml_collections import config_flags

flags.DEFINE_string('workdir', None, 'Directory for checkpoints, metrics and samples.')
flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize() first.')
config_flags.DEFINE_config_file('config', None, 'Config file, as path.py:variant.',
                                lock_config=True)
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  del argv
  import jax  # pylint: disable=g-import-not-at-top
  if FLAGS.multihost:
    jax.distributed.initialize()
  from gan_stability import train  # pylint: disable=g-import-not-at-top
  if not FLAGS['verbosity'].present:  # orbax logs every save at INFO
    logging.set_verbosity(logging.WARNING)
  try:
    result = train.train_and_evaluate(FLAGS.config, FLAGS.workdir)
  except train.Preempted as e:
    print(str(e), flush=True)
    sys.exit(train.EXIT_PREEMPTED)
  print('final:', {k: round(v, 4) if isinstance(v, float) else v
                   for k, v in result.items()}, flush=True)


if __name__ == '__main__':
  app.run(main)
