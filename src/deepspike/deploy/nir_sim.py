"""A small time-stepped simulator of NIR graphs (feed-forward, or recurrent through feedback edges) that reads the
graph and its nodes' metadata.

Time is a grid of steps ``k dt``. Every signal is a sequence ``x[k]`` of tensors ``[Tc, B, *shape]``; what one
entry means is the choice ``signals`` (the same for the graph's inputs, edges and neuron outputs, whose spikes are
``z[k] = 1``):

* ``"areas"`` (default): ``x[k]`` is the AREA delivered at ``k dt``; a spike is a Dirac of area 1. NIR's own,
  continuous-time reading; what the TTFS graphs of ``to_nir_ttfs`` mean (``ttfs_replay``).
* ``"currents"``: ``x[k]`` is a current HELD over the step ``[k dt, (k+1) dt)`` (area ``x[k] dt``); a spike is a
  unit current over one step. The discrete-time reading of deepspike's rate-coded files (``to_nir``, ``deepspike
  export``), snnTorch's and Norse's: feed such a file its encoded input ``[T, B, ...]`` (one step per entry).

Stateless nodes act on each step: ``Linear``, ``Affine`` and ``Conv2d`` (a bias is a constant current: it adds
``bias dt`` to an area, ``bias`` to a current), ``SumPool2d``, ``AvgPool2d``, ``Flatten``, ``Scale``, ``Threshold``
(``z[k] = 1`` where ``x[k] > threshold``, else 0), ``Delay`` (``y[k] = x[k - tau/dt]`` per element, zero before the
first step; a delay that is not a whole number of steps is a one-line ``ConfigError``: ``nir_delays.DelayLine``,
which keeps the last steps between ``run`` calls). Edges into a node are summed (NIR's rule); every ``Input``
node is fed by the caller. Neurons keep float64 state, parameters per element.

``IF`` (``V' = r I``), ``LIF`` (``tau V' = v_leak - V + r I``) and the non-spiking ``I`` / ``LI`` (the same without
a threshold; their output ``[Tc, B, ...]`` is ``h`` itself), per element, ``v = 0`` at the start. Step k, with
``leak(v) = v_leak + (v - v_leak) decay`` (IF, I: ``decay = 1``, ``v_leak = 0``)::

    "currents":  h = leak(v) + gain x[k],   z[k] = fire(h),   v = reset(h)
    "areas":     h = v + gain x[k],         z[k] = fire(h),   v = leak(reset(h))

    integration  decay (LIF, LI)   gain (LIF, LI), "currents"   gain (LIF, LI), "areas"   gain (IF, I)
    "exact"      exp(-dt/tau)      r (1 - exp(-dt/tau))         r / tau                   r dt ("currents"),
    "euler"      1 - dt/tau        r dt / tau                   r / tau                   r ("areas")

"exact" solves the ODE over the step (for the held current, or after the impulse); "euler" is forward Euler
(needs ``dt <= tau``). With "currents" the current and the leak act over the step and V is tested at its end
(the discrete-time convention: a spike of step k reaches the next layer in step k); with "areas" the impulse
arrives at ``k dt`` and V, which only impulses raise, is tested right after it, then leaks over the step.
``fire(h)``: ``h > v_threshold`` (NIR's rule), or ``h >= v_threshold`` where the node's metadata says
``fires: "v >= threshold"``. ``reset`` from the metadata: "zero" (default, NIR's) ``v_reset``, "subtract"
``h - v_threshold``, "none" ``h``. The metadata is read by ``deploy.neurons.firing_rules``, as ``from_nir`` reads it;
a quantised membrane's ``state_bits`` / ``state_low`` / ``state_high`` (``deploy.neurons.state_quant_of``) put ``h``
on its level before the test. A low-latency converted neuron's ``initial`` / ``weighted`` / ``signed`` (IF and LIF
nodes; ``deploy.neurons.low_latency_rules``) start ``v`` at ``initial v_threshold``, send ``z v_threshold`` and fire
``z = -1`` where ``h < 0`` while the net spike count is positive (reset by subtraction with ``z``).
deepspike's neuron (``h_t = k v_{t-1} + x_t``, spike when ``h_t >= th``, then reset; ``deploy.neurons``) is
"euler" with "currents" for its file's ``tau = dt / (1 - k)``, ``r = tau / dt`` (decay k, gain 1), step for step.

``CubaLIF`` (``tau_syn I' = -I + w_in S``, ``tau_mem V' = v_leak - V + r I``) with "euler" and "currents" is the
discrete-time neuron of deepspike's ``method.neuron=synaptic`` files: ``I = (1 - dt/tau_syn) I + (w_in dt/tau_syn)
x[k]``, ``h = leak(v) + (r dt/tau_mem) I`` (``decay = 1 - dt/tau_mem``), test, reset. With "exact" and "areas" (the
TTFS graphs; other pairs are refused) the step's input area ``a[k]`` enters as an impulse ``I += w_in a[k] /
tau_syn``; then the EXACT solution over ``dt``:
``I(dt) = I e^{-dt/tau_syn}``,
``V(dt) = v_leak + (V - v_leak) e^{-dt/tau_mem} + (r/tau_mem) I phi``,
``phi = int_0^dt e^{-(dt-u)/tau_mem} e^{-u/tau_syn} du = dt e^{-dt/tau_slow} (1 - e^{-|x|})/|x|``,
``x = dt (1/tau_mem - 1/tau_syn)``, ``tau_slow = max(tau_syn, tau_mem)`` (``e^{-dt/tau_mem} dt expm1(x)/x`` written
without overflow: no ``inf * 0`` for ``dt`` hundreds of times a time constant; the fraction is 1 for ``x = 0``).
If V passes the threshold (rule above) at the end of the step the neuron spikes at ``(k+1) dt`` (output ``z[k+1] =
1``) and resets: a crossing inside ``(k dt, (k+1) dt]`` is reported up to one ``dt`` late.

Which to use: ``GraphSimulator(graph, dt)`` ("exact", "areas") for continuous-time graphs such as the TTFS
exports; ``GraphSimulator.rate_coded(graph)`` ("euler", "currents", the file's ``dt``) for deepspike's rate-coded
files: fed the encoded input ``[T, B, ...]`` its output spikes are ``from_nir``'s (tested spike for spike; this
one computes in float64, ``from_nir`` in float32, so a membrane within rounding of a threshold could differ). The
default reading of a rate-coded file is NOT ``from_nir``'s: it reads every entry as an area (``1/dt`` times the
file's current) and decays LIF by ``exp(-dt/tau)`` instead of ``1 - dt/tau``.

A feedback edge (one that closes a cycle, ``graph_order.feedback_edges``: the recurrent weight of a recurrent layer,
``lif -> w_rec -> lif``) carries its source's value of the step before (before the first step: the source's output
for a zero input), the discrete-time reading of deepspike's and snnTorch's recurrent layers; its source must be a
``Linear``/``Affine`` node, and a graph with feedback is simulated one step at a time.

``GraphSimulator.run`` takes chunks of steps and keeps the neuron states between calls, so long runs
need memory for one chunk only. Sparse spike inputs to ``Linear``/``Affine`` add only the weight rows of
the inputs that spiked.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError
from deepspike.deploy.deps import check_graph, require_nir
from deepspike.deploy.graph_flatten import inline_subgraphs
from deepspike.deploy.graph_order import feedback_edges, predecessors, topological_order
from deepspike.deploy.neurons import _uniform, firing_rules, low_latency_rules, state_quant_of
from deepspike.deploy.nir_delays import DelayLine, delay_steps
from deepspike.deploy.nir_fields import check_nodes, node_padding
from deepspike.deploy.nir_import import _pair, _plain, _step
from deepspike.deploy.nir_shapes import check_shapes, shaped_graph

SUPPORTED = ("Input, Output, Linear, Affine, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, Threshold, Delay, IF, LIF, "
             "I, LI, CubaLIF")
INTEGRATIONS = ("exact", "euler")
"""IF/LIF/I/LI steps: the exact solution over ``dt``, or forward Euler (module docstring)."""
SIGNALS = ("areas", "currents")
"""What one entry ``x[k]`` of a signal is: the area delivered at ``k dt``, or a current held over the step."""


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _linear(x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """``x [R, ..., N] @ weight_t [N, M]`` -> ``[R, ..., M]`` (a Linear/Affine node acts on the last axis, as
    ``nir_shapes`` and ``from_nir`` read it: on ``[C, H, W]`` values it was a ValueError here); when under 5% of x
    is nonzero (spike trains) only the weight rows of the nonzero entries are summed: ``out[r] = sum_{n: x[r, n] !=
    0} x[r, n] weight_t[n]`` (embedding_bag) over the rows of ``x`` as ``[R', N]``."""
    lead, x = x.shape[:-1], x.reshape(-1, x.shape[-1])
    rows, cols = torch.nonzero(x, as_tuple=True)  # row-major order: each row's entries are contiguous
    if rows.numel() >= 0.05 * x.numel():
        return (x @ weight_t).reshape(*lead, -1)
    offsets = torch.searchsorted(rows, torch.arange(x.shape[0]))  # [R'] start of each row's entries
    return F.embedding_bag(cols, weight_t, offsets, mode="sum", per_sample_weights=x[rows, cols]).reshape(*lead, -1)


def _param(a) -> float | torch.Tensor:
    """A node parameter as a Python float when it is the same for every neuron (cheaper), else a tensor."""
    t = _t(a)
    return float(t.reshape(-1)[0]) if t.numel() and bool((t == t.reshape(-1)[0]).all()) else t


def _euler_decay(tau: torch.Tensor, dt: float, name: str) -> torch.Tensor:
    """Forward Euler's decay per step ``1 - dt/tau`` (elementwise), or a one-line ``ConfigError`` where ``dt`` exceeds
    the time constant ``name``."""
    if bool((tau < dt).any()):
        raise ConfigError(f"NIR simulation: forward Euler needs dt <= {name}, got dt = {dt} and {name} down to "
                          f"{float(tau.min())}")
    return 1.0 - dt / tau


class _Neuron:
    """State (float64, in place) of one spiking or integrating node: threshold, firing rule and reset."""

    def __init__(self, node, spiking: bool) -> None:
        self.v_th = _param(node.v_threshold) if spiking else None
        self.v_reset = _param(node.v_reset) if spiking else 0.0
        self.reset_mode, strict = firing_rules(node) if spiking else ("none", True)
        self.compare = torch.gt if strict else torch.ge
        self.state_quant = state_quant_of(node) if spiking else None  # a quantised membrane (metadata)
        if self.state_quant is not None:
            self.quant_threshold = _uniform("v_threshold", node.v_threshold)
        self.initial, self.weighted, self.signed = low_latency_rules(node) if spiking else (0.0, False, False)
        self.count: torch.Tensor | None = None  # signed spikes: the net spike count so far
        self.decay: float | torch.Tensor | None = None
        self.v_leak: float | torch.Tensor = 0.0
        self.state: tuple | None = None

    def _leak(self, v: torch.Tensor) -> None:
        """``v = v_leak + (v - v_leak) decay`` in place (nothing for IF/I)."""
        if self.decay is None:
            return
        if isinstance(self.v_leak, float) and self.v_leak == 0.0:
            v.mul_(self.decay)
        else:
            v.sub_(self.v_leak).mul_(self.decay).add_(self.v_leak)

    def _fire(self, v: torch.Tensor, fire: torch.Tensor) -> None:
        """A quantised membrane on its level (``neurons.state_quant``), ``fire = v > v_th`` (or ``>=``), then the
        reset of the spiking entries, in place."""
        if self.state_quant is not None:
            v.copy_(self.state_quant(v, self.quant_threshold))
        self.compare(v, self.v_th, out=fire)
        if self.reset_mode == "subtract":
            v.sub_(fire.to(v.dtype) * self.v_th)
        elif self.reset_mode == "zero" and isinstance(self.v_reset, float):
            v.masked_fill_(fire, self.v_reset)
        elif self.reset_mode == "zero":
            torch.where(fire, self.v_reset, v, out=v)

    def _fire_valued(self, v: torch.Tensor) -> torch.Tensor:
        """A low-latency converted neuron's step (``deploy.neurons.low_latency_rules``), ``v`` reset in place: the
        spikes ``z`` = 1 where ``v`` passes the threshold and, signed, -1 where ``v < 0`` while the net count is
        positive (the count then moves by ``z``); ``v -= z v_th`` (or ``v_reset`` where ``z != 0``); returned as
        ``z v_th`` (weighted) or ``z``."""
        if self.state_quant is not None:
            v.copy_(self.state_quant(v, self.quant_threshold))
        z = self.compare(v, self.v_th).to(v.dtype)
        if self.signed:
            z.sub_(((v < 0) & (self.count > 0)).to(v.dtype))
            self.count.add_(z)
        if self.reset_mode == "subtract":
            v.sub_(z * self.v_th)
        elif self.reset_mode == "zero":
            torch.where(z != 0, torch.as_tensor(self.v_reset, dtype=v.dtype), v, out=v)
        return z * self.v_th if self.weighted else z

    def refuse_low_latency(self) -> None:
        """A one-line ``ConfigError`` for the low-latency metadata on a node that does not run it (CubaLIF)."""
        if self.initial or self.weighted or self.signed:
            raise ConfigError("NIR simulation: the metadata initial / weighted / signed (low-latency converted "
                              "neurons) are read on IF and LIF nodes only, not on CubaLIF")

    def _start(self, like: torch.Tensor) -> torch.Tensor:
        """The membrane before the first step: 0, or ``initial * v_th`` (low-latency converted neurons)."""
        v = torch.zeros_like(like)
        if self.initial:
            v.add_(self.v_th * self.initial)
        if self.signed:
            self.count = torch.zeros_like(like)
        return v


class _Leaky(_Neuron):
    """IF / LIF / I / LI: ``h = leak(v) + gain x[k]``, test, reset (module docstring: ``integration``, ``signals``)."""

    def __init__(self, nir, node, dt: float, integration: str, signals: str) -> None:
        super().__init__(node, isinstance(node, nir.IF | nir.LIF))
        r = _t(node.r)
        self.leak_first = signals == "currents"  # a held current: leak and input over the step, test at its end
        if isinstance(node, nir.IF | nir.I):
            self.gain = _param(r * dt if self.leak_first else r)
            return
        tau = _t(node.tau)
        self.decay = _param(torch.exp(-dt / tau) if integration == "exact" else _euler_decay(tau, dt, "tau"))
        self.v_leak = _param(node.v_leak)
        if not self.leak_first:
            self.gain = _param(r / tau)
        else:
            self.gain = _param(-r * torch.expm1(-dt / tau) if integration == "exact" else r * dt / tau)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Inputs ``[Tc, B, ...]`` -> output spikes (IF/LIF) or membrane ``h`` (I/LI) ``[Tc, B, ...]``."""
        v = self.state if self.state is not None else self._start(x[0])
        out = torch.empty_like(x)
        fire = torch.empty(x.shape[1:], dtype=torch.bool)
        for k in range(x.shape[0]):
            if self.leak_first:
                self._leak(v)
            v.add_(x[k] * self.gain)
            if self.v_th is None:
                out[k].copy_(v)
            elif self.weighted or self.signed:
                out[k].copy_(self._fire_valued(v))
            else:
                self._fire(v, fire)
                out[k].copy_(fire)
            if not self.leak_first:
                self._leak(v)
        self.state = v
        return out


class _Cuba(_Neuron):
    """CubaLIF: input impulse into I, exact step of (I, V), test at the end of the step (module docstring)."""

    def __init__(self, nir, node, dt: float) -> None:
        super().__init__(node, True)
        self.refuse_low_latency()
        ts, tm = _t(node.tau_syn), _t(node.tau_mem)
        x = (dt * (1.0 / tm - 1.0 / ts)).abs()
        ratio = torch.where(x == 0, torch.ones_like(x), -torch.expm1(-x) / torch.where(x == 0, 1.0, x))  # in (0, 1]
        self.i_gain, self.i_decay = _param(_t(node.w_in) / ts), _param(torch.exp(-dt / ts))
        self.decay, self.v_leak = _param(torch.exp(-dt / tm)), _param(node.v_leak)
        self.v_from_i = _param(_t(node.r) / tm * torch.exp(-dt / torch.maximum(ts, tm)) * dt * ratio)

    def run(self, a: torch.Tensor) -> torch.Tensor:
        """Input areas ``[Tc, B, ...]`` -> output spikes ``[Tc, B, ...]`` (continuing the state)."""
        if self.state is None:
            zero = torch.zeros_like(a[0])
            self.state = (zero.clone(), zero.clone(), zero.clone())  # V, I, spike due at the next step
        v, i, due = self.state
        out = torch.empty_like(a)
        fire = torch.empty(a.shape[1:], dtype=torch.bool)
        for k in range(a.shape[0]):
            out[k].copy_(due)  # the crossing found at the end of the previous step
            i.add_(a[k] * self.i_gain)  # input impulse into the current
            self._leak(v)
            v.add_(i * self.v_from_i)
            i.mul_(self.i_decay)
            self._fire(v, fire)
            due.copy_(fire)
        self.state = (v, i, due)
        return out


class _CubaEuler(_Neuron):
    """CubaLIF read as a discrete-time neuron ("euler" with "currents"; ``deploy.neurons.synaptic_node``): per step
    ``i = (1 - dt/tau_syn) i + (w_in dt/tau_syn) x[k]``, ``h = leak(v) + (r dt/tau_mem) i`` with ``decay = 1 -
    dt/tau_mem``, then test and reset (the current of step k reaches the membrane in step k)."""

    def __init__(self, nir, node, dt: float) -> None:
        super().__init__(node, True)
        self.refuse_low_latency()
        ts, tm = _t(node.tau_syn), _t(node.tau_mem)
        self.i_decay, self.i_gain = _param(_euler_decay(ts, dt, "tau_syn")), _param(_t(node.w_in) * dt / ts)
        self.decay, self.v_leak = _param(_euler_decay(tm, dt, "tau_mem")), _param(node.v_leak)
        self.v_from_i = _param(_t(node.r) * dt / tm)

    def run(self, x: torch.Tensor) -> torch.Tensor:
        """Currents ``[Tc, B, ...]`` -> output spikes ``[Tc, B, ...]`` (continuing the state)."""
        if self.state is None:
            self.state = (torch.zeros_like(x[0]), torch.zeros_like(x[0]))  # V, I
        v, i = self.state
        out = torch.empty_like(x)
        fire = torch.empty(x.shape[1:], dtype=torch.bool)
        for k in range(x.shape[0]):
            i.mul_(self.i_decay).add_(x[k] * self.i_gain)
            self._leak(v)
            v.add_(i * self.v_from_i)
            self._fire(v, fire)
            out[k].copy_(fire)
        self.state = (v, i)
        return out


def _choice(name: str, value: str, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"NIR simulation: {name} must be {' or '.join(map(repr, valid))}, got {value!r}")
    return value


class GraphSimulator:
    """Time-stepped simulation of a NIR graph with step ``dt`` (module docstring).

    ``GraphSimulator(graph, dt, integration="exact", signals="areas")``: ``integration`` ("exact" | "euler") is
    how IF/LIF/I/LI nodes step, ``signals`` ("areas" | "currents") what an entry of an input, edge or output is;
    a bad value, or a ``CubaLIF`` node with other than ("exact", "areas") or ("euler", "currents"), is a one-line
    ``ConfigError``.
    ``GraphSimulator.rate_coded(graph)`` reads a deepspike rate-coded file as ``from_nir`` does.
    ``run({input_name: [Tc, B, *shape]})`` -> ``{output_name: [Tc, B, *shape]}`` for the next ``Tc`` steps;
    ``reset()`` clears every neuron (call it before a new batch).
    """

    def __init__(self, graph, dt: float, integration: str = "exact", signals: str = "areas") -> None:
        self.nir = require_nir()
        check_graph(self.nir, graph, "GraphSimulator")
        dt = _step(dt, graph, {}, "NIR simulation")  # a positive finite number, else one line
        self.integration = _choice("integration", integration, INTEGRATIONS)
        self.signals = _choice("signals", signals, SIGNALS)
        graph = inline_subgraphs(self.nir, graph)  # nested subgraphs (e.g. snnTorch's RLeaky) as flat nodes
        check_nodes(graph, "NIR simulation")  # broken fields and nodes that do not fit: one line, before any step
        self.shapes = check_shapes(self.nir, graph, "NIR simulation")  # per-sample shape of each node
        graph = shaped_graph(self.nir, graph, self.shapes)  # per-element parameters laid out as each node's shape
        cuba = [k for k, v in graph.nodes.items() if isinstance(v, self.nir.CubaLIF)]
        if cuba and (integration, signals) not in (("exact", "areas"), ("euler", "currents")):
            raise ConfigError(f"NIR simulation: CubaLIF node {cuba[0]!r} is simulated with integration='exact' and "
                              f"signals='areas', or 'euler' and 'currents', got {integration!r} and {signals!r}")
        self.graph, self.dt = graph, float(dt)
        self.bias_scale = self.dt if signals == "areas" else 1.0  # a bias current's contribution per step
        self.feedback = feedback_edges(graph)
        self.order = topological_order(graph, skip=self.feedback)
        self.preds = predecessors(graph, skip=self.feedback)
        self.fed_by: dict[str, list[str]] = {k: [] for k in graph.nodes}  # node -> the feedback edges' sources
        for src, dst in self.feedback:
            if not isinstance(graph.nodes[src], self.nir.Linear | self.nir.Affine):
                raise ConfigError(f"NIR simulation: the feedback edge {src!r} -> {dst!r} starts at a "
                                  f"{type(graph.nodes[src]).__name__} node; feedback is read through Linear/Affine "
                                  "nodes (a recurrent weight)")
            self.fed_by[dst].append(src)
        self.inputs = [k for k, v in graph.nodes.items() if isinstance(v, self.nir.Input)]
        self.outputs = [k for k, v in graph.nodes.items() if isinstance(v, self.nir.Output)]
        self._weights_t: dict[str, torch.Tensor] = {}
        self.reset()

    @classmethod
    def rate_coded(cls, graph, dt: float | None = None) -> GraphSimulator:
        """The simulator of a deepspike rate-coded graph (``to_nir``): ``integration="euler"``,
        ``signals="currents"``, ``dt`` = the argument, else the graph's (``nir_import.graph_dt``). Fed the
        net's encoded input ``[T, B, *input_shape]`` its output spikes are ``from_nir(graph)``'s."""
        check_graph(require_nir(), graph, "GraphSimulator.rate_coded")
        return cls(graph, _step(dt, graph, _plain(graph.metadata), "NIR simulation"), "euler", "currents")

    def reset(self) -> None:
        """Forget every neuron's state (V, I, pending spikes), the values fed back and the delay buffers."""
        nir = self.nir
        self.fed_back: dict[str, torch.Tensor] = {}  # a feedback edge's source -> its value of the step before
        self._batch: int | None = None  # the batch size of the states, set by the first run
        self.neurons: dict[str, _Neuron | DelayLine] = {}  # the nodes with state: neurons and delay lines
        for k, v in self.graph.nodes.items():
            if isinstance(v, nir.Delay):
                self.neurons[k] = DelayLine(delay_steps(v.delay, self.dt, f"NIR simulation: Delay node {k!r}"))
            elif isinstance(v, nir.CubaLIF):
                exact = self.integration == "exact"
                self.neurons[k] = _Cuba(nir, v, self.dt) if exact else _CubaEuler(nir, v, self.dt)
            elif isinstance(v, nir.IF | nir.LIF | nir.I | nir.LI):
                self.neurons[k] = _Leaky(nir, v, self.dt, self.integration, self.signals)

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Advance all nodes by ``Tc`` steps; inputs ``[Tc, B, *shape]`` per Input node (areas or currents per
        step, ``signals``)."""
        self._check_inputs(inputs)
        if not self.feedback:
            return self._run_steps(inputs)
        steps = [self._run_steps({k: v[t:t + 1] for k, v in inputs.items()})  # a cycle: one step at a time
                 for t in range(next(iter(inputs.values())).shape[0])]
        return {k: torch.cat([step[k] for step in steps]) for k in self.outputs}

    def _check_inputs(self, inputs: dict[str, torch.Tensor]) -> None:
        """A one-line ``ConfigError`` unless every Input node, and nothing else, gets a tensor ``[Tc, B, *its
        shape]``, all with the same ``Tc >= 1`` and ``B``, the ``B`` of the states kept since ``reset()`` (a wrong
        shape ran on: all-zero input of any width gave zeros, spikes gave an IndexError from inside torch; a name
        that is no Input node was ignored); a complex tensor is refused too (its imaginary part was dropped)."""
        missing, unknown = sorted(set(self.inputs) - set(inputs)), sorted(map(str, set(inputs) - set(self.inputs)))
        if missing:
            raise ConfigError(f"NIR simulation: no data for Input node(s) {missing}; inputs are {self.inputs}")
        if unknown:  # a misspelt name was ignored (the net ran without it)
            raise ConfigError(f"NIR simulation: data for {unknown}, which are not Input nodes; inputs are "
                              f"{self.inputs}")
        sizes = set()
        for name in self.inputs:
            x, shape = inputs[name], tuple(self.shapes[name])
            if not isinstance(x, torch.Tensor) or x.dim() < 2 or tuple(x.shape[2:]) != shape:
                got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ConfigError(f"NIR simulation: Input node {name!r} takes a tensor [Tc, B, "
                                  f"{', '.join(map(str, shape))}], got {got}")
            if x.is_complex():  # cast to float64, its imaginary part was dropped with a ComplexWarning
                raise ConfigError(f"NIR simulation: Input node {name!r} takes real numbers, got a {x.dtype} tensor")
            sizes.add(tuple(x.shape[:2]))
        steps, batch = min(sizes) if sizes else (1, self._batch)
        if len(sizes) > 1 or steps < 1 or self._batch not in (None, batch):
            kept = "" if self._batch is None else f"; the states kept since reset() are for B = {self._batch}"
            raise ConfigError(f"NIR simulation: the inputs' [Tc, B] must be one and the same with Tc >= 1, got "
                              f"{sorted(sizes)}{kept}")
        self._batch = batch

    def _run_steps(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every node on ``inputs [Tc, B, ...]`` in order; a feedback edge (then ``Tc = 1``) adds its source's value
        of the step before: before the first step, the source node's output for a zero input."""
        values: dict[str, torch.Tensor] = {}
        for name in self.order:
            node = self.graph.nodes[name]
            if name in self.inputs:
                values[name] = inputs[name].to(torch.float64)
                continue
            if not self.preds[name]:
                raise ConfigError(f"NIR simulation: node {name!r} has no incoming edge")
            x = values[self.preds[name][0]]
            for p in self.preds[name][1:]:
                x = x + values[p]
            for src in self.fed_by[name]:
                x = x + self._fed_back(src, x)
            values[name] = self._apply(name, node, x)
        for src, _ in self.feedback:
            self.fed_back[src] = values[src]
        return {k: values[k] for k in self.outputs}

    def _fed_back(self, src: str, x: torch.Tensor) -> torch.Tensor:
        """The value the Linear/Affine node ``src`` gave at the step before (``[1, B, ...]``, like ``x``)."""
        if src not in self.fed_back:
            features = np.shape(self.graph.nodes[src].weight)[1]
            self.fed_back[src] = self._apply(src, self.graph.nodes[src], x.new_zeros(1, x.shape[1], features))
        return self.fed_back[src]

    def _apply(self, name: str, node, x: torch.Tensor) -> torch.Tensor:
        nir = self.nir
        if isinstance(node, nir.Output):
            return x
        if name in self.neurons:
            return self.neurons[name].run(x)
        t, b = x.shape[:2]
        flat = x.reshape(t * b, *x.shape[2:])  # [Tc, B, ...] -> [Tc*B, ...]: stateless nodes act per step
        if isinstance(node, nir.Linear | nir.Affine):
            if name not in self._weights_t:
                self._weights_t[name] = _t(node.weight).t().contiguous()  # [M, N] -> [N, M], converted once
            y = _linear(flat, self._weights_t[name])
            if isinstance(node, nir.Affine):
                y = y + _t(node.bias) * self.bias_scale
        elif isinstance(node, nir.Conv2d):
            y = F.conv2d(flat, _t(node.weight), _t(node.bias) * self.bias_scale, _pair(node.stride),
                         node_padding(node, "NIR simulation", name), _pair(node.dilation), int(node.groups))
        elif isinstance(node, nir.SumPool2d | nir.AvgPool2d):
            k, s, p = _pair(node.kernel_size), _pair(node.stride), _pair(node.padding)
            y = F.avg_pool2d(flat, k, s, p, divisor_override=None if isinstance(node, nir.AvgPool2d) else 1)
        elif isinstance(node, nir.Flatten):
            start, end = int(node.start_dim), int(node.end_dim)
            y = torch.flatten(flat, start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)
        elif isinstance(node, nir.Scale):
            y = flat * _t(node.scale)
        elif isinstance(node, nir.Threshold):
            y = (flat > _t(node.threshold)).to(flat.dtype)
        else:
            raise ConfigError(f"NIR simulation: node {name!r} of type {type(node).__name__} is not supported "
                              f"(supported: {SUPPORTED})")
        return y.reshape(t, b, *y.shape[1:])  # [Tc*B, ...] -> [Tc, B, ...]
