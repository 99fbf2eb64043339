"""The nodes with state of one ONNX time step: neurons and delay lines, each state an input and an output.

A node's state enters the step graph as ``state.<node>.<var>`` and leaves it as ``next.<node>.<var>`` (both
``..._k`` where a node of the graph is named so); the caller feeds each step the states the step before
returned (zeros at the start). The arithmetic is :mod:`~deepspike.deploy.nir_sim`'s, read from the simulator's
own node objects, operation for operation, so a float64 graph reproduces the state updates of
:class:`~deepspike.deploy.nir_sim.GraphSimulator` bit for bit (given the same inputs). With
``leak(v) = v_leak + (v - v_leak) decay`` (``v decay`` when ``v_leak = 0``)::

    IF, LIF, I, LI, "currents":  h = leak(v) + x gain,  z = fire(h),  v' = reset(h)
    IF, LIF, I, LI, "areas":     h = v + x gain,        z = fire(h),  v' = leak(reset(h))
    CubaLIF, "euler":            i' = i i_decay + x i_gain,  h = leak(v) + i' v_from_i,  z = fire(h),  v' = reset(h)
    CubaLIF, "exact" ("areas"):  z = due,  i1 = i + a i_gain,  h = leak(v) + i1 v_from_i,  i' = i1 i_decay,
                                 due' = fire(h),  v' = reset(h)
    Delay (k_e whole steps, K = max k):  full = [history, x] ([B, K + 1, *shape]),
                                 y[b, e] = full[b, K - k_e, e],  history' = full[:, 1:]

``fire(h) = h > v_threshold`` (``>=`` where the node's metadata says so), a spike is 1.0; ``reset``: "zero"
``v_reset`` where it fired, "subtract" ``h - z v_threshold``, "none" ``h``. A low-latency converted neuron
(metadata ``initial``, ``weighted``, ``signed``; ``deploy.neurons.low_latency_rules``) starts at ``v_0 = initial
v_threshold`` through a state ``started`` (``v + v_0 (1 - started)``, so its states too start at zero), fires -1
where ``h < 0`` while its net count (a state) is positive, and outputs ``z v_threshold`` when weighted. I and LI
output ``h`` itself. A membrane quantised in the node's metadata (``state_bits``; ``neurons.state_quant``) is put on
its nearest level before the test, as ``StateQuant`` computes it: in float32, NaN kept, clamped to the levels'
range, the pair of levels around ``h`` found from ``floor((h - l_0) / step)`` in float64, the nearer one taken (a
tie goes to the lower).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from deepspike.deploy.nir_delays import DelayLine
from deepspike.deploy.nir_sim import _Cuba, _CubaEuler, _Leaky, _Neuron
from deepspike.deploy.onnx_ops import GraphBuilder, per_value


@dataclass(frozen=True)
class State:
    """One state tensor of a node: ``source`` (graph input), ``target`` (graph output), per-sample ``shape``."""

    source: str
    target: str
    shape: tuple[int, ...]


class StepStates:
    """The states of one step graph, in the order they were declared."""

    def __init__(self, b: GraphBuilder) -> None:
        self.b = b
        self.states: list[State] = []

    def declare(self, node: str, var: str, shape: tuple[int, ...]) -> str:
        """A new state of per-sample ``shape``: input ``state.<node>.<var>``, output ``next.<node>.<var>`` (both
        with the suffix ``_k`` where either name is taken, e.g. by a node named ``state.<node>.<var>``, so that the
        pair still differs only in its prefix); returns the input's name."""
        base, k = f"{node}.{var}", 1
        while not self.b.free(f"state.{base}", f"next.{base}"):
            base, k = f"{node}.{var}_{k}", k + 1
        source, target = self.b.name(f"state.{base}"), self.b.name(f"next.{base}")
        self.states.append(State(source, target, tuple(shape)))
        return source

    def close(self, source: str, value: str) -> None:
        """The step's new value of state ``source``: an Identity named as the state's output."""
        state = next(s for s in self.states if s.source == source)
        self.b.nodes.append(self.b.onnx.helper.make_node("Identity", [value], [state.target]))


