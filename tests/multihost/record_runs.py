"""Trains several runs in one process (or, with ``--multihost``, in one
multi-process job), recording for each run the rows every process fed to
each global batch and the evaluation samples it gathered:
``<workdir>/fed_p<i>.npz`` with ``batch_<n>`` arrays, their batch ``axis``
and ``samples_<n>``. Used by tests/test_multihost.py::

  python tests/multihost/record_runs.py [--multihost] '[[WORKDIR, [ARG, ...]], ...]'

where the ARGs are ``experiments.train``'s ``--config=...`` and
``--config.field=value`` arguments. A run may carry a third element, the
keyword arguments of ``evaluate_checkpoint`` for an offline evaluation of
its final checkpoint (``<workdir>/evaluate_p<i>.json``).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))

import numpy as np  # pylint: disable=g-import-not-at-top

from gan_stability import distributed  # pylint: disable=g-import-not-at-top

if '--multihost' in sys.argv:
  distributed.initialize()

import jax  # pylint: disable=g-import-not-at-top,wrong-import-position

from gan_stability.sweep import spec  # pylint: disable=g-import-not-at-top,wrong-import-position
from gan_stability.train import loop, parallel, train_and_evaluate  # pylint: disable=g-import-not-at-top,wrong-import-position

RECORD = {}
_global_batch = parallel.global_batch
_samples = loop.OnMesh.samples


def _count(prefix: str) -> int:
  return len([k for k in RECORD if k.startswith(prefix)])


def _recording_global_batch(local, sharding, batch_axis):
  RECORD[f'batch_{_count("batch_")}'] = np.array(local)
  RECORD['axis'] = batch_axis
  return _global_batch(local, sharding, batch_axis)


def _recording_samples(self, state, runs):
  out = _samples(self, state, runs)
  RECORD[f'samples_{_count("samples_")}'] = np.array(out[0])
  return out


def main():
  from gan_stability.eval import offline  # pylint: disable=g-import-not-at-top
  parallel.global_batch = _recording_global_batch
  loop.OnMesh.samples = _recording_samples
  for workdir, args, *evaluate in json.loads(sys.argv[-1]):
    RECORD.clear()
    train_and_evaluate(spec.config_from_args(args), workdir)
    np.savez(os.path.join(workdir, f'fed_p{jax.process_index()}.npz'),
             **RECORD)
    if evaluate:  # offline evaluation of the final checkpoint, after it
      result = offline.evaluate_checkpoint(workdir, write=False, **evaluate[0])
      with open(os.path.join(workdir,
                             f'evaluate_p{jax.process_index()}.json'), 'w') as f:
        json.dump(result, f)
  distributed.finish()


if __name__ == '__main__':
  main()
