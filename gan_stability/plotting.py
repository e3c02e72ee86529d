"""Figures: scatter plots of 2-D samples against the mixture's modes."""

from __future__ import annotations

import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def scatter_2d(ax, samples: np.ndarray, centers: np.ndarray, title: str = ''):
  """Draws samples (blue) and mode centres (red crosses) on ``ax``."""
  samples = np.asarray(samples)
  finite = np.all(np.isfinite(samples), axis=1)
  ax.scatter(samples[finite, 0], samples[finite, 1], s=2, alpha=0.4,
             color='tab:blue', linewidths=0)
  ax.scatter(centers[:, 0], centers[:, 1], s=30, marker='x', color='tab:red')
  span = np.abs(centers).max() * 1.35 + 0.2
  ax.set_xlim(-span, span)
  ax.set_ylim(-span, span)
  ax.set_aspect('equal')
  ax.set_xticks([])
  ax.set_yticks([])
  if title:
    ax.set_title(title, fontsize=8)


def save_scatter(path: str, samples, centers, title: str = '') -> np.ndarray:
  """Writes a PNG scatter plot; returns it as an ``[H, W, 3]`` uint8 array."""
  fig, ax = plt.subplots(figsize=(4, 4), dpi=80)
  scatter_2d(ax, samples, centers, title)
  fig.tight_layout()
  fig.canvas.draw()
  image = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
  fig.savefig(path)
  plt.close(fig)
  return image


def save_grid(path: str, panels, centers_by_panel, titles, ncols: int):
  """A grid of scatter panels (e.g. final samples per variant and seed)."""
  n = len(panels)
  nrows = (n + ncols - 1) // ncols
  fig, axes = plt.subplots(nrows, ncols, figsize=(2.2 * ncols, 2.2 * nrows),
                           dpi=90, squeeze=False)
  for i, ax in enumerate(axes.ravel()):
    if i < n:
      scatter_2d(ax, panels[i], centers_by_panel[i], titles[i])
    else:
      ax.axis('off')
  fig.tight_layout()
  fig.savefig(path)
  plt.close(fig)


def image_grid(images, ncols: int) -> np.ndarray:
  """Tiles ``[N, H, W, C]`` images in [-1, 1] into one ``[H', W', 3]`` uint8
  array (1-pixel gaps); grey-scale is replicated to RGB."""
  images = np.asarray(images, np.float32)
  n, h, w, c = images.shape
  if c == 1:
    images = np.repeat(images, 3, axis=-1)
  images = np.clip((images + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
  nrows = (n + ncols - 1) // ncols
  grid = np.full((nrows * (h + 1) + 1, ncols * (w + 1) + 1, 3), 255, np.uint8)
  for i in range(n):
    r, col = divmod(i, ncols)
    grid[1 + r * (h + 1):1 + r * (h + 1) + h,
         1 + col * (w + 1):1 + col * (w + 1) + w] = images[i, ..., :3]
  return grid


def save_image_grid(path: str, images, ncols: int) -> np.ndarray:
  """Writes the :func:`image_grid` of ``images`` as a PNG; returns it."""
  grid = image_grid(images, ncols)
  plt.imsave(path, grid)
  return grid
