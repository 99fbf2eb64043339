"""The Diehl & Cook presentation kernel against hand-computed steps and an independent dense simulation."""

import math

import numpy as np
import pytest

from deepspike.layers.wta_kernels import WtaConstants, normalise_columns, present, present_batch

PAPER = dict(dt=0.5, exc_tau=100.0, exc_rest=-65.0, exc_reset=-65.0, exc_thresh=-52.0, exc_e_exc=0.0,
             exc_e_inh=-100.0, exc_refractory_steps=10.0, inh_tau=10.0, inh_rest=-60.0, inh_reset=-45.0,
             inh_thresh=-40.0, inh_e_exc=0.0, inh_refractory_steps=4.0, tau_ge=1.0, tau_gi=2.0, w_ei=10.4, w_ie=17.0,
             theta_plus=0.05, theta_offset=20.0, tau_theta=1e7, tau_pre=20.0, tau_post1=20.0, tau_post2=40.0,
             nu_pre=1e-4, nu_post=1e-2, w_max=1.0)


def constants(**changes) -> WtaConstants:
    return WtaConstants(**{**PAPER, **changes})


def dense_reference(w, theta, spikes, learn, c):
    """The same network written as whole-population numpy steps (no shared code with the kernel): returns counts,
    and the final weights and thresholds (copies)."""
    w, theta = w.copy(), theta.copy()
    n_in, n = w.shape
    v_e, v_i = np.full(n, c.exc_rest), np.full(n, c.inh_rest)
    ge_e, gi_e, ge_i = np.zeros(n), np.zeros(n), np.zeros(n)
    ref_e, ref_i = np.zeros(n, int), np.zeros(n, int)
    pre, post1, post2 = np.zeros(n_in), np.zeros(n), np.zeros(n)
    counts = np.zeros(n, int)
    others = 1.0 - np.eye(n)  # inhibitory j -> every excitatory neuron but j
    for row in spikes.astype(bool):
        free_e, free_i = ref_e == 0, ref_i == 0
        v_e = np.where(free_e, v_e + c.dt / c.exc_tau * ((c.exc_rest - v_e) + ge_e * (c.exc_e_exc - v_e)
                                                         + gi_e * (c.exc_e_inh - v_e)), c.exc_reset)
        v_i = np.where(free_i, v_i + c.dt / c.inh_tau * ((c.inh_rest - v_i) + ge_i * (c.inh_e_exc - v_i)), c.inh_reset)
        ge_e, gi_e, ge_i = ge_e * math.exp(-c.dt / c.tau_ge), gi_e * math.exp(-c.dt / c.tau_gi), \
            ge_i * math.exp(-c.dt / c.tau_ge)
        if learn:
            pre, post1 = pre * math.exp(-c.dt / c.tau_pre), post1 * math.exp(-c.dt / c.tau_post1)
            post2, theta = post2 * math.exp(-c.dt / c.tau_post2), theta * math.exp(-c.dt / c.tau_theta)
        fire_e = free_e & (v_e > c.exc_thresh + theta - c.theta_offset)
        fire_i = free_i & (v_i > c.inh_thresh)
        ref_e, ref_i = np.where(free_e, 0, ref_e - 1), np.where(free_i, 0, ref_i - 1)
        v_e, ref_e = np.where(fire_e, c.exc_reset, v_e), np.where(fire_e, int(c.exc_refractory_steps), ref_e)
        v_i, ref_i = np.where(fire_i, c.inh_reset, v_i), np.where(fire_i, int(c.inh_refractory_steps), ref_i)
        counts += fire_e
        ge_e = ge_e + row.astype(float) @ w
        ge_i = ge_i + c.w_ei * fire_e
        gi_e = gi_e + c.w_ie * (fire_i.astype(float) @ others)
        if learn:
            theta = theta + c.theta_plus * fire_e
            pre = np.where(row, 1.0, pre)
            w[row] = np.maximum(w[row] - c.nu_pre * post1, 0.0)
            w[:, fire_e] = np.minimum(w[:, fire_e] + c.nu_post * np.outer(pre, post2[fire_e]), c.w_max)
            post1, post2 = np.where(fire_e, 1.0, post1), np.where(fire_e, 1.0, post2)
    return counts, w, theta


