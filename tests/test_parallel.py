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


STABILISERS_SCRIPT = r'''
import json, sys, contextlib, io
import jax
assert jax.device_count() == 2, jax.devices()
from experiments.configs import mnist, mog
from gan_stability.train import train_and_evaluate
from gan_stability.train.tasks import final_samples
from tests.conftest import write_fake_idx
write_fake_idx(sys.argv[1] + '/idx', num_train=64, num_test=16)
CASES = {
    # LeCam, optimistic GD, zCR, lazy DRAGAN, annealed instance noise.
    'mog': lambda: mog.get_config('smoke'),
    # ADA (p moves every D update) with bCR, on images.
    'image': lambda: mnist.get_config('smoke'),
}
out = {}
for name, make in CASES.items():
  for n in (1, 2):
    c = make()
    if name == 'mog':
      c.update(lecam_weight=0.3, game='optimistic', consistency='zcr',
               penalty='dragan', penalty_weight=1.0, penalty_every=2,
               instance_noise=0.1, instance_noise_steps=4)
    else:
      c.data.dir = sys.argv[1] + '/idx'
      c.update(augment='ada', ada_p=0.5, ada_interval=1, ada_kimg=0.01,
               consistency='bcr')
      c.eval.metrics = ''
    c.update(num_steps=4, steps_per_dispatch=2, log_every=2, eval_every=4,
             checkpoint_every=4, batch_size=32, num_devices=n,
             write_tensorboard=False, write_samples=False)
    wd = f'{sys.argv[1]}/{name}_{n}'
    with contextlib.redirect_stdout(io.StringIO()):
      train_and_evaluate(c, wd)
    recs = [json.loads(l) for l in open(wd + '/metrics.jsonl')]
    keys = ('d_loss', 'g_loss', 'penalty', 'consistency', 'lecam', 'ada_p',
            'ada_rt')
    out[f'{name}_{n}'] = {k: [r[k] for r in recs if k in r] for k in keys}
    out[f'{name}_{n}']['samples'] = final_samples(c, wd)[:8].tolist()
print('RESULT' + json.dumps(out))
'''


@pytest.mark.timeout(600)
def test_stabilisers_agree_on_one_and_two_devices(tmp_path):
  proc = run_python(['-c', STABILISERS_SCRIPT, str(tmp_path)], devices=2,
                    timeout=540)
  line = [l for l in proc.stdout.splitlines() if l.startswith('RESULT')][0]
  res = json.loads(line[len('RESULT'):])
  for name, present in (('mog', ('penalty', 'consistency', 'lecam')),
                        ('image', ('consistency', 'ada_p', 'ada_rt'))):
    ref, got = res[f'{name}_1'], res[f'{name}_2']
    for key in present:
      assert len(ref[key]) == 2, (name, key)
    for key, value in ref.items():
      np.testing.assert_allclose(got[key], value, rtol=1e-4, atol=1e-5,
                                 err_msg=f'{name} {key} on 2 devices')
  # ADA's p moved (and identically on 2 devices, above).
  assert res['image_1']['ada_p'][-1] != 0.5
