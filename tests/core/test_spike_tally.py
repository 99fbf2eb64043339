"""The progress bar's spike count: equal to the spikes counted by hand from each spiking layer's output."""

import torch

from deepspike.core.spike_tally import ReportsSpikes, SpikeTally, counting_spikes
from deepspike.methods import get_method
from deepspike.models import create_architecture
from deepspike.neurons.modules import SpikingNeuron
from deepspike.ttfs.layers import TTFSLinear


def test_rate_net_count_equals_the_neurons_outputs_fused_pooling_included():
    arch = create_architecture("vgg", num_classes=3, input_shape=(1, 8, 8), blocks=[[4], [6]], hidden=[10],
                               batch_norm=False)
    torch.manual_seed(0)
    net = get_method("stbp", {"timesteps": 5, "threshold": 0.2}).build(arch).train()
    x = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    tally = SpikeTally()
    with counting_spikes(net, tally):
        net(x)  # neurons followed by a tiling pool run fused: their spikes never exist as a tensor
    by_hand = []
    hooks = [m.register_forward_hook(lambda m, i, o: by_hand.append(o.sum().item()))
             for m in net.modules() if isinstance(m, SpikingNeuron)]  # hooks run every neuron unfused
    net(x)
    for h in hooks:
        h.remove()
    assert tally.reporters == len(hooks) and sum(by_hand) > 0
    assert tally.total == sum(by_hand)


def test_ttfs_count_is_the_finite_spike_times():
    layer = TTFSLinear(6, 5)
    t_in = torch.tensor([[0.1, 0.5, float("inf"), 0.2, 0.9, 0.3]] * 3)
    tally = SpikeTally()
    with counting_spikes(layer, tally):
        t_out = layer(t_in)
    assert tally.total == torch.isfinite(t_out).sum().item()
    layer(t_in)  # outside the block nothing is counted
    assert tally.total == torch.isfinite(t_out).sum().item() and layer.tally is None


def test_progress_bar_shows_spikes_per_sample_and_throughput():
    import io

    from tqdm import tqdm

    from deepspike.training.loop import _show

    tally = SpikeTally()
    tally.reporters = 1
    tally.add(torch.tensor(1234.0))
    out = io.StringIO()
    bar = tqdm(range(3), file=out, disable=False, mininterval=0)
    _show(bar, loss_sum=2.0, correct=3.0, n=4.0, tally=tally)
    bar.refresh()
    text = out.getvalue()
    assert "spikes=308/sample" in text and "loss=0.5000" in text and "acc=0.750" in text and "samples=" in text


def test_bf16_spikes_are_counted_exactly_past_256():
    """A bf16 sum holds whole numbers exactly only up to 256: 301 spikes counted 300 (train.precision=bf16)."""

    class Emitter(ReportsSpikes, torch.nn.Module):
        def forward(self, s):
            return self.reported(s)

    emitter, tally = Emitter(), SpikeTally()
    with counting_spikes(emitter, tally):
        emitter(torch.ones(301, dtype=torch.bfloat16))
    assert torch.ones(301, dtype=torch.bfloat16).sum().item() == 300 and tally.total == 301
