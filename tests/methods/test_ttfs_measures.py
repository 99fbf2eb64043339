"""collect_measures (the TTFS measures a method logs each epoch) on a built network against layers called by hand."""

import torch

from deepspike.methods import get_method
from deepspike.models.spec import Architecture, Flatten, Linear
from deepspike.ttfs.measures import TTFSMeasures


def test_collect_measures_on_a_built_network():
    torch.manual_seed(0)
    arch = Architecture("fc", (Flatten(), Linear(7), Linear(3, act=False)), (1, 4, 4), 3)
    m = get_method("stdbp", {})
    model = m.build(arch).train()
    batches = [(torch.rand(5, 1, 4, 4), torch.zeros(5, dtype=torch.long)) for _ in range(3)]
    r = m.epoch_measures(model, batches)
    assert model.training  # mode restored
    # reference: the same numbers from the layers called by hand
    acc = TTFSMeasures(["body.1", "body.3"])  # body: Flatten, TTFSLinear, Identity, TTFSLinear
    model.eval()
    with torch.no_grad():
        for x, _ in batches:
            h = model.body[1](model.body[0](model.encoder(x)))
            acc.add([h], model.body[3](h))
    assert r == acc.result()
    assert set(r) >= {"latency", "spiking_fraction", "hidden_before_decision", "dead_fraction",
                      "spiking_fraction/body.1", "dead_fraction/body.1"}
    assert get_method("stdbp", {"measures": False}).epoch_measures(model, batches) == {}
    assert len(m.epoch_measures(model, iter(batches))) == len(r)
