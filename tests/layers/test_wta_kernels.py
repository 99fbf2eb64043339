"""The Diehl & Cook presentation kernel against hand-computed steps and an independent dense simulation."""

import math

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from deepspike.layers.wta_kernels import WtaConstants, normalise_columns, poisson_rasters, present, present_batch

PAPER = dict(dt=0.5, exc_tau=100.0, exc_rest=-65.0, exc_reset=-65.0, exc_thresh=-52.0, exc_e_exc=0.0,
             exc_e_inh=-100.0, exc_refractory_steps=10.0, inh_tau=10.0, inh_rest=-60.0, inh_reset=-45.0,
             inh_thresh=-40.0, inh_e_exc=0.0, inh_refractory_steps=4.0, tau_ge=1.0, tau_gi=2.0, w_ei=10.4, w_ie=17.0,
             theta_plus=0.05, theta_offset=20.0, tau_theta=1e7, tau_pre=20.0, tau_post1=20.0, tau_post2=40.0,
             nu_pre=1e-4, nu_post=1e-2, w_max=1.0)


NO_DELAY = np.zeros((1, 1), np.uint8)
NO_DELAYS_8x2 = np.zeros((8, 2), np.uint8)


def constants(**changes) -> WtaConstants:
    return WtaConstants(**{**PAPER, **changes})


def _relax(v, rest, channels, tau, dt):
    """The membrane after ``dt`` with conductances ``g`` (reversal ``E``) held: the linear ODE
    ``tau dv/dt = (rest - v) + sum_k g_k (E_k - v)`` solved exactly, ``v(dt) = v_inf + (v - v_inf) exp(-dt rate)``."""
    leak = 1.0 + sum(g for g, _ in channels)
    v_inf = (rest + sum(g * e for g, e in channels)) / leak
    return v_inf + (v - v_inf) * np.exp(-dt * leak / tau)


def dense_reference(w, theta, delays, spikes, learn, c):
    """The same network written as whole-population numpy steps (no shared code with the kernel): returns the
    spike counts ``[2, N]`` (excitatory, inhibitory), and the final weights and thresholds (copies)."""
    w, theta = w.copy(), theta.copy()
    n_in, n = w.shape
    v_e, v_i = np.full(n, c.exc_rest), np.full(n, c.inh_rest)
    ge_e, gi_e, ge_i = np.zeros(n), np.zeros(n), np.zeros(n)
    ref_e, ref_i = np.zeros(n, int), np.zeros(n, int)
    pre, post1, post2 = np.zeros(n_in), np.zeros(n), np.zeros(n)
    counts = np.zeros((2, n), int)
    others = 1.0 - np.eye(n)  # inhibitory j -> every excitatory neuron but j
    arrivals = np.zeros((len(spikes) + 256, n))  # arrivals[t]: input conductance that reaches g_e at the end of t
    columns = np.broadcast_to(np.arange(n), (n_in, n))
    for t, row in enumerate(spikes.astype(bool)):
        free_e, free_i = ref_e == 0, ref_i == 0
        v_e = np.where(free_e, _relax(v_e, c.exc_rest, [(ge_e, c.exc_e_exc), (gi_e, c.exc_e_inh)], c.exc_tau, c.dt),
                       c.exc_reset)
        v_i = np.where(free_i, _relax(v_i, c.inh_rest, [(ge_i, c.inh_e_exc)], c.inh_tau, c.dt), c.inh_reset)
        ge_e, gi_e, ge_i = ge_e * (1 - c.dt / c.tau_ge), gi_e * (1 - c.dt / c.tau_gi), ge_i * (1 - c.dt / c.tau_ge)
        if learn:
            pre, post1 = pre * math.exp(-c.dt / c.tau_pre), post1 * math.exp(-c.dt / c.tau_post1)
            post2, theta = post2 * math.exp(-c.dt / c.tau_post2), theta * math.exp(-c.dt / c.tau_theta)
        fire_e = free_e & (v_e > c.exc_thresh + theta - c.theta_offset)
        fire_i = free_i & (v_i > c.inh_thresh)
        ref_e, ref_i = np.where(free_e, 0, ref_e - 1), np.where(free_i, 0, ref_i - 1)
        v_e, ref_e = np.where(fire_e, c.exc_reset, v_e), np.where(fire_e, int(c.exc_refractory_steps), ref_e)
        v_i, ref_i = np.where(fire_i, c.inh_reset, v_i), np.where(fire_i, int(c.inh_refractory_steps), ref_i)
        counts += np.stack([fire_e, fire_i])
        np.add.at(arrivals, (t + delays[row].astype(int), columns[row]), w[row])
        ge_e = ge_e + arrivals[t]
        ge_i = ge_i + c.w_ei * fire_e
        gi_e = gi_e + c.w_ie * (fire_i.astype(float) @ others)
        if learn:
            theta = theta + c.theta_plus * fire_e
            pre = np.where(row, 1.0, pre)
            w[row] = np.clip(w[row] - c.nu_pre * post1, 0.0, c.w_max)
            w[:, fire_e] = np.minimum(w[:, fire_e] + c.nu_post * np.outer(pre, post2[fire_e]), c.w_max)
            post1, post2 = np.where(fire_e, 1.0, post1), np.where(fire_e, 1.0, post2)
    return counts, w, theta


