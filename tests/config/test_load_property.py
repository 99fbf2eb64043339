"""Property: any recipe text and ``key=value`` overrides are either a valid ``RunConfig`` or one ``UserError`` line.

Generated recipes mix real sections, keys and plausible values with odd ones: non-finite floats, huge ints,
unicode, deep nesting, anchors and aliases (recursive and exponential), YAML tags (``!!python/...`` that
would create a marker file, ``!!binary``, ``!!set``, ...), OmegaConf interpolations and broken syntax. An
accepted config must pass its schema again, hold only finite numbers and survive ``save_config`` /
``load_config``; a refusal must be a ``UserError`` with a one-line message; nothing else may be raised. A
small sample goes through the real CLI (``deepspike train``, pinned to a one-step digits mlp): exit 0 with
a summary or exit 2 with one ``deepspike: error:`` line, never a traceback, never a file outside ``--out``.
``make test`` runs 500 + 40 examples (about a minute); ``-m slow`` runs 5000 + 400.
"""

import contextlib
import dataclasses
import io
import json
import math
import re

import pytest
import yaml
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from deepspike.cli import main
from deepspike.config import RunConfig, load_config, save_config
from deepspike.config.schema import SET_ELSEWHERE
from deepspike.core.errors import UserError
from deepspike.core.options import check_numbers, to_dataclass
from deepspike.methods.registry import list_methods, method_options

SECTIONS = [f.name for f in dataclasses.fields(RunConfig)]
METHODS = {m.name: m.Options for m in list_methods()}
KEYS = {
    "model": ["name", "width", "args", "hidden", "dropout"],
    "data": ["name", "val_fraction", "normalize", "augment", "crop_padding", "hflip", "args", "size", *SET_ELSEWHERE],
    "optim": ["name", "lr", "weight_decay", "momentum", "nesterov", "betas"],
    "schedule": ["name", "step_size", "milestones", "gamma", "min_factor", "warmup_epochs"],
    "train": ["epochs", "batch_size", "seed", "grad_clip", "deterministic", "precision", "ema_decay", "progress",
              "temporal_grad", "time_segment", "sltt_steps", "log"],
    "expected": ["test_accuracy", "tolerance", "measured_by"],
    "method": sorted({"name"} | {f.name for m in list_methods() for f in dataclasses.fields(m.Options)}),
}
# Keys that make a CLI run big or slow (or fetch data): the CLI sample never generates them, TINY pins them.
SIZE_KEYS = {"model", "epochs", "batch_size", "timesteps", "eval_timesteps", "data_dir", "download", "crop_padding",
             "num_workers", "device", "init_from", "calib_samples", "calib_timesteps", "measure_batches"}
TINY = ["model.name=mlp", "model.args={hidden: [4]}", "train.epochs=1", "train.max_steps_per_epoch=1",
        "train.batch_size=16", "train.eval_batch_size=1024", "train.device=cpu", "train.progress=false",
        "data.name=digits", "data.download=false", "data.num_workers=0", "data.augment.crop_padding=0"]
NAMES = ["stbp", "ann", "spikebp", "stdbp", "ttfs", "converted", "mlp", "lenet", "scnn_digits", "digits", "sgd",
         "adam", "adamw", "cosine", "step", "multistep", "linear", "none", "cpu", "auto", "fp32", "bf16", "poisson",
         "direct", "ce", "mse", "rate", "zero"]
# YAML text placed verbatim where a value (or key) would be; {marker} is a file the test asserts never appears.
RAW = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/new:builtins.open ['{marker}', 'w']",
    "!!python/name:os.system",
    "!!binary aGk=", "!!set {a: null}", "!!timestamp 2001-12-14", "!!omap [a: 1]", "!!str 5", "!!int '7'",
    "!!float nan", "!!float '0.5'", "!!bool 'true'", "!!null ''", "!!map {a: 1}", "!nonstandard 1",
    "&A [1, 2]", "*A", "&R [*R]", "&M {a: *M}", "*undefined",
    "[&L0 [x, x, x, x], &L1 [*L0, *L0, *L0, *L0], &L2 [*L1, *L1, *L1, *L1], &L3 [*L2, *L2, *L2, *L2], "
    "&L4 [*L3, *L3, *L3, *L3], &L5 [*L4, *L4, *L4, *L4], &L6 [*L5, *L5, *L5, *L5], [*L6, *L6, *L6, *L6]]",
    ".inf", "-.inf", ".nan", ".NaN", "1e400", "-1e400", "1e-3", "9" * 25, "-" + "9" * 25, "0x1F", "0o17", "1:30",
    "1_000", "yes", "off", "~", "2020-01-01",
    "[" * 40 + "]" * 40, "{a: " * 40 + "1" + "}" * 40, "[" * 20 + "]" * 20,
    "'${train.seed}'", "'${oc.env:HOME}'", "'${nope}'", "'${'", "'${oc.decode:[1, 2]}'", "'\\${escaped}'",
    "{<<: {a: 1}, b: 2}", "{? [1, 2] : 3}", "{a: 1, a: 2}", "[1, 2", "{a: 1", "@bad", "`bad", "'open", "\"\\x\"",
    "|\n  block\n", "\t1", "\x00", "\ufeff1",
]
_PLACEHOLDER = re.compile(r"'?@@RAW(\d+)@@'?")  # quoted by yaml.safe_dump (a leading @ is reserved), or bare


