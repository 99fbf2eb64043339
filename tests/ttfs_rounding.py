"""``last_input_rounding_case(kernel)``: two inputs whose exact spike time rounds onto the second input's in float32
(the TTFS backends keep it at the next float32 instead, ``causal_set.after_last_input``), shared by the CPU
backends' and the Triton backend's tests."""

import math

import torch


def last_input_rounding_case(kernel: str) -> tuple[list[float], list[float]]:
    """Times and weights of two inputs (t = 0 and t1) whose exact float64 spike lies less than half a float32 ulp
    after t1, so the formula's float32 value is t1: relpsp w0 t1 = 1 - 2^-24 < theta = 1 just before t1; exp w0 = 2
    with t1 the largest float32 below ln 2 whose float32 e^t1 is below 2 (V(t1) = 2 (1 - e^-t1) < 1)."""
    if kernel == "relpsp":
        return [0.0, 1.0], [1.0 - 2.0**-24, 1.0]
    t1 = torch.tensor(math.log(2.0), dtype=torch.float32)
    while float(torch.exp(t1.double()).float()) >= 2.0:
        t1 = torch.nextafter(t1, torch.tensor(0.0))
    return [0.0, float(t1)], [2.0, 10.0]
