"""Training: tasks, the loop, the workdir contract, data parallelism.

* :mod:`.workdir` - the workdir contract (config.json, resume, checkpoints,
  SIGTERM, divergence errors), written once;
* :mod:`.loop` - the one training loop, over a :class:`.task.Task`;
* :mod:`.gan`, :mod:`.vae` - the two tasks (state, pure train step,
  sampler); :mod:`.tasks` - the registry by ``config.family`` and
  :func:`train_and_evaluate`;
* :mod:`.seeds` - several seeds as one vmapped program;
* :mod:`.parallel` - mesh, shardings, global batches.
"""

from gan_stability.train.gan import (GANState, init_state, make_optimizers,
                                     make_train_step)
from gan_stability.train.task import Task, make_multi_step
from gan_stability.train.tasks import (TASKS, make_task, restore_sampler,
                                       train_and_evaluate)
from gan_stability.train.workdir import (EXIT_PREEMPTED, DivergenceError,
                                         Preempted, WorkdirInUse)

__all__ = ['DivergenceError', 'EXIT_PREEMPTED', 'GANState', 'Preempted',
           'TASKS', 'Task', 'init_state', 'make_multi_step',
           'make_optimizers', 'make_task', 'make_train_step',
           'restore_sampler', 'train_and_evaluate', 'WorkdirInUse']
