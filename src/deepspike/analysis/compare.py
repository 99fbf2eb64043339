"""One table across runs and methods: accuracy (and the test samples it is over), latency, spikes, synaptic ops,
energy, 4-bit accuracy.

``samples`` shows how many test samples each row was measured on: a run's stored analysis keeps its own count
(``analyze --limit``), whatever ``compare --limit`` asks of the runs analysed now, so two rows' accuracies may be
over different samples (they looked alike).

The energy is the synaptic operations' and the spikes' (``energy (nJ)``); ``+ updates (nJ)`` adds every neuron's own
state update at every step (``neurons.update_cost``; an ANN row repeats its energy: its activations are not priced,
one comparison per neuron and inference).

Each run's numbers come from its ``analysis.json`` (``deepspike analyze``) when one exists under
``RUN/analysis/`` (or is given directly) and measured the run's current checkpoint, otherwise from a fresh
``analyze_run`` without the long sweeps. A run folder's row is named by the folder as given, as a run analysed now
is (its stored analysis keeps the path ``analyze`` was given, from another folder or before the run was copied).
A file that is not UTF-8 strict JSON (NaN and Infinity are not JSON numbers), lacks a field of a row (``ROW_FIELDS``:
key and type) or holds an accuracy outside [0, 1] is a one-line ``DataCorruptError`` naming it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from deepspike.analysis.report import AnalysisOptions, analyze_run, check_limit
from deepspike.core.errors import ConfigError, DataCorruptError, DataNotFoundError
from deepspike.core.options import INT64_MAX, shown_key, shown_value
from deepspike.data.paths import one_line
from deepspike.models.energy import BUILT_IN_PRESETS, PRESETS
from deepspike.training.runs import RunDir

COLUMNS = (
    "run",
    "method",
    "model",
    "accuracy (%)",
    "samples",
    "latency",
    "spikes/inf",
    "synops/inf",
    "ANN MACs/inf",
    "energy (nJ)",
    "+ updates (nJ)",
    "acc @4 bit (%)",
)

_NUMBER = (int, float)
_NUMBER_OR_NULL = (int, float, type(None))
_OBJECT_OR_NULL = (dict, type(None))
# What ``comparison_row`` reads from an analysis: (key path, JSON types allowed, whether the key may be missing).
# "*" stands for every key of the object above; a path below a null or missing object is not looked at.
ROW_FIELDS: tuple[tuple[tuple[str, ...], tuple[type, ...], bool], ...] = (
    (("run",), (str,), False),
    (("method",), (str,), False),
    (("model",), (str,), False),
    (("accuracy",), _NUMBER, False),
    (("samples",), (int,), True),  # the test samples the accuracy is over (a row of another count says so)
    (("accuracy_4bit",), _NUMBER_OR_NULL, True),
    (("checkpoint_sha256",), (str, type(None)), True),
    (("run_path",), (str,), True),
    (("activity",), _OBJECT_OR_NULL, True),
    (("activity", "spikes_per_sample"), _NUMBER_OR_NULL, False),
    (("latency",), _OBJECT_OR_NULL, True),
    (("latency", "kind"), (str,), False),
    (("latency", "value"), _NUMBER, False),
    (("operations",), (dict,), False),
    (("operations", "ann_macs_per_sample"), _NUMBER, False),
    (("operations", "snn_synops_per_sample"), _NUMBER_OR_NULL, False),
    (("energy",), (dict,), False),
    (("energy", "*"), (dict,), True),  # a preset without an entry has no energy
    (("energy", "*", "snn_pj"), _NUMBER_OR_NULL, True),
    (("energy", "*", "ann_pj"), _NUMBER_OR_NULL, True),
    (("energy", "*", "snn_with_updates_pj"), _NUMBER_OR_NULL, True),  # not in analyses before session 34
)
ACCURACY_FIELDS = ("accuracy", "accuracy_4bit")
"""Fractions of the test samples classified right, in [0, 1] (an accuracy of -5 was shown as -500 %)."""
_JSON_NAMES = {str: "a string", int: "a number", float: "a number", dict: "an object", list: "a list",
               bool: "a boolean", type(None): "null"}


def load_or_analyze(run: str | Path, limit: int | None = 1000) -> dict[str, Any]:
    """The analysis of ``run``: ``run`` itself if it is an ``analysis.json``, else ``run/analysis/analysis.json``
    or ``run/analysis.json`` while it measured the run's current checkpoint (``checkpoint_sha256``), else one
    computed now; for a run folder ``run``, ``"run"`` is ``run`` as given (a copy of a run showed the original's
    name, a run analysed from another folder that folder's relative path). An ``analysis.json`` given directly whose
    run has trained on since is a one-line ``ConfigError``: its numbers are of weights the run no longer has."""
    run = Path(run)
    if run.is_file() and run.suffix == ".json":
        analysis = read_analysis(run)
        if _is_stale(analysis, *_recorded_runs(analysis)):
            raise _stale_error(run, analysis)
        return analysis
    for candidate in (run / "analysis" / "analysis.json", run / "analysis.json"):
        if candidate.is_file():
            analysis = read_analysis(candidate)
            if not _is_stale(analysis, run, *_recorded_runs(analysis)):
                return {**analysis, "run": str(run)} if RunDir(run).is_run_dir() else analysis
            if not RunDir(run).is_run_dir():  # an analysis folder (analyze --out) of a run that trained on
                raise _stale_error(candidate, analysis)
    options = AnalysisOptions(
        limit=limit, bits=(4,), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False
    )
    return analyze_run(run, None, options)


def _recorded_runs(analysis: dict[str, Any]) -> list[Path]:
    """Where the analysed run was: its absolute ``run_path`` (analyses since session 24), then ``run`` as given."""
    return [Path(p) for p in (analysis.get("run_path"), analysis["run"]) if isinstance(p, str)]


def _stale_error(path: Path, analysis: dict[str, Any]) -> ConfigError:
    return ConfigError(f"{shown_key(str(path))} analysed an earlier checkpoint of {shown_key(analysis['run'])} (the "
                       "run has trained on since); run deepspike analyze on it again")


def _is_stale(analysis: dict[str, Any], *folders: Path) -> bool:
    """Whether ``analysis`` records a checkpoint digest and the run's checkpoint is now another one; the run is
    the first of ``folders`` that holds a checkpoint. An analysis written before digests were recorded, or whose
    run cannot be found, cannot be checked and counts as current."""
    recorded = analysis.get("checkpoint_sha256")
    if not isinstance(recorded, str):
        return False
    for folder in folders:
        try:
            current = RunDir(folder).checkpoint_digest()
        except (OSError, ValueError, DataNotFoundError):  # a name the OS refuses (a NUL byte), unreadable
            continue
        if current is not None:
            return current != recorded
    return False


def read_analysis(path: Path) -> dict[str, Any]:
    """The analysis stored at ``path`` (an ``analysis.json``), holding every field of ``ROW_FIELDS``; a one-line
    ``DataCorruptError`` ("PATH is not an analysis file (why)") when it does not."""
    data = path.read_bytes()
    try:
        analysis = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except UnicodeDecodeError as e:
        problem = f"not UTF-8 text: byte {data[e.start]:#04x} at offset {e.start}"
    except (ValueError, RecursionError) as e:  # JSONDecodeError; an int of too many digits; nesting too deep
        problem = f"not JSON: {one_line(e) or type(e).__name__}"
    else:
        problem = analysis_problem(analysis)
    if problem is not None:
        raise DataCorruptError(f"{shown_key(str(path))} is not an analysis file ({problem})")
    return analysis


def _refuse_constant(constant: str) -> None:
    """``json.loads``' ``parse_constant``: NaN, Infinity and -Infinity are not JSON (``analyze`` writes non-finite
    numbers as null), so a file holding one is refused (it was read, and its row showed ``nan`` and ``inf`` cells)."""
    raise ValueError(f"{constant} is not a JSON number")


def analysis_problem(analysis: Any) -> str | None:
    """What keeps ``analysis`` from giving a table row: its first field of ``ROW_FIELDS`` that is missing or of
    another type, or an accuracy (``ACCURACY_FIELDS``) that is not a fraction in [0, 1]; None when it has them all."""
    if not isinstance(analysis, dict):
        return f"it holds {_json_name(analysis)}, not an object"
    for path, types, optional in ROW_FIELDS:
        problem = _field_problem(analysis, path, types, optional, ())
        if problem is not None:
            return problem
    for key in ACCURACY_FIELDS:  # types checked above: a number (or null where allowed)
        value = analysis.get(key)
        if value is not None and not 0 <= value <= 1:
            return f"{shown_value(key)} is {shown_value(value)}, not a fraction in [0, 1]"
    return None


def _field_problem(
    value: dict, path: tuple[str, ...], types: tuple[type, ...], optional: bool, seen: tuple[str, ...]
) -> str | None:
    """The ``ROW_FIELDS`` rule ``(path, types, optional)`` checked below ``value`` (reached by keys ``seen``)."""
    key, rest = path[0], path[1:]
    keys = list(value) if key == "*" else [key]
    for k in keys:
        name = ".".join((*seen, k))
        if k not in value:
            return None if rest or optional else f"no {shown_value(name)}"
        item = value[k]
        if not rest:
            problem = _value_problem(item, types)
        elif isinstance(item, dict):
            problem = _field_problem(item, rest, types, optional, (*seen, k))
        else:
            problem = None
        if problem is not None:
            return problem if rest else f"{shown_value(name)} is {problem}"
    return None


def _value_problem(item: Any, types: tuple[type, ...]) -> str | None:
    """None when ``item`` is of one of the JSON ``types``, else "X, not Y"; a boolean is not a number, nor is an
    integer beyond 64 bits (a table cell could not take it: ``100 * x``, ``x / 1000``)."""
    if isinstance(item, types) and not (isinstance(item, bool) and bool not in types):
        if not isinstance(item, int) or isinstance(item, bool) or -INT64_MAX - 1 <= item <= INT64_MAX:
            return None
        return f"an integer of {item.bit_length()} bits, not a number of at most 64 bits"
    expected = " or ".join(dict.fromkeys(_JSON_NAMES[t] for t in types))
    return f"{_json_name(item)}, not {expected}"


def _json_name(value: Any) -> str:
    """``value``'s JSON type in words ("a string", "null", ...)."""
    return _JSON_NAMES.get(type(value), type(value).__name__)


