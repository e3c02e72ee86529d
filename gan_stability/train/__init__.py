"""Training: state, pure train step, data parallelism and the loop."""

from gan_stability.train.loop import DivergenceError, train_and_evaluate
from gan_stability.train.state import GANState, init_state, make_optimizers
from gan_stability.train.step import make_multi_step, make_train_step

__all__ = ['DivergenceError', 'GANState', 'init_state', 'make_optimizers',
           'make_multi_step', 'make_train_step', 'train_and_evaluate']
