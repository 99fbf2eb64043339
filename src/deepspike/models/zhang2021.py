"""zhang2021's ReL-PSP networks (Tables I and II): fully connected 784-h-10 and the conv net.

Conv net ``28x28-16C5-P2-32C5-P2-800-128-10``: we read "800" as the flattened 32 x 5 x 5 feature map,
which is what 16C5 with padding 2 (28 -> 28 -> P2 14) then 32C5 without padding (14 -> 10 -> P2 5)
gives; then FC 128 and the classes. Pooling is max (the earliest spike) unless ``pool: avg``.
"""

from __future__ import annotations

from deepspike.core.errors import ConfigError
from deepspike.models.registry import register_model, scaled
from deepspike.models.spec import Conv, Flatten, Linear, Pool

FC_HIDDEN = (340, 400, 800, 1000)


def _register_fc(hidden: int) -> None:
    def factory(num_classes, input_shape, width):
        return (Flatten(), Linear(scaled(hidden, width)), Linear(num_classes, act=False))

    factory.__doc__ = f"zhang2021 fully connected net: input-{hidden}-classes (Table I/II)."
    register_model(f"zhang2021_fc{hidden}", default_input_shape=(1, 28, 28), paper="zhang2021 Tables I-II")(
        factory
    )


for _h in FC_HIDDEN:
    _register_fc(_h)


@register_model("zhang2021_conv", default_input_shape=(1, 28, 28), paper="zhang2021 Tables I-II")
def zhang2021_conv(num_classes, input_shape, width, pool: str = "max"):
    """zhang2021 conv net: 16C5(pad 2)-P2-32C5-P2-800-128-classes."""
    if pool not in ("max", "avg"):
        raise ConfigError(f"zhang2021_conv pool must be 'max' or 'avg', got {pool!r}")
    return (
        Conv(scaled(16, width), 5, padding=2),
        Pool(pool, 2),
        Conv(scaled(32, width), 5),
        Pool(pool, 2),
        Flatten(),
        Linear(scaled(128, width)),
        Linear(num_classes, act=False),
    )
