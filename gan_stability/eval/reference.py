"""The packaged reference statistics of real data (FID's ``(mu, sigma)``,
in the packed layout of
:func:`gan_stability.metrics.fid_kid.save_stats`).

The packaged files are found by :class:`Key` (data set, split, number of
images, feature space, resize mode, padding): the evaluator uses a packaged
file whose key equals its protocol, made with the same Inception weights
(:func:`usable`), instead of computing the real side
(:meth:`gan_stability.eval.evaluators.ImageEvaluator.real_stats`).
``gan_stability/assets/fid_stats/README.md`` lists them with the command
that made each.
"""

from __future__ import annotations

import dataclasses
import os
import re

from gan_stability.metrics import fid_kid

ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), 'assets', 'fid_stats')
_UNSAFE = re.compile(r'[^A-Za-z0-9._-]')


@dataclasses.dataclass(frozen=True)
class Key:
  """What a real side's statistics depend on."""
  dataset: str
  split: str
  num: int
  space: str = 'inception'
  resize: str = 'tf1'
  pad_to: int = 0

  def cache_name(self) -> str:
    """A file name stem such as ``mnist-test-10000-inception-tf1``. Runs
    written before 0.2.0 (the ``'bilinear'`` resize) keep the name they
    cached their statistics under (no resize or padding suffix)."""
    name = f'{self.dataset}-{self.split}-{self.num}-{self.space}'
    if self.space == 'inception' and self.resize != 'bilinear':
      name += f'-{self.resize}'
      if self.pad_to:
        name += f'-pad{self.pad_to}'
    return _UNSAFE.sub('_', name)


def find(key: Key, directory: str | None = None) -> str | None:
  """The packaged statistics file of ``key`` (in ``directory``, default
  :data:`ASSETS_DIR`), or None."""
  path = os.path.join(directory or ASSETS_DIR, key.cache_name() + '.npz')
  return path if os.path.isfile(path) else None


def usable(path: str, weights_digest: str) -> bool:
  """Whether the packaged file at ``path`` was made with the Inception
  weights whose :func:`gan_stability.metrics.inception.params_digest` is
  ``weights_digest``."""
  _, protocol = fid_kid.stats_info(path)
  return protocol.get('weights_sha256') == weights_digest


def packaged() -> list[str]:
  """The packaged statistics files."""
  if not os.path.isdir(ASSETS_DIR):
    return []
  return sorted(os.path.join(ASSETS_DIR, f) for f in os.listdir(ASSETS_DIR)
                if f.endswith('.npz'))
