"""wu2019's networks (Table 1, Table 2, Fig. 8). 3x3 convolutions with padding 1, 2x2 average pooling.

The first convolution is the encoding layer (it sees the analog image or the event frames at every
step); the last layer is the classifier, which ``stbp`` widens into the voting population
(``method.vote_group``). ``dropout`` (wu2019 Table 7: 0.5 on CIFAR10) follows every hidden FC layer.
Static nets default to CIFAR10's ``(3, 32, 32)``, neuromorphic ones to N-MNIST's ``(2, 34, 34)``
(DVS-CIFAR10 is down-sampled to ``(2, 42, 42)``: pass ``input_shape``).
"""

from __future__ import annotations

from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Conv, Dropout, Flatten, Layer, Linear, Pool

STATIC = (3, 32, 32)
EVENTS = (2, 34, 34)


def from_code(code: str, num_classes: int, width: float, dropout: float) -> tuple[Layer, ...]:
    """Layers from wu2019's notation, e.g. ``"128C3-AP2-256C3-AP2-256FC"``, then the classifier.

    ``nC3``: conv 3x3 (padding 1) with n maps; ``AP2``: 2x2 average pooling; ``nFC``: hidden FC layer
    (followed by ``Dropout(dropout)`` when ``dropout > 0``). ``Flatten`` is inserted before the first FC.
    """
    layers: list[Layer] = []
    flat = False
    for token in code.split("-"):
        if token.endswith("C3"):
            layers.append(Conv(scaled(int(token[:-2]), width), 3, padding=1))
        elif token == "AP2":
            layers.append(Pool("avg", 2))
        elif token.endswith("FC"):
            if not flat:
                layers.append(Flatten())
                flat = True
            layers.append(Linear(scaled(int(token[:-2]), width)))
            if dropout:
                layers.append(Dropout(dropout))
        else:
            raise ValueError(f"bad wu2019 layer token {token!r} in {code!r}")
    if not flat:
        layers.append(Flatten())
    layers.append(Linear(num_classes, act=False))
    return tuple(layers)


_NETS = {
    # name: (default input shape, layer code, where it comes from)
    "wu2019_small": (STATIC, "128C3-AP2-256C3-AP2-256FC", "wu2019 Table 1 small (non-spiking data)"),
    "wu2019_middle": (STATIC, "128C3-AP2-256C3-512C3-AP2-512FC", "wu2019 Table 1 middle (non-spiking data)"),
    "wu2019_large": (STATIC, "128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC",
                     "wu2019 Table 1 large (non-spiking data)"),
    "wu2019_small_events": (EVENTS, "128C3-AP2-128C3-AP2-512FC", "wu2019 Table 1 small (neuromorphic)"),
    "wu2019_middle_events": (EVENTS, "128C3-128C3-AP2-256C3-AP2-1024FC", "wu2019 Table 1 middle (neuromorphic)"),
    "wu2019_large_events": (EVENTS, "128C3-128C3-AP2-384C3-384C3-AP2-1024FC-512FC",
                            "wu2019 Table 1 large (neuromorphic)"),
    "wu2019_events": (EVENTS, "128C3-128C3-AP2-128C3-256C3-AP2-1024FC", "wu2019 Table 2 (neuromorphic)"),
    "wu2019_alexnet": (STATIC, "96C3-256C3-AP2-384C3-AP2-384C3-256C3-1024FC-1024FC",
                       "wu2019 Table 2 / Fig. 8 AlexNet"),
    "wu2019_cifarnet": (STATIC, "128C3-256C3-AP2-512C3-AP2-1024C3-512C3-1024FC-512FC",
                        "wu2019 Table 2 / Fig. 8 CIFARNet"),
}


def _register(name: str, shape: tuple[int, ...], code: str, paper: str) -> None:
    def factory(num_classes, input_shape, width, dropout: float = 0.0):
        return from_code(code, num_classes, width, dropout)

    factory.__doc__ = f"{paper}: {code}-Voting."
    factory.__name__ = name
    register_model(name, default_input_shape=shape, paper=paper)(factory)


for _name, (_shape, _code, _paper) in _NETS.items():
    _register(_name, _shape, _code, _paper)