def _random_case(seed, n_in=30, n=5, steps=400, p=0.2, delay_steps=20):
    """Weights, thresholds, delays (uniform over 0 .. delay_steps - 1) and a raster."""
    rng = np.random.default_rng(seed)
    w = (rng.random((n_in, n)) + 0.01) * 0.6
    theta = np.full(n, 20.0) + rng.random(n)
    delays = rng.integers(0, delay_steps, (n_in, n)).astype(np.uint8)
    spikes = (rng.random((steps, n_in)) < p).astype(np.uint8)
    return w, theta, delays, spikes


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("seed, delay_steps", [(0, 20), (1, 20), (2, 1), (3, 200)])
def test_presentation_matches_the_dense_reference(seed, delay_steps, learn):
    w, theta, delays, spikes = _random_case(seed, delay_steps=delay_steps)
    c = constants(nu_pre=0.002, nu_post=0.05)  # large rates: learning moves the spikes within the presentation
    expected_counts, expected_w, expected_theta = dense_reference(w, theta, delays, spikes, learn, c)
    w_kernel, theta_kernel = w.copy(), theta.copy()
    counts = present(w_kernel, theta_kernel, delays, spikes, learn, c)
    assert counts[0].sum() > 10 and counts[1].sum() > 5  # the case exercises firing, inhibition and refractoriness
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
    counts = present(w, theta, NO_DELAY, np.array([[1], [0]], np.uint8), True, c)
    # the inhibitory partner gets g_e = w_ei = 10.4 from step 1 on: v = v_inf + (-60 - v_inf) exp(-0.5 * 11.4 / 10)
    # with v_inf = -60 / 11.4 is -36.2 mV > -40 at step 1: one spike, then refractory
    assert -60 / 11.4 + (-60 + 60 / 11.4) * math.exp(-0.5 * 11.4 / 10) == pytest.approx(-36.22, abs=0.01)
    assert counts.tolist() == [[2], [1]]
    d_theta = math.exp(-0.5 / 1e7)
    assert w[0, 0] == pytest.approx(0.5 + 0.01 * math.exp(-0.5 / 20) * math.exp(-0.5 / 40), abs=1e-15)
    assert theta[0] == pytest.approx(((-1000.0 * d_theta) + 0.05) * d_theta + 0.05, abs=1e-9)


def test_one_input_spike_by_hand():
    """An input spike at step 0 (weight 0.5) opens g_e = 0.5 for step 1, where the membrane relaxes towards
    v_inf = (-65 + 0.5 * 0) / 1.5 = -43.33 at the rate 1.5 / 100 per ms: v = v_inf + (-65 - v_inf) exp(-0.5 * 1.5 /
    100) = -64.8381 (the last step); a threshold just below that fires there, one just above does not. With a delay
    of 1 step the conductance arrives one step later, after the last step: no spike."""
    v = -65.0 / 1.5 + (-65.0 + 65.0 / 1.5) * math.exp(-0.5 * 1.5 / 100)
    assert v == pytest.approx(-64.8381, abs=1e-4)
    spikes = np.array([[1], [0]], np.uint8)
    for thresh, delay, expected in ((v - 1e-6, 0, 1), (v + 1e-6, 0, 0), (v - 1e-6, 1, 0)):
        c = constants(exc_thresh=thresh, theta_offset=0.0, w_ei=0.0)
        counts = present(np.array([[0.5]]), np.array([0.0]), np.array([[delay]], np.uint8), spikes, False, c)
        assert counts[0].tolist() == [expected]


def test_strong_inhibition_keeps_potentials_bounded():
    """400 inhibitory spikes at once (g_i ~ 6,800) pull a potential to E_inh = -100 mV, not past it (forward Euler
    overshot to thousands of mV and made the whole layer burst): with every threshold 30 mV below rest, all 400 neurons
    fire at step 0 and then stay at or above -100 mV, so they fire again only once the inhibition has decayed."""
    n = 400
    c = constants(theta_offset=0.0, exc_thresh=-95.0, exc_refractory_steps=0.0)
    counts = present(np.zeros((1, n)), np.zeros(n), np.zeros((1, n), np.uint8), np.zeros((30, 1), np.uint8), False,
                     c)[0]
    assert counts.min() >= 1 and counts.max() <= 3


def test_lateral_inhibition_silences_the_losers():
    """With strong inhibition, the neuron with the larger weights takes (almost) every spike; without it, both
    fire."""
    w = np.array([[0.9, 0.6]] * 8)
    spikes = (np.random.default_rng(0).random((600, 8)) < 0.1).astype(np.uint8)
    free = present(w.copy(), np.zeros(2), NO_DELAYS_8x2, spikes, False, constants(theta_offset=0.0, w_ie=0.0))[0]
    inhibited = present(w.copy(), np.zeros(2), NO_DELAYS_8x2, spikes, False, constants(theta_offset=0.0, w_ie=50.0))[0]
    assert free.min() > 0
    assert inhibited[0] > 0 and inhibited[1] <= 0.1 * inhibited[0] < free[1]


