"""``experiments.train`` with one injected fault (tests/test_faults.py):
``GAN_STABILITY_FAULT=WRITER:N`` makes the N-th write of WRITER fail
(``tests/faults/harness.py``)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from absl import app  # pylint: disable=g-import-not-at-top

import harness  # pylint: disable=g-import-not-at-top
from experiments import train as train_cli  # pylint: disable=g-import-not-at-top

if __name__ == '__main__':
  writer, n = os.environ['GAN_STABILITY_FAULT'].split(':')
  with harness.inject(writer, int(n)):
    app.run(train_cli.main)
