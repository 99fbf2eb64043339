"""Small networks: the demo's conv net, fully connected nets, LeNet (lee2020) and wu2019's MNIST net."""

from __future__ import annotations

from deepspike.models.blocks import check_spike_delay, classifier_head, hidden_sizes
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Conv, Dropout, Flatten, Linear, Pool


@register_model("scnn_digits", default_input_shape=(1, 8, 8))
def scnn_digits(num_classes, input_shape, width):
    """Demo conv net for 8x8 digits: 16C3-32C3-AP2-32C3-AP2-FC."""
    return (
        Conv(scaled(16, width), 3, padding=1),
        Conv(scaled(32, width), 3, padding=1),
        Pool("avg", 2),
        Conv(scaled(32, width), 3, padding=1),
        Pool("avg", 2),
        Flatten(),
        Linear(num_classes, act=False),
    )


@register_model("mlp", default_input_shape=(1, 28, 28), paper="zhang2021 (FC 784-h-10)")
def mlp(num_classes, input_shape, width, hidden: tuple[int, ...] | list[int] = (400,), dropout: float = 0.0,
        bias: bool = False, spike_delay: int = 0):
    """Fully connected net input-hidden...-classes (zhang2021's FC nets use one hidden layer); ``bias``: each layer
    with a bias, as torch's ``nn.Linear`` and so snnTorch's, Sinabs' and SpikingJelly's MLPs (``method.init_from``);
    ``spike_delay: 1``: each hidden layer's spikes reach the next layer one step late, Xylo's timing
    (``layers.spike_delay``; method stbp)."""
    return tuple(classifier_head(num_classes, hidden_sizes("mlp", hidden), width, dropout, bias,
                                 check_spike_delay("mlp", spike_delay)))


@register_model("lenet", default_input_shape=(1, 28, 28), paper="lee2020 Table 4")
def lenet(num_classes, input_shape, width, dropout: float = 0.0, padding: int = 0):
    """LeNet of lee2020: 20C5-AP2-50C5-AP2-200-classes; ``padding`` p pads both 5x5 convolutions. lee2020's MNIST
    code pads them by 2 (28-28-14-14-7 on MNIST: 50 * 7 * 7 = 2450 inputs to the FC layer); 0 (the default) is
    the unpadded 28-24-12-8-4 (800)."""
    return (
        Conv(scaled(20, width), 5, padding=padding),
        Pool("avg", 2),
        Conv(scaled(50, width), 5, padding=padding),
        Pool("avg", 2),
        Flatten(),
        Linear(scaled(200, width)),
        *((Dropout(dropout),) if dropout else ()),
        Linear(num_classes, act=False),
    )


@register_model("stbp_mnist", default_input_shape=(1, 28, 28), paper="wu2019 (original code's MNIST net)")
def stbp_mnist(num_classes, input_shape, width):
    """wu2019 code's MNIST net: 32C3-AP2-32C3-AP2-128-classes (3x3 convs, padding 1)."""
    return (
        Conv(scaled(32, width), 3, padding=1),
        Pool("avg", 2),
        Conv(scaled(32, width), 3, padding=1),
        Pool("avg", 2),
        Flatten(),
        Linear(scaled(128, width)),
        Linear(num_classes, act=False),
    )


@register_model("diehl_cook", default_input_shape=(1, 28, 28), paper="Diehl & Cook 2015")
def diehl_cook(num_classes, input_shape, width, neurons: int = 400):
    """Diehl & Cook's competitive net as method wta_stdp builds it: the ``neurons`` excitatory neurons (each with
    its inhibitory partner) and the vote of their labels, Flatten-neurons-classes."""
    return (Flatten(), Linear(scaled(neurons, width)), Linear(num_classes, act=False))
