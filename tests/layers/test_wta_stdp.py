"""The Diehl & Cook network module: Poisson rasters, repeats of weak answers, labelling, voting, refusals."""

import numpy as np
import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers import wta_kernels
from deepspike.layers.wta_stdp import CompetitiveStdpLayer, Presentation, PresentationTally
from deepspike.methods.wta_stdp import WtaStdpOptions, wta_constants


def _layer(inputs=4, neurons=3, classes=2, steps=50, window=6, **presentation) -> CompetitiveStdpLayer:
    p = dict(steps=steps, rest_ms=150.0, rate_max=63.75, rate_step=31.875, min_spikes=5, max_presentations=3,
             weight_sum=1.0, label_window=window)
    return CompetitiveStdpLayer(inputs, neurons, classes, wta_constants(WtaStdpOptions()),
                                Presentation(**{**p, **presentation}), 0.3, 20.0, 20)


def test_weights_start_as_diehl_and_cook_drew_them():
    torch.manual_seed(0)
    layer = _layer(inputs=500, neurons=40)
    w = layer.weight
    assert w.dtype == torch.float64 and w.shape == (500, 40)
    assert float(w.min()) >= 0.3 * 0.01 and float(w.max()) < 0.3 * 1.01
    assert float(w.mean()) == pytest.approx(0.3 * 0.51, rel=0.01)
    assert layer.theta.tolist() == [20.0] * 40 and layer.assignments.tolist() == [-1] * 40
    d = layer.delays
    assert d.dtype == torch.uint8 and int(d.min()) == 0 and int(d.max()) == 19  # 0-10 ms in 0.5 ms steps
    assert float(d.double().mean()) == pytest.approx(9.5, abs=0.1)


def test_rasters_fire_at_the_rate_of_each_show():
    """Show k draws a spike per step with probability x (rate_max + k rate_step) dt / 1000."""
    torch.manual_seed(0)
    layer = _layer(inputs=3, steps=20000)
    intensity = torch.tensor([[1.0, 0.5, 0.0]], dtype=torch.float64)
    for show in (0, 2):
        mean = layer._rasters(intensity, show)[0].mean(0)
        rate = 63.75 + show * 31.875
        expected = np.array([1.0, 0.5, 0.0]) * rate * 0.5 / 1000
        np.testing.assert_allclose(mean, expected, atol=4 * np.sqrt(expected.max() / 20000))
        assert mean[2] == 0


def test_a_weak_answer_is_shown_again_louder_up_to_the_limit(monkeypatch):
    shows, sums = [], []

    def silent(w, theta, delays, spikes, learn, c):
        shows.append(spikes.mean())
        sums.append(w.sum(0).copy())
        w *= 2.0  # what learning might do: the next show must start normalised again
        return np.zeros((2, w.shape[1]), np.int64)

    monkeypatch.setattr(wta_kernels, "present", silent)
    torch.manual_seed(0)
    layer = _layer(inputs=200, steps=400, max_presentations=3)
    theta = layer.theta.clone()
    layer.learn(torch.ones(1, 200), torch.tensor([1]))
    assert len(shows) == 3 and shows[0] < shows[1] < shows[2]
    np.testing.assert_allclose(shows, [(63.75 + k * 31.875) * 0.5e-3 for k in range(3)], rtol=0.05)
    np.testing.assert_allclose(np.stack(sums), 1.0)  # W's columns normalised before every show, repeats included
    # theta decays over the rest after each of the three shows (the kernel, stubbed, changed nothing)
    np.testing.assert_allclose(layer.theta, theta * np.exp(-150.0 / 1e7) ** 3, rtol=1e-15)


def test_learning_normalises_the_columns_before_each_sample(monkeypatch):
    sums = []

    def record(w, theta, delays, spikes, learn, c):
        sums.append(w.sum(0).copy())
        return np.full((2, w.shape[1]), 5, np.int64)

    monkeypatch.setattr(wta_kernels, "present", record)
    layer = _layer(weight_sum=2.5)
    layer.learn(torch.rand(2, 4), torch.tensor([0, 1]))
    np.testing.assert_allclose(np.stack(sums), 2.5)


