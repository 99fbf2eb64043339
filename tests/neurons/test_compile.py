"""``torch.compile`` (default mode, CPU) on every built-in neuron and on small models the methods build: the compiled
module gives eager's spikes bit for bit and its gradients (allclose), and compiling does not raise.

The fused IF/LIF and learnable-LIF kernels run as ``torch.library`` custom ops under compilation
(``neurons.fused_ops``: no graph break, ``fullgraph=True`` works); PSN, lee2020's LIF, the batch-norm + neuron layer
and the oneDNN linear run eagerly behind one graph break each (``core.compile_support``).
"""

import copy

import pytest
import torch
import torch._dynamo

from deepspike.methods import get_method
from deepspike.models.registry import create_architecture
from deepspike.neurons import IF, LIF, PSN, LearnableLIF, NeuronParams
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.chunked_if import ChunkedIF
from deepspike.neurons.fused import fused_multistep
from deepspike.neurons.heterogeneous import HeterogeneousLIF
from deepspike.neurons.spikebp_lif import LeakCorrectedLIF
from deepspike.neurons.synaptic import SynapticLIF


def _currents(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(1)) * 1.5


def _run(model: torch.nn.Module, x: torch.Tensor, grad: bool):
    """``(output, {name: gradient})`` of a weighted sum of the output (the input's gradient as ``"input"``)."""
    x = x.clone().requires_grad_(grad)
    y = model(x)
    if not grad:
        return y.detach(), {}
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    grads = {n.replace("_orig_mod.", ""): p.grad for n, p in model.named_parameters() if p.grad is not None}
    return y.detach(), {**grads, "input": x.grad}


def _check(make, x: torch.Tensor, grad: bool = True, fullgraph: bool = False, dynamic: bool | None = None,
           exact: bool = True) -> None:
    """The compiled module of ``make()`` against eager on ``x``: outputs equal, the same gradients allclose.
    ``dynamic=False`` for models with graph breaks: torch 2.13's Inductor fails on their resumed graphs with
    automatic dynamic shapes (``cannot determine truth value of Relational`` in ``get_stride_order``)."""
    torch.manual_seed(0)
    eager = make()
    compiled = copy.deepcopy(eager)
    torch._dynamo.reset()
    y_eager, g_eager = _run(eager, x, grad)
    y_compiled, g_compiled = _run(torch.compile(compiled, fullgraph=fullgraph, dynamic=dynamic), x, grad)
    if exact:  # spikes: bit for bit
        assert torch.equal(y_eager, y_compiled)
    else:  # a model's scores: Inductor may sum the readout in another order
        torch.testing.assert_close(y_compiled, y_eager, rtol=1e-5, atol=1e-6)
    assert g_eager.keys() == g_compiled.keys()
    for name, g in g_eager.items():
        torch.testing.assert_close(g_compiled[name], g, rtol=1e-4, atol=1e-5, msg=name)


NEURONS = {
    "IF": (lambda: IF(threshold=1.0), (5, 2, 3, 4)),
    "LIF": (lambda: LIF(decay=0.5, threshold=1.0, surrogate="arctan"), (6, 3, 20)),
    "LIF-subtract-sigmoid": (lambda: LIF(decay=0.8, threshold=0.7, reset="subtract", surrogate="sigmoid"),
                             (5, 2, 3, 4, 4)),
    "PLIF": (lambda: LearnableLIF(NeuronParams(decay=0.5, surrogate="arctan")), (6, 3, 20)),
    "PLIF-channels": (lambda: LearnableLIF(NeuronParams(decay=0.5), channels=3, learn_threshold=True), (4, 2, 3, 4)),
    "PSN": (lambda: PSN(6), (6, 3, 20)),
    "LeakCorrectedLIF": (lambda: LeakCorrectedLIF(), (6, 3, 20)),
    "ChunkedIF": (lambda: ChunkedIF(1.0), (6, 3, 20)),
    "SynapticLIF": (lambda: SynapticLIF(NeuronParams(decay=0.7, threshold=0.5), syn_decay=0.6), (6, 3, 20)),
    "AdaptiveLIF": (lambda: AdaptiveLIF(NeuronParams(decay=0.7, threshold=0.5, reset="subtract")), (6, 3, 20)),
    # per-neuron constants (an imported NIR layer): decays 0..0.95, thresholds 0.5..1.45, currents 0.05..1
    "HeterogeneousLIF": (lambda: HeterogeneousLIF(NeuronParams(reset="subtract"), torch.linspace(0.0, 0.95, 20),
                                                  torch.linspace(0.5, 1.45, 20)), (6, 3, 20)),
    "HeterogeneousLIF-synaptic": (lambda: HeterogeneousLIF(NeuronParams(), torch.linspace(0.0, 0.95, 20),
                                                           torch.linspace(0.5, 1.45, 20),
                                                           torch.linspace(0.05, 1.0, 20)), (6, 3, 20)),
}


