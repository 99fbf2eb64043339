"""``deploy.conformance.compare``: the difference of two spike tensors and the spike counts of both."""

import torch

from deepspike.deploy.conformance import compare


def test_spike_counts_are_spike_events_whatever_value_a_spike_carries():
    """A converted net's spikes carry its threshold: 3 spikes of 0.3 were counted int(0.9) = 0, and 3 of 2.5 as 7."""
    ours = torch.zeros(4, 1, 2)
    ours[0, 0, 0] = ours[1, 0, 1] = ours[3, 0, 0] = 0.3
    theirs = torch.zeros(4, 1, 2)
    theirs[0, 0, 0] = theirs[1, 0, 1] = theirs[2, 0, 1] = 2.5
    result = compare(ours, theirs)
    assert result["spikes_ours"] == 3 and result["spikes_theirs"] == 3  # counted by hand above
    assert result["differing"] == 4 and result["first_step"] == 0 and result["fraction"] == 0.5
    assert not result["equal"]


def test_equal_binary_spikes_compare_equal_with_their_count():
    spikes = (torch.arange(24).reshape(3, 2, 4) % 5 == 0).float()  # entries 0, 5, 10, 15, 20: 5 spikes
    assert compare(spikes, spikes.clone()) == {"equal": True, "differing": 0, "fraction": 0.0, "first_step": None,
                                               "spikes_ours": 5, "spikes_theirs": 5}