def _random_case(seed, n_in=30, n=5, steps=400, p=0.2):
    rng = np.random.default_rng(seed)
    w = (rng.random((n_in, n)) + 0.01) * 0.6
    theta = np.full(n, 20.0) + rng.random(n)
    spikes = (rng.random((steps, n_in)) < p).astype(np.uint8)
    return w, theta, spikes


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_presentation_matches_the_dense_reference(seed, learn):
    w, theta, spikes = _random_case(seed)
    c = constants(nu_pre=0.002, nu_post=0.05)  # large rates: learning moves the spikes within the presentation
    expected_counts, expected_w, expected_theta = dense_reference(w, theta, spikes, learn, c)
    w_kernel, theta_kernel = w.copy(), theta.copy()
    counts = present(w_kernel, theta_kernel, spikes, learn, c)
    assert counts.sum() > 10  # the case exercises firing, inhibition and refractoriness
    np.testing.assert_array_equal(counts, expected_counts)
    np.testing.assert_allclose(w_kernel, expected_w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(theta_kernel, expected_theta, rtol=0, atol=1e-12)
    if not learn:
        np.testing.assert_array_equal(w_kernel, w)  # learning off leaves weights and thresholds alone
        np.testing.assert_array_equal(theta_kernel, theta)


def test_two_steps_by_hand():
    """One input and one excitatory neuron that fires at every step (threshold far below rest, no refractoriness):
    step 0 pairs nothing (both traces were 0); step 1 potentiates by nu_post x_pre x_post2 with both traces one
    step old; theta takes theta_plus per spike and decays per step."""
    c = constants(exc_refractory_steps=0.0, w_ie=0.0)
    w, theta = np.array([[0.5]]), np.array([-1000.0])
    counts = present(w, theta, np.array([[1], [0]], np.uint8), True, c)
    assert counts.tolist() == [2]
    d_theta = math.exp(-0.5 / 1e7)
    assert w[0, 0] == pytest.approx(0.5 + 0.01 * math.exp(-0.5 / 20) * math.exp(-0.5 / 40), abs=1e-15)
    assert theta[0] == pytest.approx(((-1000.0 * d_theta) + 0.05) * d_theta + 0.05, abs=1e-9)


def test_one_input_spike_by_hand():
    """An input spike at step 0 (weight 0.5) opens g_e = 0.5 for step 1, where Euler gives
    v = -65 + 0.5/100 * 0.5 * 65 = -64.8375 (the last step): a threshold just below that fires there, one just
    above does not."""
    spikes = np.array([[1], [0]], np.uint8)
    for thresh, expected in ((-64.84, 1), (-64.83, 0)):
        c = constants(exc_thresh=thresh, theta_offset=0.0, w_ei=0.0)
        counts = present(np.array([[0.5]]), np.array([0.0]), spikes, False, c)
        assert counts.tolist() == [expected]


def test_lateral_inhibition_silences_the_losers():
    """With strong inhibition, the neuron with the larger weights takes (almost) every spike; without it, both
    fire."""
    w = np.array([[0.9, 0.6]] * 8)
    spikes = (np.random.default_rng(0).random((600, 8)) < 0.1).astype(np.uint8)
    free = present(w.copy(), np.zeros(2), spikes, False, constants(theta_offset=0.0, w_ie=0.0))
    inhibited = present(w.copy(), np.zeros(2), spikes, False, constants(theta_offset=0.0, w_ie=50.0))
    assert free.min() > 0
    assert inhibited[0] > 0 and inhibited[1] <= 0.1 * inhibited[0] < free[1]


def test_batch_equals_one_presentation_per_sample():
    w, theta, _ = _random_case(3)
    rasters = np.stack([_random_case(s)[2] for s in (4, 5, 6)])
    batch = present_batch(w, theta, rasters, constants())
    for b in range(3):
        np.testing.assert_array_equal(batch[b], present(w.copy(), theta.copy(), rasters[b], False, constants()))


def test_normalise_columns_scales_each_column_to_the_total():
    w = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]])
    normalise_columns(w, 8.0)
    np.testing.assert_allclose(w, [[2.0, 0.0, 4.0], [6.0, 0.0, 4.0]])
