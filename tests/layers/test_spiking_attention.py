"""Spiking self-attention: the product against a hand-worked head and the softmax-free ``(Q K^T) V`` order, its
operation count against a brute-force count, and the block as stbp builds it (SpikingJelly's own SSA is the
reference in ``tests/conformance/test_attention_against_spikingjelly.py``)."""

import itertools

import pytest
import torch

from autograd_graph import assert_float32_gradients_match_float64
from deepspike.core.errors import ConfigError
from deepspike.layers.activity_recorder import ActivityRecorder
from deepspike.layers.spiking_attention import AttentionProduct, QuerySum, SpikingSelfAttention, TokenSum
from deepspike.methods import get_method
from deepspike.models.layer_specs import Attention, Flatten, Linear, Pool
from deepspike.models.spec import Architecture


def _spikes(shape, seed, rate=0.4):
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < rate).float()


def test_one_head_by_hand():
    """d = 2 channels, L = 3 tokens (W = 3). Token-major Q = [[1,0],[0,1],[1,1]], K = [[1,1],[0,1],[0,0]],
    V = [[1,0],[1,1],[0,1]]: K^T V = [[1,0],[2,1]], Q K^T V = [[1,0],[2,1],[3,1]]; scale 0.5 halves it."""
    q = torch.tensor([[1.0, 0, 1], [0, 1, 1]]).reshape(1, 1, 2, 1, 3)  # channel-major [T, B, C, H, W]
    k = torch.tensor([[1.0, 0, 0], [1, 1, 0]]).reshape(1, 1, 2, 1, 3)
    v = torch.tensor([[1.0, 1, 0], [0, 1, 1]]).reshape(1, 1, 2, 1, 3)
    out = AttentionProduct(heads=1, scale=0.5)(q, k, v)
    token_major = out.reshape(2, 3).T
    assert token_major.tolist() == [[0.5, 0.0], [1.0, 0.5], [1.5, 0.5]]
    events, operations, analog = AttentionProduct(1, 0.5).synaptic_operations(q, k, v)
    # events 4 + 3 + 4; K^T V: tokens (|k_l| |v_l|) = 2*1 + 1*2 + 0*1 = 4; Q: 4 query spikes x d = 2 -> 8
    assert (events, operations, analog) == (11.0, 12.0, False)


@pytest.mark.parametrize("heads", [1, 2, 4])
def test_the_product_is_softmax_free_attention_per_head(heads):
    t, b, c, h, w = 3, 2, 8, 2, 3
    q, k, v = (_spikes((t, b, c, h, w), seed) for seed in (1, 2, 3))
    out = AttentionProduct(heads, 0.125)(q, k, v)
    d = c // heads
    for head in range(heads):
        rows = slice(head * d, (head + 1) * d)
        qt, kt, vt = (x[:, :, rows].flatten(3).transpose(-2, -1) for x in (q, k, v))  # token-major [T, B, L, d]
        want = (qt @ kt.transpose(-2, -1)) @ vt * 0.125  # (Q K^T) V: the attention-matrix order
        torch.testing.assert_close(out[:, :, rows].flatten(3).transpose(-2, -1), want)


def test_the_operation_count_equals_a_brute_force_count():
    t, b, c, h, w, heads = 2, 3, 6, 2, 2, 3
    q, k, v = (_spikes((t, b, c, h, w), seed, 0.3) for seed in (4, 5, 6))
    events, operations, analog = AttentionProduct(heads, 0.125).synaptic_operations(q, k, v)
    d, want = c // heads, 0
    for s in range(t):
        for n in range(b):
            for head in range(heads):
                rows = slice(head * d, (head + 1) * d)
                kk, vv, qq = (x[s, n, rows].flatten(1) for x in (k, v, q))  # [d, L]
                want += sum(int(kk[i, l] * vv[j, l]) for i in range(d) for j in range(d) for l in range(h * w))
                want += int(qq.sum()) * d
    assert operations == want and events == float(q.sum() + k.sum() + v.sum()) and not analog
    assert AttentionProduct(heads, 0.125).synaptic_operations(q * 0.7 + 0.1, k, v)[2]  # analog queries: MACs


def _attention_net(heads=4, **options):
    arch = Architecture("attention", (Attention(heads), Pool("avg", 2), Flatten(), Linear(5, act=False)),
                        (8, 2, 2), 5)
    method = get_method("stbp", {"timesteps": 3, "encoder": "direct", "norm": "bn", "readout": "membrane",
                                 "threshold": 0.8, **options})
    return method.build(arch)


def test_stbp_builds_the_block_with_the_attention_threshold_and_the_method_norm():
    net = _attention_net(neuron="plif")
    block = net.body[0]
    assert isinstance(block, SpikingSelfAttention)
    assert block.attend.fixed.threshold == pytest.approx(0.4)  # 0.5 of method.threshold
    assert block.query[-1].fixed.threshold == pytest.approx(0.8)
    tebn = _attention_net(norm="tebn").body[0]
    assert type(tebn.key[1]).__name__ == "TemporalEffectiveBatchNorm"
    out = net(torch.rand(4, 8, 2, 2))
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_the_recorder_counts_projections_and_products():
    net = _attention_net().eval()
    with torch.no_grad(), ActivityRecorder(net) as recorder:
        net(torch.rand(4, 8, 2, 2))
    names = sorted(recorder.synapses)
    assert "body.0.product" in names and "body.0.query.0.module" in names
    assert recorder.synapses["body.0.product"].acs > 0


