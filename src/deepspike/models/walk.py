"""The one walk over an architecture spec: every layer in execution order, with its shapes, path and nesting.

``walk(layers, input_shape, fold)`` runs through ``layers`` like the network's forward pass. Each layer
without branches is handed to ``fold.layer`` as a ``Visit`` (the layer, its dotted path, per-sample input
and output shape, the branches it sits in). A block (``Residual``, ``Concat``) is walked branch by branch,
every branch from the block's input shape (a residual's ``body`` then ``shortcut``; a concat's ``branch0``,
``branch1``, ...); on leaving it, ``fold.block`` gets the block's ``Visit`` and what each branch folded to.
Paths name the position: ``"3"`` is the fourth top-level layer, ``"3.body.0"`` the first layer of its body,
``"5.branch2.1"`` the second layer of the third branch of layer 5.

Everything that reads a spec goes through here: shape inference (``models.spec``), cost counting
(``models.costs``), building modules (``methods.build``), neuron roles (``conversion.roles``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

from deepspike.models.layer_specs import Activation, Block, Concat, Conv, Layer, Linear, Residual, Shape
from deepspike.models.shapes import junction_shape, layer_output_shape

T = TypeVar("T")


@dataclass(frozen=True)
class Branch:
    """One enclosing branch: the ``block`` holding it and its name (``body``, ``shortcut``, ``branch<j>``)."""

    block: Block
    name: str


@dataclass(frozen=True)
class Visit:
    """One layer where the walk meets it: per-sample ``input_shape -> output_shape`` at dotted ``path``.

    nesting: the branches around the layer, outermost first (``()`` at the top level).
    """

    layer: Layer
    path: str
    input_shape: Shape
    output_shape: Shape
    nesting: tuple[Branch, ...]

    @property
    def activated(self) -> bool:
        """True when the method's nonlinearity follows the layer: a conv/linear with ``act=True``, a
        ``Residual`` without ``connect`` (its junction ``act(body + shortcut)``; a SEW junction has none), or an
        ``Activation`` (which is nothing but that nonlinearity)."""
        layer = self.layer
        if isinstance(layer, Residual):
            return layer.connect is None
        return isinstance(layer, Activation) or (isinstance(layer, (Conv, Linear)) and layer.act)

    @property
    def in_residual(self) -> bool:
        """True when the layer sits in the body or shortcut of a ``Residual`` (at any depth)."""
        return any(isinstance(branch.block, Residual) for branch in self.nesting)


class SpecFold(Generic[T]):
    """What a walk computes: each layer gives a list of items, a sequence the concatenation of its layers'.

    The base class folds every layer to nothing and a block to its branches' items in order (body, then
    shortcut); subclasses override ``layer`` and, where blocks make something of their own, ``block``.
    """

    def layer(self, visit: Visit) -> list[T]:
        """Items of a layer without branches."""
        return []

    def block(self, visit: Visit, branches: list[list[T]]) -> list[T]:
        """Items of a ``Residual``/``Concat``, on leaving it: ``branches`` are its branches' items in order."""
        return [item for branch in branches for item in branch]


class _Visits(SpecFold[Visit]):
    def layer(self, visit: Visit) -> list[Visit]:
        return [visit]

    def block(self, visit: Visit, branches: list[list[Visit]]) -> list[Visit]:
        return [*super().block(visit, branches), visit]


def walk(layers: tuple[Layer, ...], input_shape: Shape, fold: SpecFold[T]) -> tuple[list[T], Shape]:
    """``fold``'s items for ``layers`` applied to per-sample ``input_shape``, and the output shape.

    Raises ``ConfigError`` where a layer does not fit its input or a block's branches disagree.
    """
    return _walk(layers, input_shape, fold, "", ())


def visits(layers: tuple[Layer, ...], input_shape: Shape) -> list[Visit]:
    """Every layer in execution order; a block right after its branches' layers (when it is left)."""
    return walk(layers, input_shape, _Visits())[0]


def _named_branches(block: Block) -> list[tuple[str, tuple[Layer, ...]]]:
    """``[("body", ...), ("shortcut", ...)]`` for a ``Residual``, ``[("branch0", ...), ...]`` for a ``Concat``."""
    if isinstance(block, Residual):
        return [("body", block.body), ("shortcut", block.shortcut)]
    return [(f"branch{j}", branch) for j, branch in enumerate(block.branches)]


def _walk(
    layers: tuple[Layer, ...], shape: Shape, fold: SpecFold[T], prefix: str, nesting: tuple[Branch, ...]
) -> tuple[list[T], Shape]:
    items: list[T] = []
    for i, layer in enumerate(layers):
        path = f"{prefix}{i}"
        if isinstance(layer, (Residual, Concat)):
            walked = [
                _walk(branch, shape, fold, f"{path}.{name}.", (*nesting, Branch(layer, name)))
                for name, branch in _named_branches(layer)
            ]
            out = junction_shape(layer, [branch_shape for _, branch_shape in walked])
            items += fold.block(Visit(layer, path, shape, out, nesting), [branch for branch, _ in walked])
        else:
            out = layer_output_shape(layer, shape)
            items += fold.layer(Visit(layer, path, shape, out, nesting))
        shape = out
    return items, shape
