"""Optimisers and learning-rate schedules by name (``config.optimizer``).

The registries below are the allowed values of ``config.optimizer.name`` and
``config.optimizer.lr_schedule`` (the config schema reads them): adding an
optimiser is one entry. Each optimiser is built from the learning rate (a
number or an optax schedule) and the ``config.optimizer`` node, of which it
reads the fields it needs.

* ``adam`` - Adam (Kingma & Ba 2015) with ``b1``, ``b2``.
* ``rmsprop`` - RMSProp (Tieleman & Hinton 2012) with optax's defaults, as
  the original WGAN used (Arjovsky et al. 2017, Algorithm 1).
* ``sgd`` - SGD, with heavy-ball momentum ``b1`` when ``b1 > 0``.

Schedules: ``constant``; ``linear`` decays the rate linearly to 0 over the
run's updates (as in the WGAN-GP CIFAR-10 code of Gulrajani et al. 2017).
"""

from __future__ import annotations

from typing import Callable

import optax

# Each: (learning rate, b1, b2) -> optimiser; b1 and b2 are config.optimizer's
# unless a caller replaces them (Adam's may be traced scalars: a vmapped
# hyper-parameter axis).
OPTIMIZERS: dict[str, Callable[..., optax.GradientTransformation]] = {
    'adam': lambda lr, b1, b2: optax.adam(lr, b1=b1, b2=b2),
    'rmsprop': lambda lr, b1, b2: optax.rmsprop(lr),
    'sgd': lambda lr, b1, b2: optax.sgd(lr, momentum=b1 or None),
}

SCHEDULES: dict[str, Callable[[float, int], optax.ScalarOrSchedule]] = {
    'constant': lambda lr, total_steps: lr,
    'linear': lambda lr, total_steps: optax.linear_schedule(lr, 0.0,
                                                            total_steps),
}


def make_optimizer(o, lr: float, total_steps: int, *, b1=None, b2=None
                   ) -> optax.GradientTransformation:
  """The optimiser ``o.name`` (``o``: a ``config.optimizer`` node) at rate
  ``lr`` under the schedule ``o.lr_schedule`` over ``total_steps`` updates;
  ``b1`` / ``b2`` replace ``o.b1`` / ``o.b2``."""
  if o.name not in OPTIMIZERS:
    raise ValueError(f'config.optimizer.name: unknown {o.name!r}; allowed: '
                     f'{list(OPTIMIZERS)}')
  if o.lr_schedule not in SCHEDULES:
    raise ValueError(f'config.optimizer.lr_schedule: unknown '
                     f'{o.lr_schedule!r}; allowed: {list(SCHEDULES)}')
  return OPTIMIZERS[o.name](SCHEDULES[o.lr_schedule](lr, total_steps),
                            o.b1 if b1 is None else b1,
                            o.b2 if b2 is None else b2)
