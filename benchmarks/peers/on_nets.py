"""The Open Neuromorphic SNN-library benchmark net in six idioms: deepspike, snnTorch, SpikingJelly, Norse
(plain and ``torch.compile``) and Spyx (JAX).

The net (open-neuromorphic.org, "SNN library benchmarks", 2023/2024): one fully connected layer
``nn.Linear(N, N)`` (with bias) followed by N LIF neurons; input ``x [T, B, N]`` (time-major, ``randn``, no
gradient), T = 500, B = 16; the loss is the sum of all output spikes, so the backward pass computes the
weight and bias gradients only. The original runs each library with its own neuron defaults; here every
library runs the same LIF, as far as it allows::

    h_t = beta v_{t-1} + (W x_t + b),   s_t = H(h_t - th),   v_t = h_t - th s_t      (reset by subtraction)

with ``beta = 0.9``, ``th = 1`` and the SuperSpike / fast-sigmoid surrogate ``dH/du = 1 / (1 + k|u|)^2``,
``k = 2``, no detached reset. Where a library differs:

* snnTorch ``Leaky(reset_mechanism="subtract", reset_delay=False)`` fires on ``h_t - th s_{t-1}`` (it applies
  the previous step's reset once more before firing and removes it again after): the same spikes unless a
  post-reset membrane is still above threshold. Its idiom (snnTorch tutorials, the original benchmark) runs
  the Linear inside the time loop: T GEMMs of ``[B, N] x [N, N]``.
* SpikingJelly ``LIFNode(tau=10, decay_input=False, v_reset=None)``: ``h = v - v/tau + x`` (``0.9 v`` rounded
  differently); ``SoftSign(alpha=2)`` is ``alpha / (2 (1 + alpha|u|)^2)`` = the fast sigmoid with k = 2.
  ``layer.Linear`` in multi-step mode: one GEMM over ``[T*B, N]``.
* Norse ``LIFBoxCell`` integrates ``v + dt tau_inv (x - v)``: its defaults (``dt tau_inv = 0.1``) give
  ``beta = 0.9`` but scale the input by 0.1, so its Linear's weight and bias are multiplied by 10 (the same
  membrane, up to rounding); ``method="super"`` is the fast sigmoid, but Norse 1.1.0's SuperSpike ignores its
  ``alpha`` (``1 / (1 + |u|)^2``, k = 1: the same cost, another gradient); ``reset_subtract``; fires at
  ``h - th > 0``. One GEMM over ``[T*B, N]``, then the cell in a Python loop over T (Norse's idiom for cells);
  ``norse_compile`` compiles the cell step with ``torch.compile``.
* Spyx ``LIF(beta=0.9)`` fires on the previous step's membrane, ``s_t = H(V_{t-1} - th)`` (strictly above),
  and subtracts ``th s_t`` after the leak (so the spike train is shifted by one step and the reset is not
  decayed); ``axn.superspike(k=2)``. ``nnx.Linear`` over ``[T, B, N]`` (one GEMM), ``spyx.nn.run`` (a
  ``lax.scan``) over T; ``jax.jit``; the gradient is taken for the Linear only (its beta is a fixed float).
* deepspike: ``TimeDistributed(Linear)`` (one GEMM over ``[T*B, N]``) and ``LIF(..., inplace=True)``, the fused
  kernel over all T (it overwrites the Linear's output with the membrane it saves for backward). Below float32
  (``--dtype``) the Linear runs in that dtype and the neuron keeps a float32 state on chunks of its input, saves
  the input itself and returns spikes in the input's dtype (``neurons.fused_low_precision``).

Checked at N = 64, T = 50, B = 4: SpikingJelly's and Norse's spikes equal deepspike's exactly (SpikingJelly's weight
gradient too, to 2e-7), snnTorch's agree in 99.7 % of the entries, Spyx's (shifted one step) in 98 %.

All torch nets start from the same ``nn.Linear`` initialisation (``torch.manual_seed(0)`` before building);
Spyx copies those weights. ``build(framework, n)`` returns ``model(x [T, B, N]) -> spikes [T, B, N]``;
``spyx_functions`` returns the jitted Spyx step functions.
"""

from __future__ import annotations

import torch
from torch import nn

TORCH_FRAMEWORKS = ("deepspike", "snntorch", "spikingjelly", "norse", "norse_compile")
FRAMEWORKS = (*TORCH_FRAMEWORKS, "spyx")
BETA, THRESHOLD, SLOPE = 0.9, 1.0, 2.0
NORSE_INPUT_SCALE = 0.1  # dt * tau_mem_inv of Norse's default LIFBoxParameters (0.001 * 100)