def _leak(b: GraphBuilder, n: _Neuron, v: str, name: str) -> str:
    """``v_leak + (v - v_leak) decay`` (``v decay`` when ``v_leak = 0``; ``v`` itself for IF and I)."""
    if n.decay is None:
        return v
    decay = per_value(n.decay)
    if isinstance(n.v_leak, float) and n.v_leak == 0.0:
        return b.scaled(v, decay, f"{name}.leak")
    v_leak = b.const(f"{name}.v_leak", per_value(n.v_leak))
    return b.op("Add", [b.scaled(b.op("Sub", [v, v_leak]), decay, f"{name}.leak"), v_leak])


def _fire(b: GraphBuilder, states: StepStates, n: _Neuron, h: str, name: str,
          shape: tuple[int, ...]) -> tuple[str, str]:
    """``(out, v)``: the spikes ``fire(h)`` (0/1; signed: -1 too, with the net count a state; weighted: times the
    threshold) and the membrane after the reset."""
    if n.state_quant is not None:
        h = _nearest_level(b, n, h, name)
    v_th = b.const(f"{name}.v_threshold", per_value(n.v_th))
    fired = b.op("Greater" if n.compare is torch.gt else "GreaterOrEqual", [h, v_th], f"{name}.fired")
    z = b.as_float(fired, f"{name}.spikes")
    if n.signed:  # -1 where h < 0 while the net count is positive; the count moves by the spike
        count, zero = states.declare(name, "count", shape), b.const(f"{name}.zero", 0.0)
        negative = b.op("And", [b.op("Less", [h, zero]), b.op("Greater", [count, zero])], f"{name}.negative")
        z = b.op("Sub", [z, b.as_float(negative, f"{name}.negative_spikes")], f"{name}.signed_spikes")
        states.close(count, b.op("Add", [count, z], f"{name}.count"))
    out = b.op("Mul", [z, v_th], f"{name}.weighted") if n.weighted else z
    if n.reset_mode == "subtract":
        return out, b.op("Sub", [h, b.op("Mul", [z, v_th])], f"{name}.reset")
    if n.reset_mode == "zero":
        return out, b.op("Where", [fired, b.const(f"{name}.v_reset", per_value(n.v_reset)), h],
                         f"{name}.reset")
    return out, h


def _started(b: GraphBuilder, states: StepStates, n: _Neuron, v: str, name: str, shape: tuple[int, ...]) -> str:
    """``v + v_0 (1 - started)``: the membrane with its start value ``v_0 = initial v_th`` at the first step only
    (a state ``started``, 0 before the first step and 1 after it, keeps every state's start at zero)."""
    started = states.declare(name, "started", (1,) * len(shape))
    states.close(started, b.op("Add", [b.op("Mul", [started, b.const(f"{name}.none", 0.0)]),
                                       b.const(f"{name}.one", 1.0)], f"{name}.started"))
    first = b.op("Sub", [b.const(f"{name}.one", 1.0), started], f"{name}.first")
    v0 = b.const(f"{name}.v_initial", per_value(n.v_th) * n.initial)
    return b.op("Add", [v, b.op("Mul", [v0, first])], f"{name}.v_start")


def _nearest_level(b: GraphBuilder, n: _Neuron, h: str, name: str) -> str:
    """``h`` on the nearest level of the node's quantised membrane (module docstring), in ``h``'s dtype."""
    helper = b.onnx.helper
    f32, f64, i64 = (helper.np_dtype_to_tensor_dtype(np.dtype(t)) for t in ("float32", "float64", "int64"))
    levels = n.state_quant.levels(n.quant_threshold).numpy()  # [L] float32, ascending
    last = len(levels) - 1
    nan = b.op("IsNaN", [h], f"{name}.nan")
    h32 = b.op("Cast", [b.op("Where", [nan, b.const(f"{name}.zero", 0.0), h])], f"{name}.h32", to=f32)
    h32 = b.op("Clip", [h32, b.const(f"{name}.low", levels[0], np.float32),
                        b.const(f"{name}.high", levels[last], np.float32)], f"{name}.clamped")
    step = (float(levels[last]) - float(levels[0])) / last
    position = b.op("Div", [b.op("Sub", [b.op("Cast", [h32], to=f64), b.const(f"{name}.l0", float(levels[0]),
                                                                                np.float64)]),
                            b.const(f"{name}.step", step, np.float64)], f"{name}.position")
    below = b.op("Cast", [b.op("Clip", [b.op("Floor", [position]), b.const(f"{name}.first", 0.0, np.float64),
                                        b.const(f"{name}.last", last - 1.0, np.float64)])], f"{name}.below", to=i64)
    table = b.const(f"{name}.levels", levels, np.float32)
    lower = b.op("Gather", [table, below], f"{name}.lower")
    upper = b.op("Gather", [table, b.op("Add", [below, b.const(f"{name}.one", 1, np.int64)])], f"{name}.upper")
    up = b.op("Less", [b.op("Abs", [b.op("Sub", [upper, h32])]), b.op("Abs", [b.op("Sub", [h32, lower])])])
    nearest = b.op("Cast", [b.op("Where", [up, upper, lower])], f"{name}.level",
                   to=helper.np_dtype_to_tensor_dtype(b.dtype))
    return b.op("Where", [nan, h, nearest], f"{name}.quantised")


