"""Images (and labels) from one ``.npz`` file (``data.source='npz'``).

Layout: split ``'train'`` is the uint8 array under key ``x``, ``[N, H, W, C]``
(C = 1 or 3) or ``[N, H, W]`` (read as C = 1), with optional integer labels
``[N]`` under ``label``; any other split ``s`` is under ``x_<s>`` and
``label_<s>`` (e.g. ``x_test``, ``label_test`` for ``eval.real_split=test``).
Save one with ``np.savez(path, x=train_images, label=train_labels,
x_test=test_images)``. The arrays are read into memory (an ``.npz`` cannot
be memory-mapped); a data set larger than memory belongs in a folder
(``data.source='folder'``, :mod:`gan_stability.data.folder`).
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from gan_stability.errors import ConfigError


def keys(split: str) -> tuple[str, str]:
  """``(image key, label key)`` of ``split``: ``('x', 'label')`` for
  ``'train'``, ``('x_<split>', 'label_<split>')`` otherwise."""
  if split == 'train':
    return 'x', 'label'
  return f'x_{split}', f'label_{split}'


def load_npz(path: str, split: str, *, what: str = 'config.data.dir'
             ) -> tuple[np.ndarray, np.ndarray | None]:
  """``(images, labels)`` of ``split``: uint8 ``[N, H, W, C]`` and int64
  ``[N]`` or None (no label key).

  Raises:
    ConfigError (naming the file and the key): no such file or not an
      ``.npz``; the split's image key missing (the keys there are listed);
      images not uint8, not of rank 3 or 4, empty, or with C not 1 or 3;
      labels not integers of shape ``[N]``.
  """
  if not os.path.isfile(path):
    raise ConfigError(f'{what}: {path!r} is not a file (data.source=npz '
                      'reads an .npz file of uint8 images under key x)')
  x_key, label_key = keys(split)
  try:
    with np.load(path, allow_pickle=False) as f:
      names = sorted(f.files)
      if x_key not in names:
        raise ConfigError(f'{what}: {path} has no key {x_key!r} (the images '
                          f'of split {split!r}); keys: {names}')
      x = f[x_key]
      labels = f[label_key] if label_key in names else None
  except ConfigError:
    raise
  except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
    raise ConfigError(f'{what}: cannot read {path} as .npz '
                      f'({type(e).__name__}: {e})') from e
  if x.dtype != np.uint8:
    raise ConfigError(f'{what}: {path} key {x_key!r}: expected uint8 images '
                      f'(pixels 0..255), got dtype {x.dtype}')
  if x.ndim == 3:
    x = x[..., None]
  if x.ndim != 4 or x.shape[-1] not in (1, 3) or 0 in x.shape:
    raise ConfigError(f'{what}: {path} key {x_key!r}: expected images '
                      '[N, H, W, C] with C = 1 or 3, or [N, H, W], '
                      f'N, H, W >= 1; got shape {x.shape}')
  if labels is not None:
    if labels.shape != x.shape[:1] or not np.issubdtype(labels.dtype,
                                                        np.integer):
      raise ConfigError(f'{what}: {path} key {label_key!r}: expected '
                        f'integer labels of shape ({x.shape[0]},) (one per '
                        f'image of {x_key!r}), got {labels.dtype} '
                        f'{labels.shape}')
    labels = labels.astype(np.int64)
  return x, labels
