"""A small time-stepped simulator of NIR graphs that reads nothing but the graph (feed-forward DAGs).

Time is a grid of steps ``k dt``; every signal is a sequence ``x[k]`` = the AREA of the signal in step k, so a
spike (a Dirac of area 1) at ``k dt`` is ``x[k] = 1``. Edges into a node are summed (NIR's rule); several
``Input`` nodes are fed by the caller. Stateless nodes act on each step (``Linear``, ``Affine`` and ``Conv2d``
add ``bias * dt``: a bias is a constant current; ``SumPool2d``, ``AvgPool2d``, ``Flatten``, ``Scale``,
``Threshold``: ``z[k] = 1`` where ``x[k] > threshold``, else 0).
Neurons (float64, parameters per element):

* ``CubaLIF`` (``tau_syn I' = -I + w_in S``, ``tau_mem V' = v_leak - V + r I``): the step's input area
  ``a[k]`` enters as an impulse ``I += w_in a[k] / tau_syn``; then the EXACT solution over ``dt``:
  ``I(dt) = I e^{-dt/tau_syn}``,
  ``V(dt) = v_leak + (V - v_leak) e^{-dt/tau_mem} + (r/tau_mem) I phi``,
  ``phi = int_0^dt e^{-(dt-u)/tau_mem} e^{-u/tau_syn} du = e^{-dt/tau_mem} dt expm1(x)/x``,
  ``x = dt (1/tau_mem - 1/tau_syn)`` (stable for ``tau_syn = tau_mem``). If ``V > v_threshold`` at the
  end of the step the neuron spikes at ``(k+1) dt`` (output ``z[k+1] = 1``) and ``V = v_reset``: a crossing
  inside ``(k dt, (k+1) dt]`` is reported up to one ``dt`` late.
* ``IF`` (``V' = r I``) and ``LIF`` (``tau V' = v_leak - V + r I``): the input impulse moves V by ``r a[k]``
  (``r a[k] / tau``), which is the only way V rises, so the threshold test right after it is exact: spike at
  ``k dt`` (``z[k]``), reset; then LIF decays exactly over ``dt``.

``GraphSimulator.run`` takes chunks of steps and keeps the neuron states between calls, so long runs
need memory for one chunk only. Sparse spike inputs to ``Linear``/``Affine`` add only the weight rows of
the inputs that spiked.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from deepspike.core.errors import ConfigError
from deepspike.deploy.deps import require_nir
from deepspike.deploy.graph_order import topological_order
from deepspike.deploy.nir_import import _pair

SUPPORTED = "Input, Output, Linear, Affine, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale, Threshold, IF, LIF, CubaLIF"


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _linear(x: torch.Tensor, weight_t: torch.Tensor) -> torch.Tensor:
    """``x [R, N] @ weight_t [N, M]``; when under 5% of x is nonzero (spike trains) only the weight rows of
    the nonzero entries are summed: ``out[r] = sum_{n: x[r, n] != 0} x[r, n] weight_t[n]`` (embedding_bag)."""
    rows, cols = torch.nonzero(x, as_tuple=True)  # row-major order: each row's entries are contiguous
    if rows.numel() >= 0.05 * x.numel():
        return x @ weight_t
    offsets = torch.searchsorted(rows, torch.arange(x.shape[0]))  # [R] start of each row's entries
    return F.embedding_bag(cols, weight_t, offsets, mode="sum", per_sample_weights=x[rows, cols])


def _param(a) -> float | torch.Tensor:
    """A node parameter as a Python float when it is the same for every neuron (cheaper), else a tensor."""
    t = _t(a)
    return float(t.reshape(-1)[0]) if t.numel() and bool((t == t.reshape(-1)[0]).all()) else t


class _Neuron:
    """State and exact per-step update of one IF/LIF/CubaLIF node (module docstring); in-place, float64."""

    def __init__(self, nir, node, dt: float) -> None:
        self.cuba = isinstance(node, nir.CubaLIF)
        self.v_th, self.v_reset = _param(node.v_threshold), _param(node.v_reset)
        self.state: tuple | None = None
        if isinstance(node, nir.IF):
            self.gain, self.decay, self.v_leak = _param(node.r), None, 0.0
        elif isinstance(node, nir.LIF):
            tau = _t(node.tau)
            self.gain, self.decay = _param(_t(node.r) / tau), _param(torch.exp(-dt / tau))
            self.v_leak = _param(node.v_leak)
        else:  # CubaLIF
            ts, tm = _t(node.tau_syn), _t(node.tau_mem)
            x = dt * (1.0 / tm - 1.0 / ts)
            ratio = torch.where(x == 0, torch.ones_like(x), torch.expm1(x) / torch.where(x == 0, 1.0, x))
            self.i_gain, self.i_decay = _param(_t(node.w_in) / ts), _param(torch.exp(-dt / ts))
            self.decay, self.v_leak = _param(torch.exp(-dt / tm)), _param(node.v_leak)
            self.v_from_i = _param(_t(node.r) / tm * torch.exp(-dt / tm) * dt * ratio)

    def _leak(self, v: torch.Tensor) -> None:
        """``v = v_leak + (v - v_leak) decay`` in place."""
        if isinstance(self.v_leak, float) and self.v_leak == 0.0:
            v.mul_(self.decay)
        else:
            v.sub_(self.v_leak).mul_(self.decay).add_(self.v_leak)

    def _reset(self, v: torch.Tensor, fire: torch.Tensor) -> None:
        if isinstance(self.v_reset, float):
            v.masked_fill_(fire, self.v_reset)
        else:
            torch.where(fire, self.v_reset, v, out=v)

    def run(self, a: torch.Tensor) -> torch.Tensor:
        """Input areas ``[Tc, B, ...]`` -> output spikes ``[Tc, B, ...]`` (continuing the state)."""
        if self.state is None:
            zero = torch.zeros_like(a[0])
            self.state = (zero.clone(), zero.clone(), zero.clone())  # V, I, spike due at the next step
        v, i, due = self.state
        out = torch.empty_like(a)
        fire = torch.empty(a.shape[1:], dtype=torch.bool)
        for k in range(a.shape[0]):
            if self.cuba:
                out[k].copy_(due)  # the crossing found at the end of the previous step
                i.add_(a[k] * self.i_gain)  # input impulse into the current
                self._leak(v)
                v.add_(i * self.v_from_i)
                i.mul_(self.i_decay)
                torch.gt(v, self.v_th, out=fire)
                due.copy_(fire)
            else:
                v.add_(a[k] * self.gain)  # the only way V rises: test right after the jump
                torch.gt(v, self.v_th, out=fire)
                out[k].copy_(fire)
            self._reset(v, fire)
            if not self.cuba and self.decay is not None:
                self._leak(v)
        self.state = (v, i, due)
        return out


class GraphSimulator:
    """Time-stepped simulation of a NIR graph with step ``dt`` (module docstring).

    ``run({input_name: [Tc, B, *shape]})`` -> ``{output_name: [Tc, B, *shape]}`` for the next ``Tc`` steps;
    ``reset()`` clears every neuron (call it before a new batch).
    """

    def __init__(self, graph, dt: float) -> None:
        self.nir = require_nir()
        if not (math.isfinite(dt) and dt > 0):
            raise ConfigError(f"NIR simulation: dt must be finite and > 0, got {dt}")
        self.graph, self.dt = graph, float(dt)
        self.order = topological_order(graph)
        self.preds: dict[str, list[str]] = {k: [] for k in graph.nodes}
        for src, dst in graph.edges:
            self.preds[dst].append(src)
        self.inputs = [k for k, v in graph.nodes.items() if isinstance(v, self.nir.Input)]
        self.outputs = [k for k, v in graph.nodes.items() if isinstance(v, self.nir.Output)]
        self._weights_t: dict[str, torch.Tensor] = {}
        self.reset()

    def reset(self) -> None:
        """Forget every neuron's state (V, I, pending spikes)."""
        nir = self.nir
        self.neurons = {k: _Neuron(nir, v, self.dt) for k, v in self.graph.nodes.items()
                        if isinstance(v, nir.IF | nir.LIF | nir.CubaLIF)}

    def run(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Advance all nodes by ``Tc`` steps; inputs ``[Tc, B, *shape]`` per Input node (areas per step)."""
        missing = sorted(set(self.inputs) - set(inputs))
        if missing:
            raise ConfigError(f"NIR simulation: no data for Input node(s) {missing}; inputs are {self.inputs}")
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
            values[name] = self._apply(name, node, x)
        return {k: values[k] for k in self.outputs}

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
                y = y + _t(node.bias) * self.dt
        elif isinstance(node, nir.Conv2d):
            if isinstance(node.padding, str):
                raise ConfigError(f"NIR simulation: string padding {node.padding!r} is not supported")
            y = F.conv2d(flat, _t(node.weight), _t(node.bias) * self.dt, _pair(node.stride), _pair(node.padding),
                         _pair(node.dilation), int(node.groups))
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
