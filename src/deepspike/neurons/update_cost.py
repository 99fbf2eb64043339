"""What a neuron's own state update costs per time step, as ``deepspike analyze`` prices it.

The synaptic operations (a spike adding its weights to the currents it reaches) are counted by the activity recorder
from the actual events; the arithmetic inside each neuron runs at every step whether it spikes or not. Every rate-coded
neuron class answers ``update_ops() -> (MACs, ACs)``, per neuron and time step, counted from its own equation:

- a product accumulated into a sum (``k v + x``, ``sum_k W[t, k] X[k]``) is a MAC per product;
- an addition or subtraction on its own, and the test against the threshold, are an AC each;
- a decay of 1 is no product (``v + x``: an AC), a decay of 0 no term (nothing is kept);
- the reset (a select, or one subtraction on a spike) and the surrogate gradient (training only) are left out.

So ``h_t = k v_{t-1} + x_t`` with ``s_t = H(h_t - th)`` costs (1 MAC, 1 AC) with a leak, (0, 2) for an IF neuron,
(0, 5) for a converted net's signed IF neuron (``neurons.chunked_if``: also ``h_t < 0``, ``n > 0`` and ``n + s_t``).
A neuron whose input gain ``c x_t`` runs in a module of its own just before it (an imported NIR node's ``r dt / tau``,
``deploy.nir_import``) says so with ``input_gain_ops = (1, 0)``: one product per neuron and step, which PLIF's
``h_t = k v_{t-1} + c x_t`` counts in its own ``update_ops``; ``neuron_update_ops`` adds the two.

A neuron reading a window of its ``k`` latest inputs (``SlidingPSN``, a trained ``MaskedPSN``) has fewer at the first
steps of a pass: step ``t`` has ``min(t + 1, k)`` real inputs, the ones before step 0 being no input (as padding in
``models.costs``). Such a neuron says so with ``update_ops_by_step = True`` and answers ``update_ops(t0, steps)``, the
mean over steps ``t0 .. t0 + steps - 1`` of the pass (``window_taps``), which the activity recorder asks for each call.
"""

from __future__ import annotations

Ops = tuple[int, int]  # (MACs, ACs) per neuron and time step


def kept_sum_ops(decay: float) -> Ops:
    """``y_t = k y_{t-1} + x_t``: (1, 0) for ``0 < k`` with ``k != 1``, (0, 1) for ``k = 1`` (an addition), (0, 0) for
    ``k = 0`` (``y_t = x_t``)."""
    if decay == 0.0:
        return (0, 0)
    return (0, 1) if decay == 1.0 else (1, 0)


def membrane_ops(decay: float) -> Ops:
    """``h_t = k v_{t-1} + x_t`` and the threshold test ``h_t >= th``: ``kept_sum_ops(k)`` plus one AC."""
    return plus(kept_sum_ops(decay), (0, 1))


def window_taps(order: int, t0: int, steps: int) -> float:
    """The mean of ``min(t + 1, order)`` (the real inputs of a window of the ``order`` latest ones at step ``t``) over
    steps ``t0 .. t0 + steps - 1``; 0 for no steps. E.g. order 3 over steps 0..3: (1 + 2 + 3 + 3) / 4 = 2.25."""
    def total(n: int) -> int:  # sum of min(t + 1, order) over t < n
        m = min(n, order)
        return m * (m + 1) // 2 + (n - m) * order

    return (total(t0 + steps) - total(t0)) / steps if steps > 0 else 0.0


def plus(*ops: Ops) -> Ops:
    """The sum of several ``(MACs, ACs)``."""
    return (sum(o[0] for o in ops), sum(o[1] for o in ops))


def neuron_update_ops(module, t0: int = 0, steps: int | None = None) -> tuple[float, float] | None:
    """What a rate-coded neuron ``module`` costs per neuron and step: ``update_ops()`` plus its ``input_gain_ops``
    (module docstring; (0, 0) when absent), None when it has no ``update_ops`` (not priced). With ``steps``, the mean
    over steps ``t0 .. t0 + steps - 1`` of a pass for a neuron whose cost depends on the step (``update_ops_by_step``).
    """
    if not hasattr(module, "update_ops"):
        return None
    by_step = steps is not None and getattr(module, "update_ops_by_step", False)
    own = module.update_ops(t0, steps) if by_step else module.update_ops()
    return plus(own, getattr(module, "input_gain_ops", (0, 0)))
