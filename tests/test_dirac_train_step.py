"""The game updates (config.game) through the library's real train step on
the Dirac-GAN (issue #25): the eigenvalues of ``jax.jacfwd`` of one train
step at the equilibrium equal the closed forms of gan_stability.game to
1e-6, and from (1, 1) consensus, extragradient and optimistic GD converge
where simultaneous and alternating GD do not (experiments/reproduce/dirac.py,
docs/reproduce/dirac/dirac.md)."""

import numpy as np
import pytest

from experiments.reproduce import dirac as repro


@pytest.fixture(scope='module')
def rows():
  return {r['method']: r for r in repro.game_rows()}


@pytest.mark.parametrize('method', [m for m, _, _ in repro.GAME_RUNS])
def test_step_linearisation_matches_the_closed_form(rows, method):
  assert rows[method]['eig_max_abs_error'] < 1e-6


def test_which_updates_converge(rows):
  for method, _, expected in repro.GAME_RUNS:
    assert rows[method]['converged'] == expected, rows[method]
  assert rows['simultaneous']['spectral_radius'] > 1
  assert rows['alternating']['spectral_radius'] == pytest.approx(1, abs=1e-6)
  for m in ('consensus', 'extragradient', 'optimistic'):
    assert rows[m]['final_norm'] < 1e-6 and rows[m]['spectral_radius'] < 1


def test_closed_forms_by_hand():
  # h = 0.3, a = 1/2: simultaneous 1 +- 0.15i; extragradient 1 - 0.0225
  # +- 0.15i; consensus (gamma 1) 1 - 0.075 +- 0.15i.
  e = repro.analytic_game_eigenvalues('extragradient', lr=0.3)
  np.testing.assert_allclose(sorted(e.imag), [-0.15, 0.15])
  np.testing.assert_allclose(e.real, [0.9775, 0.9775])
  e = repro.analytic_game_eigenvalues('consensus', lr=0.3, gamma=1.0)
  np.testing.assert_allclose(e.real, [0.925, 0.925])
  # Alternating: det 1, so both on the unit circle.
  np.testing.assert_allclose(
      np.abs(repro.analytic_game_eigenvalues('alternating', lr=0.3)), 1)
