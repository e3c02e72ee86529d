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
  """Prints steps/s, ETA and the latest metrics (of one run, or of each run
  of a vmapped group, side by side)."""

  SHOWN = ('d_loss', 'g_loss', 'penalty', 'neg_elbo', 'modes', 'high_quality',
           'kl', 'digit_modes', 'cfid', 'fid', 'alarms')

  def __init__(self, total_steps: int, start_step: int, *, prefix: str = ''):
    self.total = total_steps
    self.start_step = start_step
    self.prefix = prefix
    self.t0 = time.time()

  def report(self, step: int, records: dict | list[dict]) -> str:
    """Prints (process 0) and returns the progress line of ``records``."""
    if isinstance(records, dict):
      records = [records]
    elapsed = time.time() - self.t0
    done = step - self.start_step
    rate = done / elapsed if elapsed > 0 else float('nan')
    eta = (self.total - step) / rate if rate > 0 else float('nan')
    eta_s = time.strftime('%H:%M:%S', time.gmtime(eta)) if math.isfinite(eta) else '?'
    fmt = lambda v: f'{v:.4g}' if isinstance(v, float) else f'{v}'
    shown = ' '.join(
        f'{k}=' + ' '.join(fmt(r[k]) for r in records if k in r)
        for k in self.SHOWN if any(k in r for r in records))
    runs = f' x {len(records)} runs' if len(records) > 1 else ''
    line = (f'{self.prefix}step {step}/{self.total} '
            f'({100 * step / self.total:.0f}%) {rate:.1f} steps/s{runs} '
            f'ETA {eta_s} | {shown}')
    if jax.process_index() == 0:
      print(line, flush=True)
    return line
