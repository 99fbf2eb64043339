"""Why a tool's simulation of a deepspike graph differs from deepspike's: its own bugs and limits, with links.

``known_issue(tool, family, neuron, reset)`` -> one line (cause and link) or None; ``UNEVEN_NEURONS`` for nets
whose learnt neurons differ within a layer, ``QUANTISED`` for a quantised membrane (``conformance.check_run``).
The measured size of each difference is in ``benchmarks/results/nir/conformance.json``
(``python benchmarks/nir/conformance.py``).
"""

from __future__ import annotations

NIR_RESET = ("NIR cannot say 'reset by subtraction' (neuromorphs/NIR#137, #138; v_reset only, NIR PR #129): "
             "the tool resets to v_reset and ignores deepspike's metadata reset='subtract'")

NO_DELAY = ("the tool's importer has no NIR Delay mapping, so it cannot run a delayed layer's Delay -> Linear "
            "branches (snnTorch 1.0.0, SpikingJelly 2.0.0: nirtorch's 'Unknown node type Delay'; Norse 1.1.0, "
            "Sinabs 3.1.3: KeyError on the Delay node; Rockpool 3.1.0: NotImplementedError); deepspike's "
            "GraphSimulator and from_nir run them")

QUANTISED = ("NIR has no quantised membrane: deepspike writes method.state_bits in the neuron nodes' metadata "
             "(state_bits, state_low, state_high), which from_nir and the ONNX export read and the tool does not, so "
             "it runs the net with a float membrane")

UNEVEN_NEURONS = {
    "snntorch": "snnTorch 1.0.0's importer takes one threshold and one input gain per layer: a learnt threshold per "
                "channel or per neuron (method.neuron_params=channel or neuron) fails its assertion 'v_threshold must "
                "be same for all neurons' (so does a from_nir layer with a threshold per neuron), and a PLIF layer's "
                "input gains 1 - k per channel or per neuron (a from_nir layer's tau_mem per neuron) all become one "
                "neuron's (import_nir, hack_w_scale: v_threshold / np.unique(w_scale)[0], w_scale = r dt / tau)",
}
"""Per tool: why it differs on a net whose trained PLIF / learnt-threshold neurons (``LearnableLIF``) or neurons
imported with constants per neuron (``HeterogeneousLIF``) hold thresholds or decays that differ between the channels
or neurons of a layer (``conformance.has_uneven_neurons``); it comes before the rules, whose causes such a net does
not reach."""