def test_labels_are_the_class_of_the_highest_mean_response():
    """Block: neuron 0 answers class 0 with 4 and 2 (mean 3) and class 1 with 5 (mean 5): label 1; neuron 1 answers
    class 0 with mean 1 and class 1 with 0: label 0; neuron 2 never fires: -1. Ties go to the lower class."""
    layer = _layer(window=100)
    for counts, label in (([4, 1, 0], 0), ([2, 1, 0], 0), ([5, 0, 0], 1)):
        layer._remember(torch.tensor(counts), label)
    layer.assign_labels()
    assert layer.assignments.tolist() == [1, 0, -1]
    layer._remember(torch.tensor([0, 0, 3]), 0)  # neuron 2: class 0 mean 3/3, class 1 mean 2/2, a tie
    layer._remember(torch.tensor([0, 0, 2]), 1)
    layer.assign_labels()
    assert layer.assignments.tolist() == [1, 0, 0]


def test_labels_come_from_full_blocks_and_at_the_end_from_the_last_two():
    layer = _layer(window=2)
    layer._remember(torch.tensor([9, 0, 0]), 0)
    assert layer.assignments.tolist() == [-1, -1, -1]  # the block is not full: no labels yet
    layer._remember(torch.tensor([0, 7, 0]), 1)
    assert layer.assignments.tolist() == [0, 1, -1]  # full: labelled from the block alone
    layer._remember(torch.tensor([0, 0, 4]), 1)
    layer._remember(torch.tensor([0, 0, 0]), 0)
    assert layer.assignments.tolist() == [-1, -1, 1]  # the second block alone: neurons 0 and 1 were silent in it
    layer._remember(torch.tensor([6, 0, 0]), 1)
    layer.assign_labels()  # the epoch ends with one sample in the third block: labelled with the second block
    assert layer.assignments.tolist() == [1, -1, 1]  # neuron 0: class 1 mean (0 + 6) / 2 = 3 > class 0's 0
    assert int(layer.learned) == 5
    assert layer.block_samples.tolist() == [[1, 1], [0, 1]]


def test_labelling_before_any_sample_changes_nothing():
    layer = _layer()
    layer.assign_labels()
    assert layer.assignments.tolist() == [-1, -1, -1]


def test_class_scores_are_the_mean_count_of_each_class_neurons():
    layer = _layer(neurons=4, classes=3)
    layer.assignments.copy_(torch.tensor([0, 0, 2, -1]))
    scores = layer.class_scores(torch.tensor([[4, 2, 7, 100], [0, 0, 0, 5]]))
    assert scores.tolist() == [[3.0, 0.0, 7.0], [0.0, 0.0, 0.0]]


def test_scoring_changes_nothing_and_repeats_from_the_same_seed():
    torch.manual_seed(1)
    layer = _layer(inputs=16, neurons=5, steps=200)
    layer.weight.mul_(8.0)
    state = {k: v.clone() for k, v in layer.state_dict().items()}
    x = torch.rand(20, 1, 4, 4)
    torch.manual_seed(2)
    first = layer.responses(x)
    torch.manual_seed(2)
    assert torch.equal(layer.responses(x), first) and first.sum() > 0
    assert all(torch.equal(v, state[k]) for k, v in layer.state_dict().items())


def test_scoring_in_parallel_equals_one_sample_at_a_time():
    torch.manual_seed(1)
    layer = _layer(inputs=16, neurons=5, steps=200, max_presentations=1)
    layer.weight.mul_(8.0)
    x = torch.rand(3, 16)
    torch.manual_seed(3)
    batch = layer.responses(x)
    torch.manual_seed(3)
    rasters = layer._rasters(x.double(), 0)
    for b in range(3):
        one = wta_kernels.present(layer.weight.numpy().copy(), layer.theta.numpy().copy(), layer.delays.numpy(),
                                  rasters[b], False, layer.constants)
        assert batch[b].tolist() == one[0].tolist()


