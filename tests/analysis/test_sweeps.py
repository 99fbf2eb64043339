"""The sweep points and the weight-noise sweep's mean over its seeded draws, by hand."""

import torch

from deepspike.analysis import sweeps


def test_the_time_step_points_double_up_to_the_total_once():
    """1, 2, 4, ... below T, then T itself, never twice: T = 4 -> [1, 2, 4] (not [1, 2, 4, 4]), T = 5 -> [1, 2, 4,
    5]."""
    assert sweeps.timestep_points(1) == [1]
    assert sweeps.timestep_points(4) == [1, 2, 4]
    assert sweeps.timestep_points(5) == [1, 2, 4, 5]


def test_the_snr_sweep_averages_its_draws_of_seeds_0_to_repeats(monkeypatch):
    """Two draws per SNR, seeds 0 and 1: accuracies 0.5 and 1.0 at 20 dB give 0.75, 0.25 and 0.5 at 10 dB 0.375
    (the last draw alone would give 1.0 and 0.5; seed 0 twice 0.5 and 0.25)."""
    scored = {(20.0, 0): 0.5, (20.0, 1): 1.0, (10.0, 0): 0.25, (10.0, 1): 0.5}
    monkeypatch.setattr(sweeps, "add_weight_noise", lambda model, snr, generator: (snr, generator.initial_seed()))
    monkeypatch.setattr(sweeps, "accuracy", lambda noisy, method, batches: scored[noisy])
    rows = sweeps.sweep_snr(torch.nn.Linear(1, 1), None, [], (20.0, 10.0), repeats=2)
    assert rows == [{"snr_db": 20.0, "accuracy": 0.75}, {"snr_db": 10.0, "accuracy": 0.375}]