def test_other_methods_refuse_attention_in_one_line():
    arch = Architecture("attention", (Attention(4), Pool("avg", 2), Flatten(), Linear(5, act=False)), (8, 2, 2), 5)
    with pytest.raises(ConfigError, match="spiking self-attention, which this method cannot build"):
        get_method("ann", {}).build(arch)
    with pytest.raises(ConfigError, match="heads do not divide"):
        Architecture("bad", (Attention(3), Pool("avg", 2), Flatten(), Linear(5, act=False)), (8, 2, 2), 5)


def test_the_fused_float32_block_gives_the_float64_reference_spikes_and_gradients():
    """In float32 the projections run the fused batch-norm + neuron kernels; in float64 the reference loops."""
    torch.manual_seed(0)
    fused = _attention_net(decay=0.5, threshold=1.0, detach_reset=True).body[0]
    with torch.no_grad():
        for p in fused.parameters():
            p.copy_(torch.randn_like(p) * 0.5 + (1.0 if p.dim() == 1 else 0.0))
    reference = __import__("copy").deepcopy(fused).double()
    x = _spikes((3, 4, 8, 2, 2), 9, 0.5)
    x32, x64 = x.clone().requires_grad_(True), x.double().requires_grad_(True)
    out32, out64 = fused(x32), reference(x64)
    assert torch.equal(out32.double(), out64) and 0.05 < out64.mean() < 0.95
    assert_float32_gradients_match_float64(fused, reference, out32, out64, x32, x64)


@pytest.mark.parametrize("heads, scale, bad", [
    (0, 0.5, "heads"), (2.5, 0.5, "heads"), (True, 0.5, "heads"), ("2", 0.5, "heads"),
    (2, float("nan"), "scale"), (2, -1.0, "scale"), (2, 0, "scale"), (2, "0.5", "scale"),
])
def test_bad_heads_or_scale_is_refused_at_construction_in_one_line(heads, scale, bad):
    """heads=0 was a ZeroDivisionError at the first forward, heads=2.5 / True silently 2 / 1 heads, a nan, negative
    or zero scale silently NaN, negated or zero attention."""
    with pytest.raises(ConfigError, match=f"AttentionProduct {bad}=") as caught:
        AttentionProduct(heads, scale)
    assert "\n" not in str(caught.value)


def _loop_attention(q, k, v, heads, scale):
    """``y[l, j] = scale sum_m (sum_i q[l, i] k[m, i]) v[m, j]`` per step, sample and head, token by token: the
    paper's ``(Q K^T) V`` written as plain sums over channel-major ``[T, B, C, H, W]`` maps."""
    t, b, c, h, w = q.shape
    d, tokens = c // heads, h * w
    qf, kf, vf = (x.reshape(t, b, c, tokens) for x in (q, k, v))
    rows = []
    for s, n, head, j, l in itertools.product(range(t), range(b), range(heads), range(d), range(tokens)):
        chans = range(head * d, (head + 1) * d)
        score = [sum(qf[s, n, i, l] * kf[s, n, i, m] for i in chans) for m in range(tokens)]
        rows.append(scale * sum(score[m] * vf[s, n, head * d + j, m] for m in range(tokens)))
    y = torch.stack(rows).reshape(t, b, heads, d, tokens)
    return y.reshape(t, b, c, h, w)


@pytest.mark.parametrize("t, b, c, h, w, heads", [(1, 1, 9, 1, 3, 3), (2, 3, 6, 3, 1, 1), (3, 1, 5, 2, 2, 5)])
def test_the_product_and_its_gradients_equal_a_plain_loop_on_odd_and_strided_maps(t, b, c, h, w, heads):
    """T = 1, batch 1, odd head widths and token counts, and maps that are not contiguous (the projections may give
    channels-last or permuted views): values and the gradients of q, k and v equal the loop's."""
    maps = [(torch.rand(t, b, w, h, c, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) < 0.5)
            .to(torch.float64).permute(0, 1, 4, 3, 2).requires_grad_(True) for seed in (1, 2, 3)]
    assert not maps[0].is_contiguous()
    out = AttentionProduct(heads, 0.125)(*maps)
    want = _loop_attention(*maps, heads, 0.125)
    torch.testing.assert_close(out, want)
    weights = torch.rand(out.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    got = torch.autograd.grad((out * weights).sum(), maps)
    expected = torch.autograd.grad((want * weights).sum(), maps)
    for g, e in zip(got, expected, strict=True):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("call, message", [
    (lambda x: AttentionProduct(3, 0.125)(x, x, x), "3 heads do not divide the map's 8 channels"),
    (lambda x: AttentionProduct(2, 0.125)(x, x, x[:, :, :4]), "maps of one shape"),
    (lambda x: AttentionProduct(2, 0.125)(x[0], x[0], x[0]), r"\[T, B, C, H, W\] maps"),
    (lambda x: TokenSum()(x, x[..., :1, :1]), "maps of one shape"),
    (lambda x: QuerySum(3, "channels")(x), "3 heads do not divide"),
    (lambda x: QuerySum(2, "channels").mask(x, torch.ones(2, 1, 2, 1, 1)), "not the sums' shape"),
    (lambda x: QuerySum(2, "tokens").mask(x, torch.ones(2, 1, 8, 2, 2)), "not the sums' shape"),
])
def test_maps_of_another_rank_shape_or_channel_count_are_refused_in_one_line(call, message):
    """Heads not dividing the channels, a 4-D map or q, k, v of other shapes were reshape errors with a traceback;
    a key or value map of another shape in ``TokenSum`` and attention spikes of another shape in ``QuerySum.mask``
    broadcast silently into nonsense."""
    with pytest.raises(ConfigError, match=message) as caught:
        call(torch.rand(2, 1, 8, 2, 2))
    assert "\n" not in str(caught.value)