class _DeepSpike(nn.Module):
    """deepspike idiom: ``TimeDistributed(nn.Linear)`` on ``[T*B, N]`` and the fused in-place LIF on ``[T, B, N]``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        from deepspike.layers.time_distributed import TimeDistributed
        from deepspike.neurons import LIF

        self.fc = TimeDistributed(nn.Linear(n, n))
        self.lif = LIF(decay=BETA, threshold=THRESHOLD, reset="subtract", surrogate="fast_sigmoid",
                       surrogate_args={"k": SLOPE}, inplace=True)

    def forward(self, x):
        y = self.fc(x)  # [T, B, N]
        return self.lif(y)  # bfloat16 / float16 y: float32 state, spikes in y's dtype (neurons.fused_low_precision)


class _SnnTorch(nn.Module):
    """snnTorch idiom: the Linear and ``snn.Leaky`` called step by step in a Python loop over T."""

    def __init__(self, n: int) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        self.fc = nn.Linear(n, n)
        self.lif = snn.Leaky(beta=BETA, threshold=THRESHOLD, spike_grad=surrogate.fast_sigmoid(slope=SLOPE),
                             reset_mechanism="subtract", reset_delay=False)

    def forward(self, x):
        mem = self.lif.init_leaky()
        out = []
        for x_t in x:  # [B, N]
            spk, mem = self.lif(self.fc(x_t), mem)
            out.append(spk)
        return torch.stack(out)


class _SpikingJelly(nn.Module):
    """SpikingJelly idiom: multi-step ``layer.Linear`` and ``neuron.LIFNode`` (torch backend), ``reset_net``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        self.body = nn.Sequential(
            layer.Linear(n, n, step_mode="m"),
            neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=THRESHOLD, v_reset=None,
                           surrogate_function=surrogate.SoftSign(alpha=SLOPE), detach_reset=False, step_mode="m"),
        )
        self._functional = functional

    def forward(self, x):
        self._functional.reset_net(self.body)
        return self.body(x)


class _Norse(nn.Module):
    """Norse idiom: the Linear on ``[T, B, N]``, then ``LIFBoxCell`` stepped over T; ``compile``: the cell
    step compiled with ``torch.compile``."""

    def __init__(self, n: int, compile: bool = False) -> None:
        super().__init__()
        from norse.torch import LIFBoxCell, LIFBoxParameters
        from norse.torch.functional.reset import reset_subtract

        self.fc = nn.Linear(n, n)
        with torch.no_grad():  # Norse scales its input by dt * tau_mem_inv: undo it in the weights
            self.fc.weight.div_(NORSE_INPUT_SCALE)
            self.fc.bias.div_(NORSE_INPUT_SCALE)
        p = LIFBoxParameters(v_th=torch.as_tensor(THRESHOLD), method="super", alpha=torch.as_tensor(SLOPE),
                             reset_method=reset_subtract)
        self.cell = LIFBoxCell(p)
        self.step = torch.compile(self.cell, dynamic=False) if compile else self.cell

    def forward(self, x):
        y = self.fc(x)  # [T, B, N]
        state, out = None, []
        for y_t in y:
            z, state = self.step(y_t, state)
            out.append(z)
        return torch.stack(out)


def build(framework: str, n: int) -> nn.Module:
    """The torch model ``x [T, B, N] -> spikes [T, B, N]`` of ``framework`` (one of ``TORCH_FRAMEWORKS``)."""
    if framework == "deepspike":
        return _DeepSpike(n)
    if framework == "snntorch":
        return _SnnTorch(n)
    if framework == "spikingjelly":
        return _SpikingJelly(n)
    if framework in ("norse", "norse_compile"):
        return _Norse(n, compile=framework == "norse_compile")
    raise ValueError(f"unknown torch framework {framework!r}; valid: {', '.join(TORCH_FRAMEWORKS)}")


def spyx_functions(weight, bias, dtype: str = "float32"):
    """Spyx's net with the Linear ``weight [N, N]`` (torch layout, out x in) and ``bias [N]`` (numpy arrays).

    Returns ``(params, train, infer)``: ``train(params, x [T, B, N]) -> gradients`` of the summed spikes with
    respect to the Linear's kernel and bias, ``infer(params, x) -> spikes [T, B, N]``; both ``jax.jit``-ed.
    """
    import jax
    import jax.numpy as jnp
    import spyx
    from flax import nnx

    n = weight.shape[0]
    jdt = jnp.dtype(dtype)
    fc = nnx.Linear(n, n, rngs=nnx.Rngs(0), param_dtype=jdt, dtype=jdt)
    fc.kernel[...] = jnp.asarray(weight.T, dtype=jdt)  # y = x @ kernel + bias
    fc.bias[...] = jnp.asarray(bias, dtype=jdt)
    lif = spyx.nn.LIF((n,), beta=BETA, threshold=THRESHOLD, activation=spyx.axn.superspike(k=SLOPE),
                      rngs=nnx.Rngs(0))
    graph, lif_state = nnx.split(lif)
    fc_graph, params = nnx.split(fc)

    def forward(params, x):
        y = nnx.merge(fc_graph, params)(x)  # [T, B, N]: one GEMM
        spikes, _ = spyx.nn.run(nnx.merge(graph, lif_state), y)
        return spikes

    train = jax.jit(jax.grad(lambda p, x: forward(p, x).astype(jnp.float32).sum()))
    return params, train, jax.jit(forward)
