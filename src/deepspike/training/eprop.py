"""E-prop's eligibility traces for the synapses onto adaptive-threshold neurons (``train.temporal_grad=eprop``).

E-prop (Bellec et al., "A solution to the learning dilemma for recurrent networks of spiking neurons", Nat.
Commun. 11:3625, 2020) trains online: the weight gradient of synapse ``i -> j`` is ``sum_t L_j^t e_ji^t``, the
learning signal ``L_j^t = dE_t/ds_j^t`` of step t (through the readout, not through time) times the synapse's
eligibility trace ``e_ji^t = ds_j^t/dW_ji`` taken through the neuron's own state only. The reset is not
differentiated (as in the paper, whose neurons reset by subtraction; a reset to zero then keeps the inputs from
before it in the traces, as OTTT's does). In our neurons (``neurons.adaptive``: ``h_t = k v_{t-1} + x_t``,
``theta_t = th + beta a_{t-1}``, ``a_t = rho a_{t-1} + s_t``; ``x_t = W p_t``, ``p_t`` the presynaptic values)::

    eps_t  = k eps_{t-1} + p_t                          the presynaptic trace dh_t/dW (``layers.trace_gradient``)
    e_t    = psi_t (eps_t - beta epsa_{t-1})            psi_t = sigma'(h_t - theta_t), the surrogate slope
    epsa_t = rho epsa_{t-1} + e_t                       da_t/dW, one value per synapse and sample

which is the paper's ALIF eligibility vector (its ``epsilon^a_{t+1} = psi_t epsilon^v_t + (rho - psi_t beta)
epsilon^a_t``) in our step indexing. The step's backward, taken through the spatial path with the state carried
detached (``training.temporal_grad``), gives the neuron's input gradient ``g_t = L_t psi_t``, so::

    dE/dW = sum_t g_t^T eps_t  -  beta sum_t sum_b g_{t,b}^T epsa_{t-1,b}

The first term is the trace gradient every synaptic layer takes in the online modes (the layers after the last
spiking neuron, which feed the readout, take the step's own input: the readout of a step keeps no state, so
their synapses' eligibility is their input; with the leaky readout of ``train.eprop_readout_decay = kappa``,
``training.temporal_grad``, the trace of their input with decay kappa); this module adds the second for the layers
that feed an
``AdaptiveLIF`` directly (a ``TimeDistributed`` linear layer right before it, or a recurrent layer's feed-forward
and feedback weights), on forward pre-hooks of the neuron: at step t it reads ``psi_t`` from the neuron
(``AdaptiveLIF.slope``) and ``eps_t`` from the layers (their carried traces), hooks the correction onto the
gradient arriving at the neuron's input, and folds ``(psi_t, eps_t)`` into ``epsa`` in place once the correction
has read ``epsa_{t-1}``: in the same numba pass on the CPU (``training.eprop_kernels``), else at the next step. A
bias is a synapse from a constant input 1 (trace ``c_t``), so its ``epsa`` is the last column of the layer's. For
a LIF neuron (``beta = 0``) nothing is added: e-prop is then the trace gradient alone.

Memory: ``epsa`` holds ``M x B x (N + 1)`` values per layer onto adaptive neurons (M neurons, N inputs; B times
the P positions of a position-wise layer on ``[B, P, N]``), the same for every T.

Leaky readout (``kappa > 0``): every synapse's eligibility ``e_t`` (``psi_t eps_t`` for an IF / LIF neuron, whose
layer is then paired here too) is low-pass filtered, ``ebar_t = kappa ebar_{t-1} + e_t`` (``M x B x (N + 1)`` more
values per layer), and the gradient is ``sum_t L_t^T ebar_t = sum_t g_t^T eps_t - beta (...) + kappa sum_t
L_t^T ebar_{t-1}``: the last term is hooked on the gradient ``L_t`` arriving at the neuron's spikes (torch steps
only; the numba pass is for ``kappa = 0``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.core.precision import LOW_PRECISION
from deepspike.core.threads import run_numba_kernel
from deepspike.layers.recurrent import RecurrentSpiking
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.layers.trace_gradient import TRACE_LAYERS
from deepspike.neurons.adaptive import AdaptiveLIF
from deepspike.neurons.fused import fused_available, load_once
from deepspike.neurons.params import NeuronParams


def _linear(module: nn.Module) -> bool:
    """A ``TimeDistributed`` linear layer (its weight parametrized too: ``analyze --qat``'s fake quantization
    makes the layer a subclass of ``nn.Linear``)."""
    return isinstance(module, TimeDistributed) and isinstance(module.module, nn.Linear)


@dataclass
class AdaptiveSynapses:
    """The ``TimeDistributed`` linear layers feeding one adaptive neuron, and one batch's ``epsa`` per layer
    (``[M, B, N + 1]`` with a bias, ``[M, B, N]`` without, ``B`` the samples times the positions of a position-wise
    layer on ``[B, P, N]``; None before the first step), the correction each
    layer's ``[weight | bias]`` gradient has gathered (``[M, N (+ 1)]``), and the last step's ``(psi_t, eps_t)``
    not yet folded into ``epsa`` (the step's backward still reads ``epsa_{t-1}``). With the readout's leak
    ``kappa > 0`` the neuron may be an IF / LIF one too (no ``epsa`` then), and ``filtered`` holds each layer's
    ``ebar`` (same shape; module docstring)."""

    neuron: nn.Module
    layers: tuple[TimeDistributed, ...]
    kappa: float = 0.0
    eligibility: list[torch.Tensor | None] = field(default_factory=list)
    correction: list[torch.Tensor | None] = field(default_factory=list)
    pending: tuple[torch.Tensor, list[torch.Tensor]] | None = None
    filtered: list[torch.Tensor | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.eligibility = [None] * len(self.layers)
        self.correction = [None] * len(self.layers)
        self.filtered = [None] * len(self.layers)

    def before_step(self, module: nn.Module, args: tuple) -> None:
        """Forward pre-hook of the neuron, called with one step ``x [1, B, M]`` (module docstring): fold the
        previous step into ``epsa`` (its backward is done), hook this step's correction, keep this step's
        ``(psi_t, eps_t)`` for the next."""
        x = args[0]
        if x.shape[0] != 1:
            raise RuntimeError(f"e-prop steps a neuron one time step at a time, got {x.shape[0]} steps")
        if any(m.module.out_features != x.shape[-1] for m in self.layers):
            kind = "an adaptive neuron" if isinstance(self.neuron, AdaptiveLIF) else "a neuron"
            raise ConfigError(f"train.temporal_grad=eprop paired {kind} of {x.shape[-1]} inputs with a linear layer "
                              "of another size: the net does not run its layers in the order it holds them; use "
                              "train.temporal_grad=bptt")
        if self.pending is not None:
            self._advance(*self.pending)
        if x.requires_grad and any(e is not None for e in self.eligibility):
            x.register_hook(self._correct)
        psi = _slope(self.neuron, x[0]).flatten(0, -2)  # [B (x positions), M]
        self.pending = (psi, [_presynaptic(m) for m in self.layers])

    def after_step(self, module: nn.Module, args: tuple, out: torch.Tensor) -> None:
        """Forward hook of the neuron (``kappa > 0``): hook the leaky readout's term on the step's spikes."""
        if self.kappa and out.requires_grad and any(e is not None for e in self.filtered):
            out.register_hook(self._signal)

    def _signal(self, s_grad: torch.Tensor) -> None:
        """``kappa sum_b L_{t,b}^T ebar_{t-1,b}`` into each layer's correction, ``L_t = s_grad [1, B, M]`` the
        learning signal at the step's spikes (module docstring, leaky readout)."""
        for i, e in enumerate(self.filtered):
            if e is not None:
                signal = s_grad[0].flatten(0, -2).T.to(e.dtype)[:, None, :]  # [M, 1, B (x positions)]
                c = torch.bmm(signal, e)[:, 0] * self.kappa  # [M, N (+ 1)]
                self.correction[i] = c if self.correction[i] is None else self.correction[i] + c

    def _correct(self, g: torch.Tensor) -> None:
        """``-beta sum_b g_b^T epsa_{t-1,b}`` into each layer's correction; ``g [1, B, M]`` (``[1, B, P, M]``
        position-wise, each position's neurons their own): one batched product over the neurons,
        ``[M, 1, B] @ [M, B, N (+ 1)]``; on the CPU with numba, fused with the step's ``_advance`` into one pass
        over ``epsa`` (``training.eprop_kernels``)."""
        if self._correct_and_advance(g[0].flatten(0, -2)):
            return
        for i, e in enumerate(self.eligibility):
            if e is not None:
                g_t = g[0].flatten(0, -2).T.to(e.dtype)[:, None, :]  # [M, 1, B (x positions)]
                c = torch.bmm(g_t, e)[:, 0] * -self.neuron.adapt_scale  # [M, N (+ 1)]
                self.correction[i] = c if self.correction[i] is None else self.correction[i] + c

    def _correct_and_advance(self, g: torch.Tensor) -> bool:
        """``_correct`` and the pending ``_advance`` of this step in one numba pass per layer, when every tensor is
        a dense CPU float32 / float64 one of ``epsa``'s dtype and numba is on; returns whether it ran."""
        if self.pending is None or self.kappa or not _kernel_runs(self.eligibility):
            return False
        psi, presynaptic = self.pending
        kernels, dtype = load_once(_KERNELS, _load_kernels), self.eligibility[0].dtype
        g, psi = g.detach().to(dtype).contiguous().numpy(), psi.to(dtype).contiguous().numpy()
        for i, (e, pre) in enumerate(zip(self.eligibility, presynaptic, strict=True)):
            if self.correction[i] is None:
                self.correction[i] = e.new_zeros(e.shape[0], e.shape[2])
            run_numba_kernel(kernels.correct_and_advance, e.numpy(), g, psi, pre.to(dtype).contiguous().numpy(),
                             self.neuron.adapt_decay, self.neuron.adapt_scale, self.correction[i].numpy())
        self.pending = None  # folded in: the next step starts from epsa_t
        return True

    def _advance(self, psi: torch.Tensor, presynaptic: list[torch.Tensor]) -> None:
        """``epsa_t = (rho - beta psi_t) epsa_{t-1} + psi_t eps_t`` for each layer, in place (two passes), held
        neuron-major ``[M, B, N (+ 1)]`` so that ``_correct`` reads it without a copy; with ``kappa > 0`` first
        ``ebar_t = kappa ebar_{t-1} + psi_t (eps_t - beta epsa_{t-1})`` (no ``epsa`` for a LIF neuron)."""
        adaptive = isinstance(self.neuron, AdaptiveLIF)
        rho, beta = (self.neuron.adapt_decay, self.neuron.adapt_scale) if adaptive else (0.0, 0.0)
        for i, pre in enumerate(presynaptic):  # [B, N (+ 1)]
            slope = psi.T.to(pre.dtype).contiguous()[:, :, None]  # [M, B, 1], neuron-major in memory
            e = self.eligibility[i]
            if self.kappa:
                self._filter(i, slope, pre, e, beta)
            if not adaptive:
                continue
            if e is None:
                self.eligibility[i] = slope * pre[None]  # contiguous [M, B, N (+ 1)], as slope is
            else:
                e.mul_(rho - beta * slope).addcmul_(slope, pre[None])

    def _filter(self, i: int, slope: torch.Tensor, pre: torch.Tensor, e: torch.Tensor | None, beta: float) -> None:
        """``ebar_t = kappa ebar_{t-1} + e_t`` of layer ``i``, ``e_t = psi_t (eps_t - beta epsa_{t-1})`` (``slope``
        ``psi_t [M, B, 1]``, ``pre`` ``eps_t [B, N (+ 1)]``, ``e`` ``epsa_{t-1}`` or None), in place."""
        step = slope * pre[None] if e is None else slope * (pre[None] - beta * e)  # [M, B, N (+ 1)]
        f = self.filtered[i]
        self.filtered[i] = step if f is None else f.mul_(self.kappa).add_(step)

    def add_corrections(self) -> None:
        """Backpropagate the gathered corrections from the layers' ``weight`` and ``bias`` (after the batch's last
        backward): a parameter's ``.grad`` takes them, a parametrized weight's (fake quantization) passes them to
        the parameter it is computed from, as the trace gradient of ``layers.trace_gradient`` does."""
        for layer, c in zip(self.layers, self.correction, strict=True):
            if c is None:
                continue
            weight, bias = layer.module.weight, layer.module.bias
            n = weight.shape[1]
            pairs = [(weight, c[:, :n])] + ([(bias, c[:, n])] if bias is not None else [])
            pairs = [(p, g) for p, g in pairs if p.requires_grad]
            if pairs:
                torch.autograd.backward([p for p, _ in pairs], [g.to(p.dtype) for p, g in pairs])


_KERNELS: list = []  # [eprop_kernels] once imported, [None] without numba


def _load_kernels():
    from deepspike.training import eprop_kernels

    return eprop_kernels


def _kernel_runs(eligibility: list[torch.Tensor | None]) -> bool:
    """Whether ``training.eprop_kernels`` takes these ``epsa``: all present, contiguous CPU float32 / float64 of
    one dtype, the fused kernels switched on (``DEEPSPIKE_FUSED``) and numba importable."""
    if any(e is None for e in eligibility):
        return False
    dtypes = {e.dtype for e in eligibility}
    dense = all(e.device.type == "cpu" and e.is_contiguous() for e in eligibility)
    return (dense and len(dtypes) == 1 and dtypes <= {torch.float32, torch.float64} and fused_available()
            and load_once(_KERNELS, _load_kernels) is not None)


def _slope(neuron: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``psi_t = sigma'(h_t - theta_t)`` of the step with input ``x [B, ...]`` from the neuron's carried state,
    detached: an adaptive LIF's own ``slope``, else (``params``: IF, LIF) ``h_t = k v_{t-1} + x_t``, ``theta_t = th``
    (float32 for a low-precision ``x``)."""
    if isinstance(neuron, AdaptiveLIF):
        return neuron.slope(x, neuron.carried())
    p, state = neuron.params, neuron.carried()
    x = x.detach().float() if x.dtype in LOW_PRECISION else x.detach()
    h = x if state is None else p.decay * neuron.membrane(state).detach() + x
    return p.spike_fn.derivative(h - p.threshold)


def _presynaptic(layer: TimeDistributed) -> torch.Tensor:
    """The layer's trace ``eps_t [B, N]`` of this step (``[B * P, N]`` for a position-wise layer on ``[B, P, N]``),
    with the bias's ``c_t`` as a last column when it has a bias, in the weight's dtype."""
    carried = layer.presynaptic_trace()
    if carried is None:
        raise RuntimeError("e-prop reads a synaptic layer's presynaptic trace before the layer ran with traces")
    trace, c = carried
    weight = layer.module.weight
    trace = trace.to(weight.dtype).flatten(0, -2)
    if layer.module.bias is None:
        return trace
    return torch.cat([trace, torch.full((len(trace), 1), c, dtype=weight.dtype, device=trace.device)], dim=1)


def adaptive_synapses(net: nn.Module, kappa: float = 0.0) -> list[AdaptiveSynapses]:
    """Every adaptive neuron of ``net`` (with a leaky readout, ``kappa > 0``: every spiking neuron, IF and LIF ones
    included, whose eligibility the readout filters) with the linear layers that feed it (module docstring): a
    recurrent layer's feed-forward and feedback weights, or the ``TimeDistributed`` linear layer that comes right
    before the neuron in the net's layers in order (``_in_order``; a spike-rate readout's neuron included). A one-line
    ``ConfigError`` for one fed otherwise (a convolution, a normalisation in between), whose eligibility per
    synapse this module does not keep, and for a linear layer that reads another layer with parameters and no
    spiking neuron between (``Linear -> Linear -> alif``): the first layer's adaptation eligibility would be
    missing from its gradient."""
    found, before, weighted = [], None, 0  # weighted: layers with parameters since the last spiking neuron
    for m in _in_order(net):
        if isinstance(m, RecurrentSpiking) and _kept(m.neuron, kappa) and _linear(m.feedforward):
            found.extend([AdaptiveSynapses(m.neuron, (m.feedforward, m.recurrent), kappa)] if weighted == 0 else [])
        elif _kept(m, kappa) and _linear(before):
            found.extend([AdaptiveSynapses(m, (before,), kappa)] if weighted == 1 else [])
        spiking = isinstance(m, RecurrentSpiking) or getattr(m, "is_spiking_neuron", False)
        weighted = 0 if spiking else weighted + any(True for _ in m.parameters())
        before = m
    paired = {id(s.neuron) for s in found}
    if any(_kept(m, kappa) and id(m) not in paired for m in net.modules()):
        raise ConfigError(_UNPAIRED_LEAKY if kappa else _UNPAIRED)
    check_filterable(net, kappa)
    return found


def check_filterable(net: nn.Module, kappa: float) -> None:
    """``adaptive_synapses``'s refusal of a leaky readout (``kappa > 0``) over a spiking neuron of ``net`` whose
    eligibility e-prop does not keep (``_filterable``: a quantised membrane, ``method.state_bits``; a learnt decay)."""
    if kappa and any(getattr(m, "is_spiking_neuron", False) and not _filterable(m) for m in net.modules()):
        raise ConfigError(_UNPAIRED_LEAKY)


_UNPAIRED = ("train.temporal_grad=eprop keeps the eligibility of adaptive neurons (alif) fed straight by a linear "
             "layer (a fully connected or recurrent layer with no normalisation between, reading spikes or the input); "
             "this net feeds one otherwise: use method.neuron=lif or train.temporal_grad=bptt")
_UNPAIRED_LEAKY = ("train.eprop_readout_decay filters every synapse's eligibility, which e-prop keeps for lif "
                   "neurons (IF ones as lif with method.decay: 1) and alif ones (float membranes) fed straight by a "
                   "linear layer (a fully connected or recurrent layer with no normalisation between, reading spikes "
                   "or the input); this net has a neuron fed or made otherwise (method.state_bits, method.max_spikes "
                   "> 1, plif, ...): use "
                   "train.eprop_readout_decay=null or train.temporal_grad=bptt")


def _filterable(neuron: nn.Module) -> bool:
    """Whether e-prop reads the surrogate slope of ``neuron`` (``_slope``): an adaptive LIF, or an IF / LIF one with a
    float membrane (a quantised one, ``neurons.state_quant``, fires on the rounded ``h_t`` and clips the gradient,
    which ``_slope`` does not) and one spike a step (``neurons.multi_spike``: a sum of slopes, which ``_slope`` is
    not)."""
    params = getattr(neuron, "params", None)
    one = getattr(neuron, "max_spikes", 1) == 1  # a multi-spike neuron's slope is a sum over thresholds
    return isinstance(neuron, AdaptiveLIF) or isinstance(params, NeuronParams) and params.state_quant is None and one


def _kept(module: nn.Module, kappa: float) -> bool:
    """Whether e-prop keeps per-synapse eligibility for the neuron ``module``: an adaptive one always, with a leaky
    readout every one it can (``_filterable``)."""
    return isinstance(module, AdaptiveLIF) or bool(kappa) and _filterable(module)


def _in_order(module: nn.Module) -> Iterator[nn.Module]:
    """The layers of ``module`` in registration order (the order a sequential net runs them): the leaves, with
    a ``TimeDistributed`` wrapper or a recurrent layer standing for what it holds."""
    children = list(module.children())
    if not children or isinstance(module, (TimeDistributed, RecurrentSpiking)):
        yield module
        return
    for child in children:
        yield from _in_order(child)


def readout_layers(net: nn.Module) -> list[TimeDistributed]:
    """The linear and convolutional layers after the net's last spiking neuron (in ``net.modules()`` order):
    they feed the readout, which keeps no state from step to step when a net runs online."""
    modules = list(net.modules())
    last = max((i for i, m in enumerate(modules) if getattr(m, "is_spiking_neuron", False)), default=-1)
    return [m for m in modules[last + 1:] if isinstance(m, TimeDistributed) and isinstance(m.module, TRACE_LAYERS)]


@contextmanager
def eprop_batch(net: nn.Module, kappa: float = 0.0) -> Iterator[None]:
    """One batch of e-prop on ``net``, inside the batch's ``temporal_carry`` block (module docstring): the layers
    that feed the readout take their weight gradient from the trace of their input with the readout's leak
    ``kappa`` (0: the step's own input, the readout of a step has no memory), the eligibility's hooks are on, and
    leaving the block adds its corrections to the gradients (not when the block raised)."""
    for layer in readout_layers(net):
        layer.carry = replace(layer.carry, trace_decay=kappa)
    synapses = adaptive_synapses(net, kappa)
    handles = [s.neuron.register_forward_pre_hook(s.before_step) for s in synapses]
    handles += [s.neuron.register_forward_hook(s.after_step) for s in synapses if kappa]
    try:
        yield
        for s in synapses:
            s.add_corrections()
    finally:
        for h in handles:
            h.remove()
