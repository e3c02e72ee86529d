"""1 vs 2 vs 4 devices give the same training run (up to reduction order).

Runs in a subprocess with 4 fake CPU devices and a timeout; the training loop
waits for every dispatch, which keeps XLA's CPU all-reduce from deadlocking.
"""

import json

import numpy as np
import pytest

from conftest import run_python

SCRIPT = r'''
import json, sys, contextlib, io
import jax, numpy as np
assert jax.device_count() == 4, jax.devices()
from experiments.configs import mog
from gan_stability.train import train_and_evaluate
from gan_stability.train.tasks import final_samples
out = {}
for variant in ('wgan_gp', 'sngan'):
  for n in (1, 2, 4):
    c = mog.get_config(variant)
    c.update(num_steps=6, steps_per_dispatch=2, log_every=2, eval_every=6,
             checkpoint_every=6, batch_size=32, eval_samples=64,
             num_devices=n, write_tensorboard=False, write_samples=False)
    if variant == 'wgan_gp':
      c.n_critic = 2
    c.model.update(g_hidden=16, d_hidden=16, g_layers=2, d_layers=2)
    wd = f'{sys.argv[1]}/{variant}_{n}'
    with contextlib.redirect_stdout(io.StringIO()):
      train_and_evaluate(c, wd)
    recs = [json.loads(l) for l in open(wd + '/metrics.jsonl')]
    out[f'{variant}_{n}'] = {
        'd_loss': [r['d_loss'] for r in recs], 'g_loss': [r['g_loss'] for r in recs],
        'penalty': [r['penalty'] for r in recs],
        'samples': final_samples(c, wd)[:16].tolist()}
print('RESULT' + json.dumps(out))
'''


@pytest.mark.timeout(600)
def test_one_two_four_devices_agree(tmp_path):
  proc = run_python(['-c', SCRIPT, str(tmp_path)], devices=4, timeout=540)
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT')][0]
  res = json.loads(line[len('RESULT'):])
  for variant in ('wgan_gp', 'sngan'):
    ref = res[f'{variant}_1']
    assert len(ref['d_loss']) == 3
    for n in (2, 4):
      got = res[f'{variant}_{n}']
      for key in ('d_loss', 'g_loss', 'penalty'):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-4, atol=1e-6,
                                   err_msg=f'{variant} {key} on {n} devices')
      np.testing.assert_allclose(got['samples'], ref['samples'], rtol=1e-4,
                                 atol=1e-5)
  # The penalty is really being computed in the GP run.
  assert min(res['wgan_gp_1']['penalty']) > 0