@pytest.mark.parametrize("x, message", [(torch.full((1, 4), 1.5), "in \\[0, 1\\]"),
                                        (torch.full((1, 4), -0.1), "in \\[0, 1\\]"),
                                        (torch.rand(1, 5), "5 inputs, the network 4")])
def test_inputs_it_cannot_read_are_one_line_errors(x, message):
    with pytest.raises(ConfigError, match=message):
        _layer()(x)


def test_labels_by_responses_to_a_pass_over_batches(monkeypatch):
    """The paper's labelling: mean responses per class over every batch given, learning off; neuron 0 answers class
    1 (mean 4 against 1), neuron 1 class 0 (2 against 0), neuron 2 never: -1."""
    layer = _layer()
    answers = iter([torch.tensor([[1, 2, 0], [4, 0, 0]]), torch.tensor([[1, 2, 0]])])
    monkeypatch.setattr(layer, "responses", lambda x: next(answers))
    layer.label_by_responses([(torch.zeros(2, 4), torch.tensor([0, 1])), (torch.zeros(1, 4), torch.tensor([0]))])
    assert layer.assignments.tolist() == [1, 0, -1]
    assert int(layer.learned) == 0 and layer.block_samples.sum() == 0  # nothing learned, no block touched


def test_the_tally_counts_every_show_and_the_last_responses(monkeypatch):
    """Three samples, at most three shows, 5 spikes needed: sample 0 answers at once (6), sample 1 at its second show
    (2, then 5), sample 2 never (0, 1, 3). The tally holds all six shows' spikes and the last shows' active
    neurons; the responses are the last shows'."""
    exc = {0: [[6, 0, 0], [2, 0, 0], [0, 0, 0]], 1: [[3, 2, 0], [1, 0, 0]], 2: [[1, 1, 1]]}
    inh = {0: [[1, 0, 0], [0, 2, 0], [0, 0, 0]], 1: [[1, 1, 1], [0, 0, 4]], 2: [[2, 0, 0]]}
    rasters = []

    def stub(w, theta, delays, spikes, c):
        show = len(rasters)
        rasters.append(spikes.copy())
        return np.stack([np.array(exc[show]), np.array(inh[show])], axis=1).astype(np.int64)

    monkeypatch.setattr(wta_kernels, "present_batch", stub)
    torch.manual_seed(0)
    layer, tally = _layer(inputs=6, neurons=3, steps=40), PresentationTally()
    counts = layer.responses(torch.rand(3, 6), tally)
    assert [len(r) for r in rasters] == [3, 2, 1]
    assert counts.tolist() == [[6, 0, 0], [3, 2, 0], [1, 1, 1]]
    assert (tally.samples, tally.shows) == (3, 6)
    assert tally.input_spikes == sum(int(r.sum()) for r in rasters) > 0
    assert (tally.excitatory_spikes, tally.inhibitory_spikes) == (6 + 2 + 0 + 5 + 1 + 3, 1 + 2 + 0 + 3 + 4 + 2)
    # last shows: sample 0 (6,0,0 / 1,0,0), sample 1 (3,2,0 / 1,1,1), sample 2 (1,1,1 / 2,0,0)
    assert (tally.active_excitatory, tally.active_inhibitory) == (1 + 2 + 3, 1 + 3 + 1)


def test_a_tally_leaves_the_responses_and_their_draws_alone():
    torch.manual_seed(1)
    layer = _layer(inputs=16, neurons=5, steps=200)
    layer.weight.mul_(4.0)
    x = torch.rand(20, 16)  # more samples than one chunk of EVAL_CHUNK
    torch.manual_seed(3)
    plain = layer.responses(x)
    torch.manual_seed(3)
    tally = PresentationTally()
    assert torch.equal(layer.responses(x, tally), plain)
    assert tally.samples == 20 and tally.excitatory_spikes >= int(plain.sum())
