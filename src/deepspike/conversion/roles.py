"""Which threshold rule each neuron layer of a converted network follows (sengupta2019 section 6).

Roles, in the order the neurons are built and run (``methods.build``: a layer's neuron after the layer; in
a residual unit the body, then the shortcut, then the junction):

* ``plain``: a neuron after a conv/linear layer outside residual units; its threshold is balanced.
* ``stem``: the last plain neuron before the first residual unit. It feeds that unit's identity path, so
  it is the "identity ReLU layer" of the first unit and belongs to the residual stage ("three 3x3 convs of
  which the first two are plain").
* ``residual``: a neuron inside a residual unit's body or shortcut (the non-identity ReLU).
* ``junction``: the neuron after ``body + shortcut``.
* ``output``: the output layer's neurons (the classifier, ``act=False`` in the spec).
"""

from __future__ import annotations

from deepspike.models.spec import Architecture, Concat, Conv, Layer, Linear, Residual

ROLES = ("plain", "stem", "residual", "junction", "output")
RESIDUAL_ROLES = ("stem", "residual", "junction")


def neuron_roles(arch: Architecture) -> list[str]:
    """Role of every neuron layer of ``arch`` in build order, the output layer last (see module docstring)."""
    roles: list[str] = []

    def walk(layers: tuple[Layer, ...], inside: bool) -> None:
        for layer in layers:
            if isinstance(layer, (Conv, Linear)) and layer.act:
                roles.append("residual" if inside else "plain")
            elif isinstance(layer, Residual):
                walk(layer.body, True)
                walk(layer.shortcut, True)
                roles.append("junction")
            elif isinstance(layer, Concat):
                for branch in layer.branches:
                    walk(branch, inside)

    walk(arch.layers, False)
    first = next((i for i, r in enumerate(roles) if r != "plain"), None)
    if first is not None and first > 0:
        roles[first - 1] = "stem"
    return [*roles, "output"]