def _raw():
    return st.integers(0, len(RAW) - 1).map(lambda i: f"@@RAW{i}@@")


def _odd():
    """Scalars a schema rarely wants: any int or float (huge, non-finite), any text, raw YAML."""
    return st.one_of(st.integers(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8), _raw())


def _scalars():
    return st.one_of(st.integers(0, 8), st.floats(0, 1), st.sampled_from(NAMES), st.booleans(), st.none(), _odd())


def _values(keys):
    return st.recursive(
        _scalars(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=10,
    )


def _typed(tp: str, default):
    """Mostly valid values for a field annotated ``tp`` (its default among them), sometimes odd ones."""
    if tp.endswith(" | None"):
        return st.one_of(st.none(), _typed(tp[: -len(" | None")], None))
    by_type = {
        "bool": st.booleans(),
        "int": st.integers(1, 5),
        "float": st.floats(0.01, 0.99),
        "str": st.sampled_from(NAMES),
        "list[float]": st.lists(st.floats(0.01, 0.99), min_size=2, max_size=2),
        "list[int]": st.lists(st.integers(1, 5), max_size=3),
        "dict[str, Any]": st.dictionaries(st.sampled_from(["hidden", "dropout", "a"]), st.integers(1, 4), max_size=2),
    }
    typed = by_type.get(tp, _scalars())
    known = st.just(default) if default is not None and not isinstance(default, list | dict) else typed
    return st.one_of(known, known, typed)


def _section(cls, allowed, extra=None):
    """A mapping of some of dataclass ``cls``'s fields (a nested dataclass as a nested mapping)."""
    optional = {}
    for f in dataclasses.fields(cls):
        if not allowed(f.name):
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        optional[f.name] = (_section(type(default), allowed) if dataclasses.is_dataclass(default)
                            else _typed(str(f.type), default))
    return st.fixed_dictionaries(extra or {}, optional=optional)


def _plausible_recipe(allowed, method):
    """A recipe of typed values for real keys, half of them with one value or key made odd."""
    sections = {s: _section(type(getattr(RunConfig(), s)), allowed) for s in SECTIONS if s != "method" and allowed(s)}
    sections["method"] = _section(METHODS[method], allowed, {"name": st.just(method)})
    recipe = st.fixed_dictionaries({}, optional=sections)
    return st.one_of(recipe, recipe.flatmap(_one_odd))


def _one_odd(recipe):
    """``recipe`` with one value (or a new key) somewhere in it replaced by an odd value."""
    places = [(recipe, None)]
    places += [(body, key) for body in recipe.values() for key in body]
    places += [(body[key], k) for body in recipe.values() for key in body if isinstance(body[key], dict)
               for k in body[key]]

    def put(choice):
        (where, key), value, new_key = choice
        where[key if key is not None and new_key is None else new_key or "x"] = value
        return recipe

    new_key = st.one_of(st.none(), st.none(), st.text(max_size=6), _raw())
    return st.tuples(st.sampled_from(places), _values(st.text(max_size=4)), new_key).map(put)


def _keys(section, allowed):
    real = [k for k in KEYS[section] if allowed(k)]
    return st.one_of(st.sampled_from(real), st.sampled_from(real), st.text(max_size=6), _raw())


def _hostile_recipe(allowed):
    section = st.sampled_from([s for s in SECTIONS if allowed(s)])
    body = section.flatmap(lambda s: st.dictionaries(_keys(s, allowed), _values(_keys(s, allowed)), max_size=5))
    return st.dictionaries(
        st.one_of(section, section, section, st.text(max_size=6), _raw()),
        st.one_of(body, body, body, _values(st.text(max_size=4))),
        max_size=6,
    )


def _with_raw(text, marker):
    return _PLACEHOLDER.sub(lambda m: RAW[int(m.group(1))].replace("{marker}", str(marker)), text)


def _recipe_text(marker, allowed, method):
    def dump(d):
        return yaml.safe_dump(d, allow_unicode=True, sort_keys=False)

    plausible = _plausible_recipe(allowed, method).map(dump)
    hostile = _hostile_recipe(allowed).map(dump)
    junk = st.one_of(st.text(max_size=40), _raw(), st.just(""))
    return st.one_of(plausible, plausible, plausible, hostile, junk).map(lambda t: _with_raw(t, marker))


def _flow(value):
    """``value`` as one line of flow YAML (what a user types after ``key=``)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(_flow, value)) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    return value if value.startswith("@@RAW") else json.dumps(value, ensure_ascii=False)


def _overrides(marker, allowed, method):
    """Mostly ``section.key=value`` of a plausible recipe, else odd keys and values and malformed items."""
    flat = _plausible_recipe(allowed, method).map(
        lambda d: [f"{s}.{k}={_flow(v)}" for s, body in d.items() if isinstance(body, dict) for k, v in body.items()]
    )
    real = st.sampled_from([s for s in SECTIONS if allowed(s)]).flatmap(
        lambda s: st.lists(_keys(s, allowed), min_size=1, max_size=3).map(lambda ks: ".".join([s, *ks]))
    )
    key = st.one_of(real, real, real, st.text(max_size=10), st.sampled_from(["", "a..b", ".x", "x."]))
    value = _values(st.text(max_size=4)).map(_flow)
    item = st.one_of(st.tuples(key, st.sampled_from(["=", "=", "=", ""]), value).map("".join), st.text(max_size=12))
    odd = st.lists(item, max_size=3)
    items = st.one_of(flat, flat, st.tuples(flat, odd).map(lambda t: t[0] + t[1]), odd)
    return items.map(lambda ts: [_with_raw(t, marker) for t in ts])


def _check_valid(cfg, tmp):
    """An accepted config: every section passes its schema again, numbers are finite, and it round-trips."""
    assert isinstance(cfg, RunConfig)
    for name in SECTIONS:
        section = getattr(cfg, name)
        if name == "method":
            assert method_options(section.name, dataclasses.asdict(section.options)) == section.options
        else:
            assert to_dataclass(type(section), dataclasses.asdict(section), name) == section
    check_numbers(cfg.method.options, "method")
    check_numbers(cfg, "")
    save_config(cfg, tmp / "config.yaml")
    assert load_config(tmp / "config.yaml") == cfg


def _everything_under(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


# No example database (no replay of old failures from .hypothesis/examples) and no explain phase (slow).
PROPERTY = settings(
    deadline=None, database=None, suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink]
)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    return tmp_path_factory.mktemp("sandbox")


def _load_config_property(sandbox, data):
    marker = sandbox / "pwned"
    recipe = sandbox / "r.yaml"
    method = data.draw(st.sampled_from(sorted(METHODS)), label="method")
    text = data.draw(_recipe_text(marker, lambda k: True, method), label="recipe")
    overrides = data.draw(_overrides(marker, lambda k: True, method), label="overrides")
    recipe.write_text(text, encoding="utf-8")
    try:
        cfg = load_config(recipe, overrides)
    except UserError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))
        event("refused")
    else:
        _check_valid(cfg, sandbox)
        event("accepted")
    assert not marker.exists()


@settings(PROPERTY, max_examples=150)  # 0.23 s an example here: 500 took 114 s of CI's 15 minutes (5,000: -m slow)
@given(data=st.data())
def test_any_recipe_and_overrides_load_or_give_one_line(sandbox, data):
    _load_config_property(sandbox, data)


@pytest.mark.slow
@settings(PROPERTY, max_examples=5000)
@given(data=st.data())
def test_any_recipe_and_overrides_load_or_give_one_line_thousands(sandbox, data):
    _load_config_property(sandbox, data)


def _cli_property(tmp_path_factory, monkeypatch, data):
    root = tmp_path_factory.mktemp("cli")
    monkeypatch.chdir(root)
    marker = root / "pwned"
    allowed = lambda key: key not in SIZE_KEYS  # noqa: E731
    method = data.draw(st.sampled_from(["ann", "stbp", "spikebp"]), label="method")
    (root / "r.yaml").write_text(data.draw(_recipe_text(marker, allowed, method), label="recipe"), encoding="utf-8")
    overrides = data.draw(_overrides(marker, allowed, method), label="overrides")
    before = _everything_under(root)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        # "--": an override may start with "-" (argparse would take it for an option and print its usage)
        code = main(["train", "--out", "out", "--", "r.yaml", *overrides, *TINY, f"method.name={method}"])
    lines = err.getvalue().splitlines()
    event(f"exit {code}")
    assert "Traceback" not in err.getvalue()
    if code == 0:
        assert (root / "out" / "summary.json").is_file()
    else:
        assert code == 2 and lines and lines[-1].startswith("deepspike: error: "), lines
    assert [p for p in _everything_under(root) if p.split("/")[0] != "out"] == before
    assert not marker.exists()


@settings(PROPERTY, max_examples=40)
@given(data=st.data())
def test_cli_train_exits_0_or_2_with_one_line_and_writes_only_out(tmp_path_factory, monkeypatch, data):
    _cli_property(tmp_path_factory, monkeypatch, data)


@pytest.mark.slow
@settings(PROPERTY, max_examples=400)
@given(data=st.data())
def test_cli_train_exits_0_or_2_with_one_line_and_writes_only_out_hundreds(tmp_path_factory, monkeypatch, data):
    _cli_property(tmp_path_factory, monkeypatch, data)
