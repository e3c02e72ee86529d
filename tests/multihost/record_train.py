"""``experiments.train`` that also records, per process, the rows it fed to
every global batch and the evaluation samples it gathered
(``<workdir>/fed_p<i>.npz``: ``batch_<n>`` arrays, their batch ``axis``, and
``samples_<step>``); used by tests/test_multihost.py."""

import atexit
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app  # pylint: disable=g-import-not-at-top

from experiments import train as train_cli  # pylint: disable=g-import-not-at-top
from gan_stability.train import loop, parallel  # pylint: disable=g-import-not-at-top

RECORD = {}
_global_batch = parallel.global_batch
_samples = loop.OnMesh.samples


def _recording_global_batch(local, sharding, batch_axis):
  import jax  # pylint: disable=g-import-not-at-top
  RECORD.setdefault('process', jax.process_index())
  RECORD[f'batch_{len([k for k in RECORD if k.startswith("batch_")])}'] = (
      np.array(local))
  RECORD['axis'] = batch_axis
  return _global_batch(local, sharding, batch_axis)


def _recording_samples(self, state, runs):
  out = _samples(self, state, runs)
  RECORD[f'samples_{len([k for k in RECORD if k.startswith("samples_")])}'] = (
      np.array(out[0]))
  return out


def _dump():
  if 'process' in RECORD:
    workdir = train_cli.FLAGS.workdir
    np.savez(os.path.join(workdir, f'fed_p{RECORD["process"]}.npz'),
             **{k: v for k, v in RECORD.items() if k != 'process'})


parallel.global_batch = _recording_global_batch
loop.OnMesh.samples = _recording_samples
atexit.register(_dump)

if __name__ == '__main__':
  app.run(train_cli.main)
