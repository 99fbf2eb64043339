"""api.reports: the output checks of ``export`` (made before any run is read) and ``analyze``'s own energy presets;
no run is trained here."""

import re

import pytest

import deepspike as ds
from deepspike.api import reports
from deepspike.cli import main
from deepspike.models.energy import PRESETS, energy_table


@pytest.mark.parametrize("name, content", [
    ("analysis.json", b'{"accuracy": 0.9}'), ("report.md", b"# report\n"), ("thresholds.json", b"[1.0]"),
    ("notes.nir", b"not HDF5 after all"),
])
def test_export_refuses_to_write_over_a_file_that_is_not_nir(tmp_path, capsys, name, content):
    """``export RUN --nir RUN/analysis/analysis.json`` wrote the HDF5 graph over the analysis (exit 0)."""
    target = tmp_path / name
    target.write_bytes(content)
    assert main(["export", str(tmp_path), "--nir", str(target)]) == 2
    err = capsys.readouterr().err
    assert err == (f"deepspike: error: --nir {target} exists and is not a NIR file; writing there would replace it: "
                   "choose another path\n")
    assert target.read_bytes() == content


@pytest.mark.parametrize("content", [b"\x89HDF\r\n\x1a\n" + b"\0" * 24, b""])
def test_export_may_replace_an_earlier_nir_file_or_an_empty_one(tmp_path, content):
    """Past the output check, the missing run is the error: the file itself was accepted."""
    target = tmp_path / "model.nir"
    target.write_bytes(content)
    with pytest.raises(ds.DataNotFoundError, match="is not a run directory"):
        ds.export(tmp_path / "no_run", target)
    assert target.read_bytes() == content


def test_an_energy_preset_given_to_analyze_prices_that_call_only(tmp_path, monkeypatch):
    """A preset of one ``analyze(energy_presets=...)`` call stayed registered: the next call's energy table (and
    every later analysis in the process) priced it too. Also after a call that fails, the registry is as before."""
    tables = []

    def fake_analysis(run_dir, out, options):
        tables.append(energy_table(100.0, None))  # the energy table analyze_run writes, from models.energy.PRESETS
        if len(tables) == 3:
            raise ds.ConfigError("failed midway")
        return {}

    monkeypatch.setattr(reports, "analyze_run", fake_analysis)
    before = dict(PRESETS)
    ds.analyze(tmp_path, tmp_path / "a1", energy_presets=("mine:mac=2",))
    ds.analyze(tmp_path, tmp_path / "a2")
    with pytest.raises(ds.ConfigError, match="failed midway"):
        ds.analyze(tmp_path, tmp_path / "a3", energy_presets=("other:ac=1",))
    assert tables[0]["mine"]["ann_pj"] == 200.0 and "mine" not in tables[1]
    assert "other" in tables[2] and dict(PRESETS) == before


@pytest.mark.parametrize("steps", [10**11, 10_001, 0, 2.5, "5"])
def test_export_check_refuses_steps_outside_its_range_before_reading_the_run(tmp_path, steps):
    """``export --check --steps 100000000000`` ended in a traceback (torch could not allocate 51 TB of sample
    input); ``steps="5"`` from Python was a TypeError."""
    with pytest.raises(ds.ConfigError, match=r"^--steps must be a whole number from 1 to 10,000, got "):
        ds.export(tmp_path / "no_run", check=True, steps=steps)


@pytest.mark.parametrize("args, message", [
    (["--qat-epochs", "5"], "--qat-epochs counts the epochs of each --qat stage; give it with --qat, e.g. --qat 8,4"),
    (["--qat-epochs", "0"], "--qat-epochs counts the epochs of each --qat stage; give it with --qat, e.g. --qat 8,4"),
    (["--per-channel", "--bits", ""], "--per-channel quantizes the weights of the --bits sweep and the --qat stages; "
                                      "give --bits or --qat"),
])
def test_analyze_refuses_an_option_of_a_part_not_asked_for(tmp_path, capsys, monkeypatch, args, message):
    """``analyze RUN --qat-epochs 5`` without ``--qat`` (and ``--per-channel`` with an empty ``--bits`` and no
    ``--qat``) exited 0 after the whole analysis, the option ignored; refused before the run is read now."""
    monkeypatch.setattr(reports, "analyze_run", lambda *a: pytest.fail("the run was analysed"))
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "a"), *args]) == 2
    assert capsys.readouterr().err == f"deepspike: error: {message}\n"


@pytest.mark.parametrize("kwargs, message", [
    ({"energy_presets": "chip:mac=1"}, "energy_presets must be a list of NAME:mac=PJ,ac=PJ,spike=PJ"),
    ({"qat_bits": 8}, "QAT stages must be a list of bit widths, e.g. (8, 4, 2), got 8"),
])
def test_analyze_refuses_a_bare_string_or_number_where_a_list_is_wanted(tmp_path, monkeypatch, kwargs, message):
    """One preset given as a string was read letter by letter ("bad energy preset 'c'"), one QAT stage as a number
    was a TypeError ('int' object is not iterable); both are named before the run is read (tmp_path holds none)."""
    monkeypatch.setattr(reports, "analyze_run", lambda *a: pytest.fail("the run was analysed"))
    with pytest.raises(ds.ConfigError, match=re.escape(message)):
        ds.analyze(tmp_path, tmp_path / "a", **kwargs)


def test_analyze_takes_qat_epochs_and_per_channel_with_their_part(tmp_path, monkeypatch):
    """``qat_epochs`` reaches the QAT stages (default 1); ``per_channel`` goes with ``--qat`` alone."""
    calls = []
    monkeypatch.setattr(reports, "analyze_run", lambda *a: {})
    monkeypatch.setattr(reports, "check_qat", lambda *a, **k: None)
    monkeypatch.setattr(reports, "quantization_aware_retrain", lambda *a: calls.append(a[2:]) or [])
    ds.analyze(tmp_path, tmp_path / "a", ds.AnalysisOptions(bits=(), per_channel=True), qat_bits=(8,), qat_epochs=3)
    ds.analyze(tmp_path, tmp_path / "b", qat_bits=(4,))
    assert calls == [((8,), 3, True), ((4,), 1, False)]


def test_compare_refuses_to_write_over_a_file_that_is_no_comparison(tmp_path, capsys):
    """``compare RUN --out recipe.yaml`` replaced the recipe with the table (exit 0); an earlier table or an empty
    file is still replaced: past the output check, the missing run is the error."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train: {epochs: 3}\n")
    assert main(["compare", str(tmp_path / "no_run"), "--out", str(recipe)]) == 2
    assert capsys.readouterr().err == (f"deepspike: error: --out {recipe} exists and is not a table of compare; "
                                       "writing there would replace it: choose another path\n")
    assert recipe.read_text() == "train: {epochs: 3}\n"
    for name, content in (("old.md", reports.markdown_table([])), ("empty.md", "")):
        (tmp_path / name).write_text(content)
        with pytest.raises(ds.DataNotFoundError, match="is not a run directory"):
            ds.compare([tmp_path / "no_run"], out=tmp_path / name)
        assert (tmp_path / name).read_text() == content