def test_batch_equals_one_presentation_per_sample():
    w, theta, delays, _ = _random_case(3)
    rasters = np.stack([_random_case(s)[3] for s in (4, 5, 6)])
    batch = present_batch(w, theta, delays, rasters, constants())
    for b in range(3):
        one = present(w.copy(), theta.copy(), delays, rasters[b], False, constants())
        np.testing.assert_array_equal(batch[b], one)


def test_normalise_columns_scales_each_column_to_the_total():
    w = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 2.0]])
    normalise_columns(w, 8.0)
    np.testing.assert_allclose(w, [[2.0, 0.0, 4.0], [6.0, 0.0, 4.0]])


def _peak_depolarisation(c, steps=200):
    """The highest potential one input spike of weight 1 drives a resting excitatory neuron to (bisection on the
    threshold: the neuron fires exactly when the threshold is below its peak)."""
    low, high = c.exc_rest, 0.0
    for _ in range(50):
        mid = (low + high) / 2
        fired = present(np.ones((1, 1)), np.zeros(1), NO_DELAY, np.eye(steps, 1, dtype=np.uint8), False,
                        c._replace(exc_thresh=mid, theta_offset=0.0, w_ei=0.0))
        low, high = (mid, high) if fired[0, 0] else (low, mid)
    return low - c.exc_rest


def test_one_spike_depolarises_as_the_continuous_model():
    """The continuous model (tau_v dv/dt = (v_rest - v) + g_e (0 - v), g_e = e^(-t / tau_ge), solved by scipy) peaks
    0.618 mV above rest; at dt = 0.5 ms the kernel comes within 2% (exact conductance decay gave 0.787, 27% more)."""
    c = constants()
    solution = solve_ivp(lambda t, v: ((c.exc_rest - v) - np.exp(-t / c.tau_ge) * v) / c.exc_tau, (0.0, 20.0),
                         [c.exc_rest], max_step=1e-3, rtol=1e-10, atol=1e-12)
    continuous = solution.y[0].max() - c.exc_rest
    assert continuous == pytest.approx(0.618, abs=0.001)
    assert _peak_depolarisation(c) == pytest.approx(continuous, rel=0.02)


def _seeds(*values):
    return np.array(values, np.uint64)


def test_rasters_spike_at_each_probability_with_geometric_gaps():
    """p = 0.05, 0.3 and 0.7 over 200,000 steps: the rate of each within 4 standard deviations of p, and the gaps
    between spikes geometric: P(G = 1) = p, P(G = 2) = (1 - p) p, P(G = 3) = (1 - p)^2 p (within 0.005)."""
    p = np.array([[0.05, 0.3, 0.7]])
    steps = 200_000
    raster = poisson_rasters(p, steps, _seeds(12345))[0]
    rate = raster.mean(0)
    np.testing.assert_array_less(np.abs(rate - p[0]), 4 * np.sqrt(p[0] * (1 - p[0]) / steps))
    for i, q in enumerate(p[0]):
        gaps = np.diff(np.flatnonzero(raster[:, i]))
        for g in (1, 2, 3):
            assert (gaps == g).mean() == pytest.approx((1 - q) ** (g - 1) * q, abs=0.005)


def test_rasters_are_their_seeds_and_the_inputs_are_independent():
    p = np.full((2, 40), 0.2)
    a, b = poisson_rasters(p, 5000, _seeds(7, 8)), poisson_rasters(p, 5000, _seeds(7, 9))
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[1], b[1])  # a sample's raster is its seed's
    corr = np.corrcoef(a[0].T.astype(float))[np.triu_indices(40, 1)]  # two inputs of one stream: uncorrelated
    assert np.abs(corr).max() < 0.07


def test_rasters_of_probability_zero_and_one():
    raster = poisson_rasters(np.array([[0.0, 1.0, 1.5]]), 50, _seeds(1))[0]
    assert raster[:, 0].sum() == 0 and raster[:, 1].all() and raster[:, 2].all()


def test_rasters_of_vanishing_probabilities_stay_silent_and_leave_the_others_alone():
    """p below ~1e-19 makes the gap ``ln U / ln(1 - p)`` pass int64: ``int()`` wrapped it to a negative step and the
    kernel wrote spikes outside the raster ('corrupted size vs. prev_size', a bus error: ``method.rate_max=1e-20``
    killed a run). Expected spikes here: 3 x 2,000 x 1e-19, i.e. none; the input of p = 0.3 between them keeps its
    rate (600 of 2,000 steps, within 4 standard deviations: 82)."""
    raster = poisson_rasters(np.array([[1e-19, 0.3, 1e-100, 5e-324]]), 2000, _seeds(3))[0]
    assert raster[:, [0, 2, 3]].sum() == 0
    assert abs(int(raster[:, 1].sum()) - 600) < 4 * math.sqrt(2000 * 0.3 * 0.7)
