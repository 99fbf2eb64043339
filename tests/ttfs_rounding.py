"""Rounding cases of the TTFS backends, shared by the CPU backends' and the Triton backend's tests:
``last_input_rounding_case(kernel)``, two inputs whose exact spike time rounds onto the second input's in float32
(the backends keep it at the next float instead, ``causal_set.after_last_input``), and ``TIE_CASES``, neurons whose
rounded membrane reaches theta partway through a group of equal input times though the whole group never fires
them (the backends check a tie group only after all of it)."""

import math

import torch


def last_input_rounding_case(kernel: str, dtype: torch.dtype = torch.float32) -> tuple[list[float], list[float]]:
    """Times and weights of two inputs (t = 0 and t1) whose exact float64 spike lies less than half a float32 ulp
    after t1, so the formula's float32 value is t1: relpsp w0 t1 = 1 - 2^-24 < theta = 1 just before t1; exp w0 = 2
    with t1 the largest float32 below ln 2 whose float32 e^t1 is below 2 (V(t1) = 2 (1 - e^-t1) < 1). ``dtype``
    float64: the same with float64's epsilon (relpsp 1 - 2^-53, the exact spike 2 / (2 - 2^-53) = 1 + 2^-54 + ...
    less than half an ulp after t1 = 1; exp t1 the largest float64 below ln 2 whose float64 e^t1 is below 2)."""
    if kernel == "relpsp":
        return [0.0, 1.0], [1.0 - (2.0**-24 if dtype == torch.float32 else 2.0**-53), 1.0]
    if dtype == torch.float64:
        t1 = math.log(2.0)
        while math.exp(t1) >= 2.0:
            t1 = math.nextafter(t1, 0.0)
        return [0.0, t1], [2.0, 10.0]
    t1 = torch.tensor(math.log(2.0), dtype=torch.float32)
    while float(torch.exp(t1.double()).float()) >= 2.0:
        t1 = torch.nextafter(t1, torch.tensor(0.0))
    return [0.0, float(t1)], [2.0, 10.0]


# (kernel, dtype, times, weights): no spike in the event-driven simulation (ttfs.simulate); checked per input of
# the tie group, the rounded a x - s crossed theta at t_g.
TIE_CASES = [
    ("relpsp", torch.float32, [0.0, 1.0, 1.0], [1 - 2**-24, 1.0, -3.0]),
    ("relpsp", torch.float64, [0.0, 1.0, 1.0], [1 - 2**-53, 1.0, -3.0]),
    ("exp", torch.float32, [0.0, 2.9482553005218506, 2.9482553005218506],
     [1.055332064628601, 2.7766075134277344, -3.7766075134277344]),
    ("exp", torch.float32, [0.0, 1.90461003780365, 1.90461003780365],
     [1.174923300743103, 1.87066650390625, -2.87066650390625]),
]
