"""Spike-driven self-attention (SDSA) and the membrane shortcut: the column sum and the mask against a hand-worked
map, its operation count against a brute-force count, the block and the residual as stbp builds them (the lone
neuron must leave the shortcut's input alone), and the float32 kernels against the float64 loops. SpikingJelly's own
Spike-driven Transformer is the reference in ``tests/conformance/test_sdt_against_spikingjelly.py``."""

import copy

import pytest
import torch

from autograd_graph import assert_float32_gradients_match_float64
from deepspike.core.errors import ConfigError
from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.spiking_attention import SpikeDrivenSelfAttention, TokenSum
from deepspike.methods import get_method
from deepspike.models.layer_specs import Activation, Attention, Conv, Flatten, Linear, Pool, Residual
from deepspike.models.spec import Architecture


def _spikes(shape, seed, rate=0.4):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).float()


def test_the_column_sum_and_its_operations_by_hand():
    """C = 2 channels, L = 3 tokens. K = [[1,0,1],[1,1,0]], V = [[1,1,1],[0,1,1]] (channel-major): K * V =
    [[1,0,1],[0,1,0]], column sums [2, 1]; events |K| + |V| = 4 + 5, one accumulate per coincidence: 3."""
    k = torch.tensor([[1.0, 0, 1], [1, 1, 0]]).reshape(1, 1, 2, 1, 3)
    v = torch.tensor([[1.0, 1, 1], [0, 1, 1]]).reshape(1, 1, 2, 1, 3)
    assert TokenSum()(k, v).flatten().tolist() == [2.0, 1.0]
    assert TokenSum().synaptic_operations(k, v) == (9.0, 3.0, False)
    assert TokenSum().synaptic_operations(k * 0.7 + 0.1, v)[2]  # analog keys: priced as MACs


def test_the_operation_count_equals_a_brute_force_count():
    t, b, c, h, w = 2, 3, 5, 2, 3
    k, v = _spikes((t, b, c, h, w), 1, 0.5), _spikes((t, b, c, h, w), 2, 0.5)
    want = sum(int(k[s, n, ch, i, j]) * int(v[s, n, ch, i, j]) for s in range(t) for n in range(b) for ch in range(c)
               for i in range(h) for j in range(w))
    events, operations, _ = TokenSum().synaptic_operations(k, v)
    assert operations == want and events == float(k.sum() + v.sum())


def _arch(*layers, shape=(8, 2, 2)):
    return Architecture("ms", (*layers, Pool("avg", shape[1]), Activation(), Flatten(), Linear(5, act=False)), shape, 5)


def _method(**options):
    return get_method("stbp", {"timesteps": 3, "encoder": "direct", "norm": "bn", "readout": "membrane",
                               "threshold": 0.8, **options})


def _sdsa_net(**options):
    return _method(**options).build(_arch(Residual((Activation(), Attention(4, mixing="sdsa")), connect="add")))


def test_the_block_masks_each_tokens_queries_with_the_neuron_on_the_column_sums():
    """The built block against its definition, module by module: out = output(q * attend(sum_l k_l v_l))."""
    net = _sdsa_net().eval()
    block = net.body[0].body[1]
    assert isinstance(block, SpikeDrivenSelfAttention)
    assert block.attend.params.threshold == pytest.approx(0.4)  # 0.5 of method.threshold
    assert len(block.output) == 2  # 1x1 conv and batch-norm: currents for the membrane shortcut, no neuron
    x = _spikes((3, 4, 8, 2, 2), 3, 0.5)
    with torch.no_grad():
        q, k, v = copy.deepcopy(block.query)(x), copy.deepcopy(block.key)(x), copy.deepcopy(block.value)(x)
        counts = (k * v).flatten(3).sum(-1)[..., None, None]  # [T, B, C, 1, 1]
        mask = copy.deepcopy(block.attend)(counts)
        want = copy.deepcopy(block.output)(q * mask)
        assert torch.equal(block(x), want)
        assert 0 < mask.mean() < 1 and 0 < q.mean() < 1


def test_the_membrane_shortcut_adds_the_bodys_currents_to_the_untouched_input():
    """``x + body(SN(x))``: the lone neuron runs out of place (an in-place neuron would write its membrane over x,
    which the shortcut then read)."""
    net = _method().build(_arch(Residual((Activation(), Conv(8, 1, norm=True, act=False)), connect="add")))
    block = net.body[0]
    assert block.body[0].inplace is False
    x = torch.randn(3, 4, 8, 2, 2) * 2
    x_copy = x.clone()
    out = block(x)
    assert torch.equal(x, x_copy)
    with torch.no_grad():
        assert torch.equal(out, x_copy + block.body[1:](block.body[0](x_copy)))


def test_the_recorder_counts_projections_and_the_column_sum_in_order():
    net = _sdsa_net().eval()
    with torch.no_grad(), ActivityRecorder(net) as recorder:
        net(torch.rand(4, 8, 2, 2))
    names = list(recorder.synapses)
    block = [n for n in names if n.startswith("body.0.")]
    assert block == ["body.0.body.1.query.0.module", "body.0.body.1.key.0.module", "body.0.body.1.value.0.module",
                     "body.0.body.1.token_sum", "body.0.body.1.output.0.module"]
    assert recorder.synapses["body.0.body.1.token_sum"].acs > 0


def test_other_methods_refuse_lone_activations_and_sdsa_in_one_line():
    arch = _arch(Residual((Activation(), Conv(8, 1, act=False)), connect="add"))
    with pytest.raises(ConfigError, match="lone Activation layers"):
        get_method("ann", {}).build(arch)
    with pytest.raises(ConfigError, match="spiking self-attention, which this method cannot build"):
        get_method("ann", {}).build(_arch(Residual((Activation(), Attention(4, mixing="sdsa")), connect="add")))
    with pytest.raises(ConfigError, match="unknown attention mixing"):
        Attention(4, mixing="softmax")
    with pytest.raises(ConfigError, match="sdsa masks and adds"):
        Attention(4, scale=0.25, mixing="sdsa")


def test_the_fused_float32_block_gives_the_float64_reference_spikes_and_gradients():
    """In float32 the projections run the fused batch-norm + neuron kernels and the lone neurons the fused LIF; in
    float64 the reference loops."""
    torch.manual_seed(0)
    net = _sdsa_net(decay=0.5, threshold=1.0, detach_reset=True)
    fused = net.body
    with torch.no_grad():
        for p in fused.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    reference = copy.deepcopy(fused).double()
    x = torch.randn(3, 4, 8, 2, 2) * 1.5
    x32, x64 = x.clone().requires_grad_(True), x.double().requires_grad_(True)
    out32, out64 = fused(x32), reference(x64)
    torch.testing.assert_close(out32.double(), out64, rtol=1e-5, atol=1e-5)
    assert_float32_gradients_match_float64(fused, reference, out32, out64, x32, x64)
    assert x64.grad.abs().sum() > 0
