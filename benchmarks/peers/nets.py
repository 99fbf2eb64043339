"""The benchmark networks in four idioms: a plain ANN, deepspike, snnTorch and SpikingJelly.

Every SNN uses the same LIF neuron: ``h_t = 0.5 v_{t-1} + x_t``, fire at ``h_t >= 1``, reset to zero,
arctan surrogate ``(alpha/2) / (1 + (pi/2 alpha u)^2)`` with ``alpha = 2``, no detached reset. The input
image is fed at every step (direct encoding); the readout is the last linear layer's output averaged
over T (no output neurons), scored with cross-entropy. The ANN is the same layers with ReLU.

Nets (``NETS``):
  lenet:        lee2020's LeNet on 1x28x28: 20C5-AP2-50C5-AP2-FC200-FC10.
  vgg:          a 3-conv VGG-style net on 3x32x32: [64C3-BN-AP2]-[128C3-BN-AP2]-[256C3-BN-AP2]-FC10.
  vgg11:        deepspike's registered ``vgg11`` (VGG-11, configuration A, with BN) on 3x32x32: 64C3-AP2-128C3-AP2-
                256C3-256C3-AP2-512C3-512C3-AP2-512C3-512C3-AP2-FC10, every conv bias-free + BN + activation.
  sew_resnet18: deepspike's registered ``sew_resnet18`` (Fang et al., NeurIPS 2021, ADD connect) on 3x32x32: 3x3
                stem 64C3-BN-act (no max pool), 2+2+2+2 units of 64-128-256-512 channels (stride 2 at the first
                unit of stages 2-4), global AP4, FC10. A unit: ``A = act(BN(conv3(act(BN(conv3 x)))))`` and
                ``out = A + S``, ``S = x`` or ``act(BN(conv1x1/2 x))`` where the shape changes; no activation
                after the add. Its ANN is ResNet-18 (deepspike's ``resnet18``): the same convs with ReLU and
                the ordinary residual ``relu(BN(conv3(relu(BN(conv3 x)))) + S)``, ``S = x`` or ``BN(conv1x1 x)``.
  <net>_plif:   the same net with PLIF neurons (Fang et al., ICCV 2021; learnable time constant, one per layer,
                ``tau`` starting at 2): ``h_t = v_{t-1} + (x_t - v_{t-1}) / tau``, ``1/tau = sigmoid(w)``, same
                threshold, reset and surrogate (deepspike ``method.neuron=plif``: ``LearnableLIF``; SpikingJelly
                ``ParametricLIFNode(decay_input=True)``). snnTorch has no PLIF: its closest, ``Leaky(learn_beta=
                True)``, learns ``beta`` (starting at 0.5) directly in ``h_t = beta v_{t-1} + x_t`` (the input not
                scaled by ``1 - beta``). The ANN is the base net's.

deepspike builds ``vgg11`` and ``sew_resnet18`` (and their ``_plif``) as its users do: the registered model through
the ``stbp`` method (``readout: membrane``, ``norm: bn``, ``init_kappa: null``: torch's default initialisation as
everywhere else); lenet and vgg by hand from the layer list below, as that builder would. ``layout(model)`` lists
every parameter's shape in order: the same list in every framework (``tests/test_bench_nets.py``).

``build(framework, net, timesteps)`` returns ``model(x [B, C, H, W]) -> scores [B, 10]``; peers reset their
neuron state at the start of each forward (snnTorch ``utils.reset``, SpikingJelly ``functional.reset_net``).
snnTorch runs its layers one step at a time, so its batch-norms (``vgg``, ``vgg11``, ``sew_resnet18``) normalise each
step's ``[B, ...]`` on its own and update their running statistics T times a forward, where deepspike's and
SpikingJelly's normalise ``[T*B, ...]`` once: the same layers, outputs that differ from the first batch-norm after a
neuron on. Nets without batch-norm (``lenet``) give every framework the same outputs and gradients
(``tests/test_bench_nets.py``).
"""

from __future__ import annotations

import torch
from torch import nn

BASE_NETS = {"lenet": (1, 28, 28), "vgg": (3, 32, 32), "vgg11": (3, 32, 32), "sew_resnet18": (3, 32, 32)}
NETS = {**BASE_NETS, **{f"{n}_plif": shape for n, shape in BASE_NETS.items()}}
REGISTERED = ("vgg11", "sew_resnet18")  # built by deepspike's own model registry and stbp method
FRAMEWORKS = ("ann", "deepspike", "snntorch", "spikingjelly")
DECAY, THRESHOLD, ALPHA = 0.5, 1.0, 2.0


def split(net: str) -> tuple[str, bool]:
    """``(base net, plif)`` of a ``NETS`` name: ``"vgg11_plif"`` -> ``("vgg11", True)``."""
    if net not in NETS:
        raise ValueError(f"unknown benchmark net {net!r}; valid: {', '.join(NETS)}")
    return (net[: -len("_plif")], True) if net.endswith("_plif") else (net, False)