_RULES: list[tuple[tuple[str, str | None, str | None, str | None], str]] = [
    # (tool, family, neuron, reset); None matches anything. First match wins.
    (("spyx", "delayed", None, None), "Spyx 1.0.0's importer has no Delay mapping and follows only the first edge "
     "out of each node (spyx.nir._order_edge_list): it runs each delayed layer's delay-0 branch and drops the "
     "Delay branches"),
    ((None, "delayed", None, None), NO_DELAY),
    (("onnxruntime", "residual", "IF", "zero"), "float32 rounding, not a modelling difference: the ONNX graph's "
     "float32 run equals deepspike's float64 simulator (GraphSimulator) and the same graph in float64 (onnx's "
     "reference evaluator) everywhere; deepspike's own float32 net is the one that differs, in 3 entries from step 12"),
    (("norse", "residual", "IF", "zero"), "float32 rounding, not a modelling difference: a junction membrane lands "
     "within rounding of the threshold; deepspike's own float64 run differs from its float32 run in the same 3 "
     "entries from the same step 12 (the tool sums the branches in another order)"),
    (("snntorch", "residual", "LIF", "zero"), "float32 rounding at the residual junction (same spike count, a few "
     "spikes a step apart from step 47 on): the tool evaluates the branches and the LIF update one step at a time "
     "in another order than deepspike's fused kernel; not confirmed in float64 (snnTorch's importer builds float32)"),
    (("snntorch", "recurrent", "LIF", "zero"), "snnTorch 1.0.0's importer rewires a recurrent layer: it wraps "
     "lif <-> w_rec in a subgraph whose input edge goes to w_rec, not to the LIF (import_nir._create_rnn_subgraph), "
     "and its node map has no NIRGraph entry, so nirtorch runs that subgraph as a plain graph instead of its RLeaky"),
    (("spyx", "recurrent", None, None), "Spyx 1.0.0's importer orders nodes by following the first edge out of each "
     "node (spyx.nir._order_edge_list): on the cycle lif -> rec -> lif it never reaches the output and grows its "
     "list without end (deploy.peers.spyx_tool refuses the graph first); it reads recurrent layers only as nested "
     "subgraphs"),
    (("sinabs", None, "LIF", None), "Sinabs' importer reads NIR LIF tau as a number of time steps "
     "(alpha = exp(-1/tau)) and drops r; a 3-D v_leak crashes its `any(node.v_leak)` check (sinabs/nir.py)"),
    (("sinabs", "pool", None, None), "Sinabs' importer has no AvgPool2d (SumPool2d only): the node and all after "
     "it are dropped by nirtorch.load, so the graph's output is the conv layer's"),
    (("sinabs", None, "IF", None), "Sinabs' importer maps NIR IF to IAFSqueeze with reset by subtraction "
     "(NIR says reset to v_reset) and a membrane floor min_v_mem = -v_threshold that NIR does not have"),
    (("snntorch", None, "IF", None), "snnTorch 1.0.0's importer asserts r == 1 for nir.IF (deepspike writes "
     "R = 1/dt: dv/dt = R I held over dt adds x_t per step) and maps IF to a Leaky with beta = 0, a neuron "
     "without memory (snnTorch#416; PR #452 maps it to beta = 1)"),
    (("norse", "pool", None, None), "Norse's importer has no AvgPool2d mapping: nirtorch leaves the node out and "
     "the graph's output is the conv layer's"),
    (("norse", None, "LIF", None), "Norse's importer ignores r (only warns) and its LIFBox integrates "
     "dv = dt/tau (v_leak - v + x): inputs are scaled by dt/tau = 1 - beta (norse/norse#411 on dt and tau)"),
    (("rockpool", None, "IF", None), "Rockpool's importer has no nir.IF mapping (NotImplementedError)"),
    (("rockpool", None, "LIF", None), "Rockpool 3.1.0's importer reads nir.LIF as if it had tau_mem "
     "(AttributeError: 'LIF' object has no attribute 'tau_mem'); it pins nir<=1.0.4"),
    (("rockpool", None, None, None), "Rockpool's importer has no Conv2d or Flatten mapping"),
    (("spyx", "conv", None, None), "Spyx's importer runs Conv2d on NHWC arrays but keeps NIR's NCHW input: "
     "JAX conv_general_dilated rejects the channel count"),
    (("spyx", "pool", None, None), "Spyx's importer runs Conv2d on NHWC arrays but keeps NIR's NCHW input: "
     "JAX conv_general_dilated rejects the channel count"),
    (("spyx", "residual", None, None), "Spyx's importer runs Conv2d on NHWC arrays but keeps NIR's NCHW input: "
     "JAX conv_general_dilated rejects the channel count"),
    (("spyx", None, None, None), "Spyx's IF/LIF test the threshold on the membrane BEFORE the step's input "
     "(spikes = H(V - th); V = beta V + x - spikes th: one step late), always reset by subtraction, drop r"),
    ((None, None, None, "subtract"), NIR_RESET),
]


IMPORT_ISSUES = {
    "snntorch": "snnTorch 1.0.0's export_to_nir fails NIR 1.0.8's type inference on Linear -> Leaky (ValueError: "
                "type mismatch: 0.output: [[32]] -> 1.input: []; snnTorch#367/#384 report its exporter out of "
                "date with nir)",
    "norse": "Norse exports tau = dt / tau_mem_inv (1e-5 s for tau_mem = 10 ms, dt = 1 ms) instead of "
             "1 / tau_mem_inv (norse/norse#411): tau < dt, which deepspike refuses",
    "sinabs": "Sinabs' IAF resets by subtraction but its export writes a plain NIR IF (reset to v_reset = 0): "
              "NIR cannot say 'subtract' (neuromorphs/NIR#137, #138), so the graph means another neuron",
    "spyx": "Spyx exports its LIF with r = beta instead of tau/dt (spyx/nir.py), so NIR's equation scales the "
            "input by beta (1 - beta), and its neuron tests the threshold before the step's input (one step late)",
    "rockpool": "Rockpool's graph declares its input [1, 64], not [64] (deepspike's from_nir then asks for "
                "[T, B, 1, 64]); read so, the spikes still differ: its LIFTorch (exported as CubaLIF) decays by "
                "exp(-dt/tau), not NIR's forward Euler, and emits up to max_spikes_per_dt = 2**16 spikes per step "
                "(437,245 spikes in 20,000 outputs here)",
}


FAITHFUL = ("onnxruntime",)
"""Consumers that read everything deepspike writes (the reset and firing rule in the metadata, Delay nodes): the
rules for any tool (``None`` in the tool's place), which NIR importers break, do not apply to them
(``onnxruntime`` runs deepspike's ONNX export); rules naming them do."""


def known_issue(tool: str, family: str, neuron: str, reset: str) -> str | None:
    """The first rule of ``_RULES`` matching ``(tool, family, neuron, reset)``, or None (module docstring;
    ``FAITHFUL``)."""
    key = (tool, family, neuron, reset)
    for pattern, reason in _RULES:
        if pattern[0] is None and tool in FAITHFUL:
            continue
        if all(p is None or p == k for p, k in zip(pattern, key)):
            return reason
    return None
