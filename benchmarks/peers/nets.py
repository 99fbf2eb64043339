"""The benchmark networks in four idioms: a plain ANN, deepspike, snnTorch and SpikingJelly.

Every SNN uses the same LIF neuron: ``h_t = 0.5 v_{t-1} + x_t``, fire at ``h_t >= 1``, reset to zero,
arctan surrogate ``(alpha/2) / (1 + (pi/2 alpha u)^2)`` with ``alpha = 2``, no detached reset. The input
image is fed at every step (direct encoding); the readout is the last linear layer's output averaged
over T (no output neurons), scored with cross-entropy. The ANN is the same layers with ReLU.

Nets (``NETS``):
  lenet: lee2020's LeNet on 1x28x28: 20C5-AP2-50C5-AP2-FC200-FC10.
  vgg:   a 3-conv VGG-style net on 3x32x32: [64C3-BN-AP2]-[128C3-BN-AP2]-[256C3-BN-AP2]-FC10.

``build(framework, net, timesteps)`` returns ``model(x [B, C, H, W]) -> scores [B, 10]``; peers reset their
neuron state at the start of each forward (snnTorch ``utils.reset``, SpikingJelly ``functional.reset_net``).
"""

from __future__ import annotations

import torch
from torch import nn

NETS = {"lenet": (1, 28, 28), "vgg": (3, 32, 32)}
FRAMEWORKS = ("ann", "deepspike", "snntorch", "spikingjelly")
DECAY, THRESHOLD, ALPHA = 0.5, 1.0, 2.0


def _layers(net: str, act, nn=nn) -> list[nn.Module]:
    """Layers of ``net`` from the namespace ``nn`` (torch's, or SpikingJelly's ``layer``), ``act()`` after
    every hidden conv/linear (BN before it for vgg)."""
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
    raise ValueError(f"unknown benchmark net {net!r}; valid: {', '.join(NETS)}")


class _Ann(nn.Module):
    def __init__(self, net: str) -> None:
        super().__init__()
        self.body = nn.Sequential(*_layers(net, nn.ReLU))

    def forward(self, x):
        return self.body(x)


class _DeepSpike(nn.Module):
    """deepspike idiom: stateless layers on ``[T*B]`` (``TimeDistributed``), neurons over ``[T, B, ...]``,
    average pooling that does not save its input (``LeanAvgPool2d``) and a ``SpikingSequential`` that runs
    each neuron with the pooling after it as one kernel, as deepspike's stbp model builder makes them."""

    def __init__(self, net: str, timesteps: int) -> None:
        super().__init__()
        from deepspike.layers.lean_avg_pool import LeanAvgPool2d
        from deepspike.layers.spiking_sequential import SpikingSequential
        from deepspike.layers.time_distributed import TimeDistributed
        from deepspike.neurons import LIF

        def neuron():
            return LIF(decay=DECAY, threshold=THRESHOLD, surrogate="arctan", surrogate_args={"alpha": ALPHA},
                       inplace=True)  # as deepspike's stbp builder makes its body neurons

        is_neuron = lambda m: isinstance(m, LIF)  # noqa: E731
        lean = lambda m: LeanAvgPool2d(m.kernel_size, m.stride) if type(m) is nn.AvgPool2d else m  # noqa: E731
        layers = [lean(m) for m in _layers(net, neuron)]  # the pooling deepspike's model builder uses
        self.body = SpikingSequential(*[m if is_neuron(m) else TimeDistributed(m) for m in layers])
        self.timesteps = timesteps

    def forward(self, x):
        xs = x.unsqueeze(0).expand(self.timesteps, *x.shape)  # [B, C, H, W] -> [T, B, C, H, W] (a view)
        return self.body(xs).mean(0)  # [T, B, 10] -> [B, 10]


class _SnnTorch(nn.Module):
    """snnTorch idiom: ``snn.Leaky(init_hidden=True)`` in an ``nn.Sequential``, a Python loop over T."""

    def __init__(self, net: str, timesteps: int) -> None:
        super().__init__()
        import snntorch as snn
        from snntorch import surrogate

        grad = surrogate.atan(alpha=ALPHA)

        def neuron():
            return snn.Leaky(beta=DECAY, threshold=THRESHOLD, spike_grad=grad, init_hidden=True, reset_mechanism="zero")

        self.body = nn.Sequential(*_layers(net, neuron))
        self.timesteps = timesteps

    def forward(self, x):
        from snntorch import utils

        utils.reset(self.body)
        out = [self.body(x) for _ in range(self.timesteps)]
        return torch.stack(out).mean(0)  # T x [B, 10] -> [B, 10]


class _SpikingJelly(nn.Module):
    """SpikingJelly idiom: multi-step mode (``step_mode='m'``) layers and ``LIFNode``, ``reset_net``."""

    def __init__(self, net: str, timesteps: int) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        def lif():
            # decay_input=False, tau=2: H = V - V/tau + X = 0.5 V + X; hard reset to v_reset = 0
            return neuron.LIFNode(
                tau=1.0 / (1.0 - DECAY),
                decay_input=False,
                v_threshold=THRESHOLD,
                v_reset=0.0,
                surrogate_function=surrogate.ATan(alpha=ALPHA),
                detach_reset=False,
            )

        self.body = nn.Sequential(*_layers(net, lif, layer))
        functional.set_step_mode(self.body, "m")
        self._functional = functional
        self.timesteps = timesteps

    def forward(self, x):
        self._functional.reset_net(self.body)
        xs = x.unsqueeze(0).repeat(self.timesteps, 1, 1, 1, 1)  # [B, C, H, W] -> [T, B, C, H, W]
        return self.body(xs).mean(0)  # [T, B, 10] -> [B, 10]


def build(framework: str, net: str, timesteps: int) -> nn.Module:
    """The model ``x [B, C, H, W] -> scores [B, 10]`` of ``net`` in ``framework`` (one of ``FRAMEWORKS``)."""
    if framework == "ann":
        return _Ann(net)
    if framework == "deepspike":
        return _DeepSpike(net, timesteps)
    if framework == "snntorch":
        return _SnnTorch(net, timesteps)
    if framework == "spikingjelly":
        return _SpikingJelly(net, timesteps)
    raise ValueError(f"unknown framework {framework!r}; valid: {', '.join(FRAMEWORKS)}")