class _Residual(torch.nn.Module):
    """``join(body(x) + shortcut(x))``: ``join`` None for a SEW ADD unit (spikes added, nothing after), ReLU for
    the ANN's residual unit; an empty ``shortcut`` is the identity. Works per step ``[B, ...]`` (ANN, snnTorch)
    and on ``[T, B, ...]`` (SpikingJelly's multi-step mode)."""

    def __init__(self, body: list, shortcut: list, join: torch.nn.Module | None) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(*body)
        self.shortcut = torch.nn.Sequential(*shortcut)
        self.join = join

    def forward(self, x):
        y = self.body(x) + self.shortcut(x)
        return y if self.join is None else self.join(y)


def _conv_bn(nn, cin: int, cout: int, kernel: int, stride: int = 1) -> list:
    return [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]


def _vgg11(act, nn) -> list:
    """VGG-11 (configuration A) with BN on 3x32x32: five groups, each ending in AP2 (32 -> 1), then FC10."""
    layers, cin = [], 3
    for group in ((64,), (128,), (256, 256), (512, 512), (512, 512)):
        for cout in group:
            layers += [*_conv_bn(nn, cin, cout, 3), act()]
            cin = cout
        layers.append(nn.AvgPool2d(2))
    return [*layers, nn.Flatten(), nn.Linear(512, 10)]


def _resnet18(act, nn, sew: bool) -> list:
    """ResNet-18 on 3x32x32 (module docstring): SEW ADD units when ``sew``, else ReLU residual units."""
    tail = [act] if sew else []  # a SEW unit's branches end in neurons; the ANN's activation follows the add
    layers, cin = [*_conv_bn(nn, 3, 64, 3), act()], 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for unit in range(2):
            stride = 2 if stage > 0 and unit == 0 else 1
            body = [*_conv_bn(nn, cin, cout, 3, stride), act(), *_conv_bn(nn, cout, cout, 3), *(a() for a in tail)]
            same = stride == 1 and cin == cout
            shortcut = [] if same else [*_conv_bn(nn, cin, cout, 1, stride), *(a() for a in tail)]
            layers.append(_Residual(body, shortcut, None if sew else act()))
            cin = cout
    return [*layers, nn.AvgPool2d(4), nn.Flatten(), nn.Linear(512, 10)]


def _layers(net: str, act, nn=nn, sew: bool = True) -> list[nn.Module]:
    """Layers of base ``net`` from the namespace ``nn`` (torch's, or SpikingJelly's ``layer``), ``act()`` after
    every hidden conv/linear (BN before it where the net has one); ``sew`` False: the ANN's residual units."""
    if net == "lenet":
        return [
            nn.Conv2d(1, 20, 5),
            act(),
            nn.AvgPool2d(2),
            nn.Conv2d(20, 50, 5),
            act(),
            nn.AvgPool2d(2),
            nn.Flatten(),
            nn.Linear(50 * 4 * 4, 200),
            act(),
            nn.Linear(200, 10),
        ]
    if net == "vgg":
        layers: list[nn.Module] = []
        for cin, cout in ((3, 64), (64, 128), (128, 256)):
            layers += [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), act(), nn.AvgPool2d(2)]
        return [*layers, nn.Flatten(), nn.Linear(256 * 4 * 4, 10)]
    if net == "vgg11":
        return _vgg11(act, nn)
    if net == "sew_resnet18":
        return _resnet18(act, nn, sew)
    raise ValueError(f"unknown benchmark net {net!r}; valid: {', '.join(NETS)}")


def layout(model: nn.Module) -> list[tuple[int, ...]]:
    """Every parameter's shape in registration order, without the neurons' own (PLIF decays): the layer layout
    that must be the same in every framework."""
    return [tuple(p.shape) for p in model.parameters() if p.dim() > 0 or p.numel() != 1]


class _Ann(nn.Module):
    def __init__(self, net: str) -> None:
        super().__init__()
        self.body = nn.Sequential(*_layers(split(net)[0], nn.ReLU, sew=False))

    def forward(self, x):
        return self.body(x)


def _deepspike_registered(net: str, timesteps: int, plif: bool) -> nn.Module:
    """deepspike's registered model ``net`` built by its ``stbp`` method with the benchmark's neuron (module
    docstring): ``x [B, C, H, W] -> [B, 10]`` (the membrane readout: the last layer's output averaged over T)."""
    from deepspike.methods.registry import get_method
    from deepspike.models.registry import create_architecture

    options = {"timesteps": timesteps, "decay": DECAY, "threshold": THRESHOLD, "reset": "zero",
               "surrogate": "arctan", "surrogate_args": {"alpha": ALPHA}, "readout": "membrane", "norm": "bn",
               "init_kappa": None, "neuron": "plif" if plif else "lif", "tau_init": 1.0 / (1.0 - DECAY)}
    return get_method("stbp", options).build(create_architecture(net))


