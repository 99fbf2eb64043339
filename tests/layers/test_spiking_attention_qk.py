"""QKFormer's Q-K attention: the query sums and the key mask against a hand-worked map, the operation count, the block
as stbp builds it, and the float32 kernels against the float64 loops. SpikingJelly's QKFormer is the reference in
``tests/conformance/test_qkformer_against_spikingjelly.py``."""

import copy

import pytest
import torch

from autograd_graph import assert_float32_gradients_match_float64
from deepspike.core.errors import ConfigError
from deepspike.layers.spiking_attention import QKAttention, QuerySum
from deepspike.methods import get_method
from deepspike.models.layer_specs import Attention, Flatten, Linear, Pool, Residual
from deepspike.models.spec import Architecture


def test_query_sums_and_the_key_mask_by_hand():
    """C = 4 channels in 2 heads, L = 2 tokens (W = 2). Q channel-major [[1,0],[1,1],[0,1],[0,0]]: per head and token
    the sums [[2,1],[0,1]], per channel [1,2,1,0]. A token mask [[1,0],[0,1]] keeps head 0's keys at token 0 and head
    1's at token 1."""
    q = torch.tensor([[1.0, 0], [1, 1], [0, 1], [0, 0]]).reshape(1, 1, 4, 1, 2)
    by_token = QuerySum(2, "channels")
    assert by_token(q).flatten().tolist() == [2.0, 1.0, 0.0, 1.0]
    assert QuerySum(2, "tokens")(q).flatten().tolist() == [1.0, 2.0, 1.0, 0.0]
    k = torch.ones(1, 1, 4, 1, 2)
    masked = by_token.mask(k, torch.tensor([[1.0, 0], [0, 1]]).reshape(1, 1, 2, 1, 2))
    assert masked.reshape(4, 2).tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]
    assert by_token.synaptic_operations(q) == (4.0, 4.0, False)


def _qk_net(mixing="qk_token", **options):
    arch = Architecture("qk", (Residual((Attention(2, mixing=mixing),), connect="add"), Pool("avg", 2), Flatten(),
                               Linear(5, act=False)), (8, 2, 2), 5)
    method = get_method("stbp", {"timesteps": 3, "encoder": "direct", "norm": "bn", "readout": "membrane",
                                 "threshold": 0.8, **options})
    return method.build(arch)


@pytest.mark.parametrize(("mixing", "attend_shape"), [("qk_token", (3, 4, 2, 2, 2)), ("qk_channel", (3, 4, 8, 1, 1))])
def test_the_block_masks_the_keys_with_the_neuron_on_the_query_sums(mixing, attend_shape):
    net = _qk_net(mixing).eval()
    block = net.body[0].body[0]
    assert isinstance(block, QKAttention) and block.attend.params.threshold == pytest.approx(0.4)
    x = (torch.rand(3, 4, 8, 2, 2, generator=torch.Generator().manual_seed(2)) < 0.5).float()
    with torch.no_grad():
        q, k = copy.deepcopy(block.query)(x), copy.deepcopy(block.key)(x)
        attention = copy.deepcopy(block.attend)(block.query_sum(q))
        assert attention.shape == attend_shape and 0 < attention.mean() < 1
        want = copy.deepcopy(block.output)(block.query_sum.mask(k, attention))
        assert torch.equal(block(x), want)


@pytest.mark.parametrize("mixing", ["qk_token", "qk_channel"])
def test_the_fused_float32_block_gives_the_float64_reference_spikes_and_gradients(mixing):
    torch.manual_seed(0)
    fused = _qk_net(mixing, decay=0.5, threshold=1.0, detach_reset=True).body
    with torch.no_grad():
        for p in fused.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    reference = copy.deepcopy(fused).double()
    x = (torch.rand(3, 4, 8, 2, 2, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    x32, x64 = x.clone().requires_grad_(True), x.double().requires_grad_(True)
    out32, out64 = fused(x32), reference(x64)
    torch.testing.assert_close(out32.double(), out64, rtol=1e-5, atol=1e-5)
    assert_float32_gradients_match_float64(fused, reference, out32, out64, x32, x64)


@pytest.mark.parametrize("heads, over, match", [
    (2, "foo", "unknown QuerySum over 'foo'; valid: channels, tokens"), (2, "token", "unknown QuerySum over"),
    (0, "channels", "QuerySum heads=0"), (2.5, "channels", "QuerySum heads=2.5"), (False, "tokens", "QuerySum heads"),
])
def test_bad_heads_or_sum_is_refused_at_construction_in_one_line(heads, over, match):
    """over="foo" was silently summed per head as "channels", heads=0 a ZeroDivisionError at the first forward,
    heads=2.5 silently 2 heads."""
    with pytest.raises(ConfigError, match=match) as caught:
        QuerySum(heads, over)
    assert "\n" not in str(caught.value)
