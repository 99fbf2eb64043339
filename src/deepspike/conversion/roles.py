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

from deepspike.models.spec import Architecture, Residual
from deepspike.models.walk import Visit

RESIDUAL_ROLES = ("stem", "residual", "junction")


def neuron_roles(arch: Architecture) -> list[str]:
    """Role of every neuron layer of ``arch`` in build order, the output layer last (see module docstring).

    The neuron layers are the spec walk's activated visits (``models.walk.Visit.activated``): the walk
    visits a residual unit right after its body and shortcut, where its junction neuron runs.
    """
    roles = [_role(visit) for visit in arch.visits() if visit.activated]
    first = next((i for i, r in enumerate(roles) if r != "plain"), None)
    if first is not None and first > 0:
        roles[first - 1] = "stem"
    return [*roles, "output"]


def _role(visit: Visit) -> str:
    """``junction`` for a residual unit, else ``residual`` inside a unit's body/shortcut, ``plain`` outside."""
    if isinstance(visit.layer, Residual):
        return "junction"
    return "residual" if visit.in_residual else "plain"
