"""The golden vmapped group (``tests/golden/runs.py``, case ``seeds3``):
MoG hinge + R1 on the ring, seeds 0-2 trained as one program."""

from gan_stability.sweep import spec as sw


def get_sweep(arg=None):
  del arg
  return sw.Sweep(
      base='experiments/configs/mog.py:hinge_r1',
      overrides={'model.g_hidden': 32, 'model.d_hidden': 32,
                 'model.g_layers': 2, 'model.d_layers': 2, 'batch_size': 64,
                 'num_steps': 40, 'steps_per_dispatch': 10, 'log_every': 10,
                 'eval_every': 20, 'checkpoint_every': 10,
                 'eval_samples': 256, 'write_tensorboard': False},
      axes=sw.axis('seed', [0, 1, 2]),
      seeds_in_one_program=True)