def comparison_row(a: dict[str, Any], preset: str = "45nm_fp32") -> dict[str, Any]:
    """One table row from an analysis dict; the energy is the SNN's (ANN's for ANN runs) at ``preset``: one the
    analysis holds (a preset of one's own, given to ``analyze --add-preset``, is stored with the energies it priced)
    or a known one (built in or registered in this process; none stored: no energy), else a one-line
    ``ConfigError``."""
    if preset not in a["energy"] and preset not in PRESETS:
        raise ConfigError(f"energy preset {preset!r} is neither built in ({', '.join(sorted(BUILT_IN_PRESETS))}) "
                          f"nor in the analysis of {a['run']} (analyze --add-preset {preset}:mac=PJ,ac=PJ,spike=PJ "
                          "stores one)")
    act, ops, lat = a.get("activity"), a["operations"], a.get("latency")
    energy = a["energy"].get(preset, {})
    pj = energy.get("snn_pj") if act else energy.get("ann_pj")
    with_updates = energy.get("snn_with_updates_pj") if act else pj
    latency = None
    if lat:
        latency = f"T={lat['value']:.6g}" if lat["kind"] == "timesteps" else f"t={lat['value']:.3g}"  # T: mean steps
    return {
        "run": a["run"],
        "method": a["method"],
        "model": a["model"],
        "accuracy (%)": 100 * a["accuracy"],
        "samples": a.get("samples"),
        "latency": latency,
        "spikes/inf": act["spikes_per_sample"] if act else None,
        "synops/inf": ops["snn_synops_per_sample"] if act else ops["ann_macs_per_sample"],
        "ANN MACs/inf": ops["ann_macs_per_sample"],
        "energy (nJ)": pj / 1000 if pj is not None else None,
        "+ updates (nJ)": with_updates / 1000 if with_updates is not None else None,
        "acc @4 bit (%)": 100 * a["accuracy_4bit"] if a.get("accuracy_4bit") is not None else None,
    }


def _cell(v: Any) -> str:
    """One table cell: numbers with thousands separators, None as ``-``, text with ``|`` and line breaks escaped (a
    run folder may be named ``a|b``)."""
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return " ".join(str(v).replace("\\", "\\\\").replace("|", "\\|").splitlines())


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """A Markdown table of ``rows`` with ``COLUMNS``."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * 3 + "---:|" * (len(COLUMNS) - 3)]
    lines += ["| " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def compare_runs(runs: list[str | Path], preset: str = "45nm_fp32", limit: int | None = 1000) -> list[dict]:
    """Rows for ``runs`` in the given order; ``limit`` (test samples of a run analysed now) and that ``preset`` is a
    name are checked first, also when every run has its analysis."""
    check_limit(limit)
    if not isinstance(preset, str):  # a list ended in "unhashable type: 'list'", after every run was analysed
        raise ConfigError(f"preset must be the name of an energy preset, e.g. '45nm_fp32', got {shown_value(preset)}")
    return [comparison_row(load_or_analyze(r, limit), preset) for r in runs]