def leaky_step(b: GraphBuilder, states: StepStates, n: _Leaky, name: str, x: str, shape: tuple[int, ...]) -> str:
    """IF / LIF / I / LI (module docstring): spikes ``[B, *shape]``, or ``h`` for I and LI."""
    v = v_state = states.declare(name, "v", shape)
    if n.initial:
        v = _started(b, states, n, v, name, shape)
    if n.leak_first:
        v = _leak(b, n, v, name)
    h = b.op("Add", [v, b.scaled(x, per_value(n.gain), f"{name}.input")], f"{name}.h")
    out, v_next = (h, h) if n.v_th is None else _fire(b, states, n, h, name, shape)
    states.close(v_state, v_next if n.leak_first else _leak(b, n, v_next, name))
    return out


def cuba_step(b: GraphBuilder, states: StepStates, n: _Cuba | _CubaEuler, name: str, x: str,
              shape: tuple[int, ...]) -> str:
    """CubaLIF, forward Euler on held currents or exact on impulses (module docstring): spikes ``[B, *shape]``."""
    v, i = states.declare(name, "v", shape), states.declare(name, "i", shape)
    exact = isinstance(n, _Cuba)
    due = states.declare(name, "due", shape) if exact else None
    i_in = b.scaled(x, per_value(n.i_gain), f"{name}.i_in")
    i_now = b.op("Add", [i if exact else b.scaled(i, per_value(n.i_decay), f"{name}.i_leak"), i_in], f"{name}.i")
    h = b.op("Add", [_leak(b, n, v, name), b.scaled(i_now, per_value(n.v_from_i), f"{name}.v_in")],
             f"{name}.h")
    z, v_next = _fire(b, states, n, h, name, shape)
    states.close(v, v_next)
    states.close(i, b.scaled(i_now, per_value(n.i_decay), f"{name}.i_leak") if exact else i_now)
    if due is None:
        return z
    states.close(due, z)
    return b.op("Identity", [due], f"{name}.spikes")


def delay_step(b: GraphBuilder, states: StepStates, line: DelayLine, name: str, x: str,
               shape: tuple[int, ...]) -> str:
    """A Delay node (module docstring): ``x`` of ``k_e`` steps before, per element (zeros before the first)."""
    if line.depth == 0:
        return x
    k = line.depth
    history = states.declare(name, "history", (k, *shape))
    full = b.op("Concat", [history, b.op("Unsqueeze", [x, b.const(f"{name}.axis", [1], np.int64)])], f"{name}.full",
                axis=1)
    steps = np.broadcast_to(per_value(line.steps), shape)
    pick = (np.arange(k + 1).reshape(-1, *[1] * len(shape)) == (k - steps)[None]).astype(np.float64)
    y = b.op("ReduceSum", [b.op("Mul", [full, b.const(f"{name}.pick", pick)]),
                           b.const(f"{name}.axes", [1], np.int64)], name, keepdims=0)
    tail = b.op("Slice", [full, *(b.const(f"{name}.{key}", [v], np.int64) for key, v in
                                  (("start", 1), ("end", k + 1), ("slice_axis", 1)))], f"{name}.tail")
    states.close(history, tail)
    return y