class _DeepSpike(nn.Module):
    """deepspike idiom: stateless layers on ``[T*B]`` (``TimeDistributed``), neurons over ``[T, B, ...]``,
    average pooling that does not save its input (``LeanAvgPool2d``) and a ``SpikingSequential`` that runs
    each neuron with the pooling after it as one kernel, as deepspike's stbp model builder makes them
    (``REGISTERED`` nets: that builder itself)."""

    def __init__(self, net: str, timesteps: int) -> None:
        super().__init__()
        from deepspike.layers.lean_avg_pool import LeanAvgPool2d
        from deepspike.layers.spiking_sequential import SpikingSequential
        from deepspike.layers.time_distributed import TimeDistributed
        from deepspike.neurons import LIF, NeuronParams
        from deepspike.neurons.learnable import LearnableLIF

        base, plif = split(net)
        self.timesteps = timesteps
        self.registered = base in REGISTERED
        if self.registered:
            self.body = _deepspike_registered(base, timesteps, plif)
            return
        params = {"decay": DECAY, "threshold": THRESHOLD, "surrogate": "arctan", "surrogate_args": {"alpha": ALPHA}}

        def neuron():  # inplace: as deepspike's stbp builder makes its body neurons
            return LearnableLIF(NeuronParams(**params), tau_init=1.0 / (1.0 - DECAY)) if plif else LIF(
                **params, inplace=True)

        is_neuron = lambda m: isinstance(m, (LIF, LearnableLIF))  # noqa: E731
        lean = lambda m: LeanAvgPool2d(m.kernel_size, m.stride) if type(m) is nn.AvgPool2d else m  # noqa: E731
        layers = [lean(m) for m in _layers(base, neuron)]  # the pooling deepspike's model builder uses
        self.body = SpikingSequential(*[m if is_neuron(m) else TimeDistributed(m) for m in layers])

    def forward(self, x):
        if self.registered:
            return self.body(x)  # deepspike's RateNetwork: direct encoding, body, membrane readout (mean over T)
        xs = x.unsqueeze(0).expand(self.timesteps, *x.shape)  # [B, C, H, W] -> [T, B, C, H, W] (a view)
        return self.body(xs).mean(0)  # [T, B, 10] -> [B, 10]


class _SnnTorch(nn.Module):
    """snnTorch idiom: ``snn.Leaky(init_hidden=True)`` in an ``nn.Sequential``, a Python loop over T.
    ``reset_delay=False``: the reset is applied in the step that fires, through the spike, so it is not detached;
    snnTorch's default (``True``) resets from the previous step's membrane through a detached copy of its spike,
    the same forward values but the gradient of a detached reset."""

    def __init__(self, net: str, timesteps: int) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        grad = surrogate.atan(alpha=ALPHA)
        base, plif = split(net)

        def neuron():
            return snn.Leaky(beta=DECAY, threshold=THRESHOLD, spike_grad=grad, init_hidden=True, reset_mechanism="zero",
                             reset_delay=False, learn_beta=plif)

        self.body = nn.Sequential(*_layers(base, neuron))
        self.timesteps = timesteps

    def forward(self, x):
        from snntorch import utils

        utils.reset(self.body)
        out = [self.body(x) for _ in range(self.timesteps)]
        return torch.stack(out).mean(0)  # T x [B, 10] -> [B, 10]


class _SpikingJelly(nn.Module):
    """SpikingJelly idiom: multi-step mode (``step_mode='m'``) layers and ``LIFNode`` (``ParametricLIFNode`` for
    PLIF), ``reset_net``."""

    def __init__(self, net: str, timesteps: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        base, plif = split(net)
        common = {"v_threshold": THRESHOLD, "v_reset": 0.0, "surrogate_function": surrogate.ATan(alpha=ALPHA),
                  "detach_reset": False}

        def lif():
            if plif:  # decay_input=True: H = V + (X - V) / tau, tau learnt from init_tau
                return neuron.ParametricLIFNode(init_tau=1.0 / (1.0 - DECAY), decay_input=True, **common)
            # decay_input=False, tau=2: H = V - V/tau + X = 0.5 V + X; hard reset to v_reset = 0
            return neuron.LIFNode(tau=1.0 / (1.0 - DECAY), decay_input=False, **common)

        self.body = nn.Sequential(*_layers(base, lif, layer))
        functional.set_step_mode(self.body, "m")
        self._functional = functional
        self.timesteps = timesteps

    def forward(self, x):
        self._functional.reset_net(self.body)
        xs = x.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)  # [B, C, H, W] -> [T, B, C, H, W]
        return self.body(xs).mean(0)  # [T, B, 10] -> [B, 10]


def build(framework: str, net: str, timesteps: int) -> nn.Module:
    """The model ``x [B, C, H, W] -> scores [B, 10]`` of ``net`` in ``framework`` (one of ``FRAMEWORKS``)."""
    split(net)  # a clear error for an unknown net
    if framework == "ann":
        return _Ann(net)
    if framework == "deepspike":
        return _DeepSpike(net, timesteps)
    if framework == "snntorch":
        return _SnnTorch(net, timesteps)
    if framework == "spikingjelly":
        return _SpikingJelly(net, timesteps)
    raise ValueError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}")
