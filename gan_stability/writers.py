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
from absl import logging

from gan_stability.errors import DamagedFile, writing

METRICS_FILE = 'metrics.jsonl'


def _to_py(v):
  v = getattr(v, 'item', lambda: v)()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)  # JSON has no NaN/Inf; keep them visible as strings
  return v


class TensorBoardWriter:
  """Scalars and images to a TensorBoard event file, written and flushed in
  the calling thread (tensorboardX's own writer writes from a thread whose
  death on a full disk left every later call blocked on its queue), so a
  failed write raises here."""

  def __init__(self, logdir: str):
    from tensorboardX import event_file_writer  # pylint: disable=g-import-not-at-top
    self.logdir = logdir
    os.makedirs(logdir, exist_ok=True)
    self._events = event_file_writer.EventsWriter(
        os.path.join(logdir, 'events'))

  def _write(self, summary, step: int) -> None:
    from tensorboardX.proto import event_pb2  # pylint: disable=g-import-not-at-top
    self._events.write_event(event_pb2.Event(
        summary=summary, step=int(step), wall_time=time.time()))

  def add_scalar(self, tag: str, value: float, step: int) -> None:
    from tensorboardX import summary  # pylint: disable=g-import-not-at-top
    self._write(summary.scalar(tag, value), step)

  def add_image(self, tag: str, image_hwc, step: int) -> None:
    from tensorboardX import summary  # pylint: disable=g-import-not-at-top
    self._write(summary.image(tag, image_hwc, dataformats='HWC'), step)

  def flush(self) -> None:
    self._events.flush()

  def close(self) -> None:
    self._events.close()


class MetricWriter:
  """Appends one JSON object per logged step; mirrors scalars to TensorBoard.
  A failed write raises :class:`~gan_stability.errors.WriteFailed`."""

  def __init__(self, workdir: str, *, tensorboard: bool = True):
    self.active = jax.process_index() == 0
    self.path = os.path.join(workdir, METRICS_FILE)
    self._tb = None
    if self.active and tensorboard:
      with writing('TensorBoard events in', workdir):
        self._tb = TensorBoardWriter(workdir)

  def truncate_after(self, step: int) -> None:
    """Drops records with ``step > step`` (written after the last checkpoint)
    and a last line cut by a crash."""
    if not self.active or not os.path.exists(self.path):
      return
    kept = [json.dumps(rec) + '\n' for rec in _read_records(self.path)
            if rec.get('step', 0) <= step]
    tmp = self.path + '.tmp'
    with writing('metrics', self.path):
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
    with writing('metrics', self.path):
      with open(self.path, 'a') as f:
        f.write(json.dumps(rec) + '\n')
    if self._tb is not None:
      with writing('TensorBoard events in', self._tb.logdir):
        for k, v in rec.items():
          if k != 'step' and isinstance(v, (int, float)):
            self._tb.add_scalar(k, v, step)
        self._tb.flush()

  def add_image(self, tag: str, image_hwc, step: int) -> None:
    if self._tb is not None:
      with writing('TensorBoard events in', self._tb.logdir):
        self._tb.add_image(tag, image_hwc, step)

  def close(self) -> None:
    """Closes the event file; a failure here is logged, not raised (the
    run's outcome is already decided)."""
    if self._tb is not None:
      tb, self._tb = self._tb, None
      try:
        tb.close()
      except OSError as e:
        logging.warning('closing the TensorBoard events in %s: %s',
                        tb.logdir, e)


def _read_records(path: str) -> list[dict]:
  """The records of a ``metrics.jsonl``; a last line cut by a crash (no
  newline) is dropped, any other line that is not a JSON object raises
  :class:`~gan_stability.errors.DamagedFile` naming the file and line."""
  with open(path, 'rb') as f:
    data = f.read()
  lines = data.split(b'\n')
  out = []
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    try:
      rec = json.loads(line)
      if not isinstance(rec, dict):
        raise ValueError(f'a JSON {type(rec).__name__}, not an object')
    except ValueError as e:  # JSONDecodeError, UnicodeDecodeError
      if number == len(lines):  # no newline after it: a write cut short
        break
      raise DamagedFile(
          f'{path}: line {number} is not a JSON record ({e}); the file is '
          'damaged beyond a last line cut by a crash: repair or delete that '
          'line, or restore the file') from None
    out.append(rec)
  return out


def read_metrics(workdir: str) -> list[dict]:
  """All records of ``workdir/metrics.jsonl`` (a last line cut by a crash is
  skipped; other damage raises DamagedFile)."""
  return _read_records(os.path.join(workdir, METRICS_FILE))


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