@pytest.mark.parametrize("name", list(NEURONS))
def test_compiled_neuron_matches_eager(name):
    make, shape = NEURONS[name]
    _check(make, _currents(*shape))


@pytest.mark.parametrize("name", ["LIF", "PLIF", "HeterogeneousLIF", "HeterogeneousLIF-synaptic"])
def test_fused_neurons_compile_in_one_graph(name):
    """The custom ops keep the whole neuron in one graph: ``fullgraph=True`` and no graph break."""
    make, shape = NEURONS[name]
    x = _currents(*shape)
    _check(make, x, fullgraph=True)
    torch._dynamo.reset()
    assert torch._dynamo.explain(make())(x.requires_grad_()).graph_break_count == 0


def test_compiled_pooled_neuron_with_membrane_matches_eager():
    """``fused_multistep`` with tiling pooling, an initial membrane and the membrane trace, compiled whole."""
    x, v0 = _currents(3, 2, 2, 4, 4), _currents(2, 2, 4, 4) * 0.3
    params = NeuronParams(decay=0.6, surrogate="fast_sigmoid")

    def f(x, v0):
        s, v, h = fused_multistep(x, params, v0, return_membrane=True, pool=(2, 2))
        return (s * torch.arange(s.numel()).reshape(s.shape)).sum() + v.sum() + (h * h).sum(), s

    torch._dynamo.reset()
    inputs = [(x.clone().requires_grad_(), v0.clone().requires_grad_()) for _ in range(2)]
    (loss_e, s_e), (loss_c, s_c) = f(*inputs[0]), torch.compile(f, fullgraph=True)(*inputs[1])
    loss_e.backward()
    loss_c.backward()
    assert torch.equal(s_e, s_c)
    for eager, compiled in zip(inputs[0], inputs[1], strict=True):
        torch.testing.assert_close(compiled.grad, eager.grad, rtol=1e-4, atol=1e-5)


def _stbp(neuron: str, arch_name: str, **options):
    shape = (1, 6, 6) if arch_name == "mlp" else (1, 8, 8)
    kw = {"hidden": (16,)} if arch_name == "mlp" else {}
    arch = create_architecture(arch_name, 4, shape, 1.0 if arch_name == "mlp" else 0.25, **kw)
    return (lambda: get_method("stbp", {"timesteps": 3, "neuron": neuron, **options}).build(arch)), shape


@pytest.mark.parametrize("neuron, arch_name", [("lif", "mlp"), ("plif", "mlp"), ("psn", "mlp"),
                                               ("lif", "scnn_digits")])
def test_compiled_stbp_model_matches_eager(neuron, arch_name):
    make, shape = _stbp(neuron, arch_name)
    dynamic = False if neuron == "psn" else None  # PSN runs eagerly behind a graph break (_check)
    _check(make, torch.rand(2, *shape, generator=torch.Generator().manual_seed(2)), dynamic=dynamic)


def test_compiled_stbp_lif_mlp_has_no_graph_break():
    make, shape = _stbp("lif", "mlp")
    torch._dynamo.reset()
    assert torch._dynamo.explain(make())(torch.rand(2, *shape).requires_grad_()).graph_break_count == 0


@pytest.mark.parametrize("method", ["spikebp", "converted"])
def test_compiled_method_model_matches_eager(method):
    arch = create_architecture("scnn_digits", 4, (1, 8, 8), 0.25)
    options = {"timesteps": 3, **({"encoder": "direct"} if method == "spikebp" else {})}  # (compiled Poisson
    # encoders draw from another random stream than eager's)

    def make():
        net = get_method(method, options).build(arch)
        return net.eval() if method == "converted" else net

    _check(make, torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(3)), grad=method != "converted",
           dynamic=False, exact=False)
