"""Run outputs: ``metrics.jsonl``, TensorBoard events, console progress.

Only process 0 writes. TensorBoard files are written with ``tensorboardX``
(no TensorFlow needed).
"""

from __future__ import annotations

import json
import math
import os
import time

import jax


def _to_py(v):
  v = getattr(v, 'item', lambda: v)()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)  # JSON has no NaN/Inf; keep them visible as strings
  return v


class MetricWriter:
  """Appends one JSON object per logged step; mirrors scalars to TensorBoard."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, 'metrics.jsonl')
    self._tb = None
    if self.active and tensorboard:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(logdir=workdir, flush_secs=30)

  def truncate_after(self, step: int) -> None:
    """Drops records with ``step > step`` (written after the last checkpoint)."""
    if not self.active or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      lines = [l for l in f if l.strip()]
    kept = []
    for line in lines:
      try:
        rec = json.loads(line)
      except json.JSONDecodeError:
        continue  # a line cut by a crash
      if rec.get('step', 0) <= step:
        kept.append(json.dumps(rec) + '\n')
    tmp = self.path + '.tmp'
    with open(tmp, 'w') as f:
      f.writelines(kept)
    os.replace(tmp, self.path)

  def records(self) -> list[dict]:
    """The records in ``metrics.jsonl`` (lines cut by a crash skipped)."""
    if not os.path.exists(self.path):
      return []
    return read_metrics(os.path.dirname(self.path))

  def write(self, step: int, metrics: dict) -> None:
    if not self.active:
      return
    rec = {'step': int(step), **{k: _to_py(v) for k, v in metrics.items()}}
    with open(self.path, 'a') as f:
      f.write(json.dumps(rec) + '\n')
    if self._tb is not None:
      for k, v in rec.items():
        if k != 'step' and isinstance(v, (int, float)):
          self._tb.add_scalar(k, v, step)

  def add_image(self, tag: str, image_hwc, step: int) -> None:
    if self._tb is not None:
      self._tb.add_image(tag, image_hwc, step, dataformats='HWC')

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
  """All records of ``workdir/metrics.jsonl`` (a line cut by a crash is
  skipped)."""
  out = []
  with open(os.path.join(workdir, 'metrics.jsonl')) as f:
    for line in f:
      try:
        out.append(json.loads(line))
      except json.JSONDecodeError:
        continue
  return out


class Progress:
  """Logs steps/s, ETA and the latest metrics."""

  def __init__(self, total_steps: int, start_step: int):
    self.total = total_steps
    self.start_step = start_step
    self.t0 = time.time()

  def report(self, step: int, metrics: dict) -> str:
    elapsed = time.time() - self.t0
    done = step - self.start_step
    rate = done / elapsed if elapsed > 0 else float('nan')
    eta = (self.total - step) / rate if rate > 0 else float('nan')
    eta_s = time.strftime('%H:%M:%S', time.gmtime(eta)) if math.isfinite(eta) else '?'
    shown = ' '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}'
                     for k, v in metrics.items()
                     if k in ('d_loss', 'g_loss', 'penalty', 'neg_elbo',
                              'modes',
                              'high_quality', 'kl', 'digit_modes', 'cfid',
                              'fid', 'alarms'))
    line = (f'step {step}/{self.total} ({100 * step / self.total:.0f}%) '
            f'{rate:.1f} steps/s ETA {eta_s} | {shown}')
    if jax.process_index() == 0:
      print(line, flush=True)
    return line
