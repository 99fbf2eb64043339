"""``sweep_accuracy``'s per-T operation counts: a layer's MACs are all of its operations when the recorder priced it
analog, else none, at every reported T (a layer first seen analog in a later batch once moved earlier batches'
operations into one T's MACs, leaving negative ACs)."""

import torch

from deepspike.conversion.accuracy_sweep import sweep_accuracy
from deepspike.methods import get_method
from deepspike.models import create_architecture


def test_every_reported_t_splits_each_layer_into_macs_or_acs():
    torch.manual_seed(0)
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8))
    options = {"timesteps": 8, "encoding": "direct", "reset": "subtract", "thresholds": [0.3, 0.3, 0.2, 0.05]}
    snn = get_method("converted", options).build(arch).eval()
    batches = [(torch.rand(n, 1, 8, 8), torch.zeros(n, dtype=torch.long)) for n in (1, 2, 3)]
    sweep = sweep_accuracy(snn, batches, 8, lambda s: None)
    assert any(v > 0 for v in sweep.macs_at[-1].values()) and any(v == 0 for v in sweep.macs_at[-1].values())
    for ops, macs in zip(sweep.accumulates_at, sweep.macs_at, strict=True):
        for name, total in ops.items():
            assert macs[name] in (0.0, total), (name, macs[name], total)
    assert sweep.macs_at[-1].keys() == sweep.accumulates.keys()
