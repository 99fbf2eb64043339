"""The one spec walk: visit order, paths, shapes and nesting on a hand-made nested spec; folds over blocks."""

import pytest

from deepspike.core.errors import ConfigError
from deepspike.models.spec import Architecture, Concat, Conv, Dropout, Flatten, Linear, Pool, Residual
from deepspike.models.walk import SpecFold, visits, walk

INCEPTION = Concat(((Conv(2, 1),), (Pool("max", 3, stride=1, padding=1), Conv(2, 1))))
UNIT = Residual(body=(Conv(4, 3, padding=1), INCEPTION), shortcut=(Dropout(0.5),))
LAYERS = (Conv(4, 3, padding=1), UNIT, Pool("avg", 2), Flatten(), Linear(10, act=False))

# (path, input shape, output shape) in visit order, by hand: 3x8x8 -> conv3/p1 4x8x8; the unit keeps 4x8x8
# (inception: 2 + 2 channels, 3x3/s1/p1 max pool keeps 8x8); avg pool 2 -> 4x4x4 -> 64 -> 10.
EXPECTED = [
    ("0", (3, 8, 8), (4, 8, 8)),
    ("1.body.0", (4, 8, 8), (4, 8, 8)),
    ("1.body.1.branch0.0", (4, 8, 8), (2, 8, 8)),
    ("1.body.1.branch1.0", (4, 8, 8), (4, 8, 8)),
    ("1.body.1.branch1.1", (4, 8, 8), (2, 8, 8)),
    ("1.body.1", (4, 8, 8), (4, 8, 8)),
    ("1.shortcut.0", (4, 8, 8), (4, 8, 8)),
    ("1", (4, 8, 8), (4, 8, 8)),
    ("2", (4, 8, 8), (4, 4, 4)),
    ("3", (4, 4, 4), (64,)),
    ("4", (64,), (10,)),
]


def test_visits_every_layer_in_order_with_paths_and_shapes():
    seen = visits(LAYERS, (3, 8, 8))
    assert [(v.path, v.input_shape, v.output_shape) for v in seen] == EXPECTED
    by_path = {v.path: v for v in seen}
    assert by_path["1"].layer is UNIT and by_path["1.body.1"].layer is INCEPTION
    assert by_path["1.body.1.branch1.0"].layer == Pool("max", 3, stride=1, padding=1)
    assert Architecture("nested", LAYERS, (3, 8, 8), 10).visits() == seen


def test_nesting_names_the_enclosing_branches_outermost_first():
    by_path = {v.path: v for v in visits(LAYERS, (3, 8, 8))}
    deepest = by_path["1.body.1.branch1.1"].nesting
    assert [(b.block, b.name) for b in deepest] == [(UNIT, "body"), (INCEPTION, "branch1")]
    assert [(b.block, b.name) for b in by_path["1.shortcut.0"].nesting] == [(UNIT, "shortcut")]
    assert by_path["1.body.1"].nesting == by_path["1.body.0"].nesting
    assert by_path["0"].nesting == by_path["1"].nesting == by_path["4"].nesting == ()
    inside = {p for p, v in by_path.items() if v.in_residual}
    assert inside == {"1.body.0", "1.body.1", "1.body.1.branch0.0", "1.body.1.branch1.0", "1.body.1.branch1.1",
                      "1.shortcut.0"}


def test_activated_marks_act_conv_linear_and_residual_junctions():
    activated = [v.path for v in visits(LAYERS, (3, 8, 8)) if v.activated]
    assert activated == ["0", "1.body.0", "1.body.1.branch0.0", "1.body.1.branch1.1", "1"]


class _Bracketed(SpecFold[str]):
    """Paths, each block written as ``path[branch items | ...]`` when it is left."""

    def layer(self, visit):
        return [visit.path]

    def block(self, visit, branches):
        return [f"{visit.path}[{' | '.join(','.join(b) for b in branches)}]"]


def test_fold_hands_each_block_its_branches_items_and_returns_the_output_shape():
    items, out = walk(LAYERS, (3, 8, 8), _Bracketed())
    inner = "1.body.1[1.body.1.branch0.0 | 1.body.1.branch1.0,1.body.1.branch1.1]"
    assert items == ["0", f"1[1.body.0,{inner} | 1.shortcut.0]", "2", "3", "4"]
    assert out == (10,)


def test_base_fold_yields_nothing_but_the_shape_and_errors_name_the_misfit():
    assert walk(LAYERS, (3, 8, 8), SpecFold()) == ([], (10,))
    assert walk((), (3, 8, 8), SpecFold()) == ([], (3, 8, 8))
    with pytest.raises(ConfigError, match=r"residual branches disagree: body gives \(8, 8, 8\)"):
        walk((Residual(body=(Conv(8, 1),)),), (4, 8, 8), SpecFold())
    with pytest.raises(ConfigError, match="concat branches disagree on spatial size"):
        walk((Concat(((Conv(2, 1),), (Conv(2, 3),))),), (4, 8, 8), SpecFold())


def test_contains_finds_a_block_at_any_depth():
    arch = Architecture("nested", LAYERS, (3, 8, 8), 10)
    assert arch.contains(Residual) and arch.contains(Concat) and arch.contains(Dropout)
    flat = Architecture("flat", (Flatten(), Linear(10, act=False)), (1, 2, 2), 10)
    assert not flat.contains(Residual)
    in_branch = Architecture("deep", (Concat(((UNIT,), (Conv(4, 1),))), Flatten(), Linear(10)), (4, 2, 2), 10)
    assert in_branch.contains(Residual)
