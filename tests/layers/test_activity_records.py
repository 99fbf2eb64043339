"""Per-layer activity records: events and operations counted by hand."""

import torch
from torch import nn

from deepspike.layers.activity_records import SynapseRecord
from deepspike.layers.fan_out import fan_out_map


def test_negative_spikes_are_events_that_cost_accumulates():
    """Linear(4, 3), one step of signed spikes x = [1, -1, 0, 1]: three non-zero inputs are events, each reaching
    the layer's 3 outputs, so by hand 3 events and 3 x 3 = 9 ACs (no MACs: the values are spikes)."""
    record = SynapseRecord("fc", "Linear")
    record.add_inputs(torch.tensor([[1.0, -1.0, 0.0, 1.0]]), fan_out_map(nn.Linear(4, 3), (4,)), ttfs=False)
    assert (record.events, record.acs, record.macs) == (3, 9, 0)
