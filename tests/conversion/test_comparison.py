"""``conversion.comparison.convert_norms``: every norm is checked before the first is converted, so a refused
norm leaves nothing behind and the same --out takes the corrected list."""

import pytest

from deepspike.cli import main
from deepspike.config import load_config
from deepspike.conversion.comparison import convert_norms
from deepspike.conversion.pipeline import convert_run
from deepspike.core.errors import ConfigError
from deepspike.training.trainer import Trainer

QUIET = {"log": lambda s: None}


@pytest.fixture(scope="module")
def relu_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("relu") / "run"
    Trainer(load_config(None, ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]", "data.name=digits",
                               "train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false"]), run).fit()
    return run


@pytest.mark.parametrize(("norms", "options", "message"), [
    (["spike", "qcfs"], {}, "--norm qcfs needs an ANN trained with method.activation=qcfs"),
    (["max", "channel"], {"reset": "zero"}, "--norm channel converts with signed neurons, which need reset by sub"),
    (["max", "percentile"], {"percentile": 0.0}, r"method.percentile must be in \(0, 100\], got 0.0"),
    (["max", "channel"], {"spike_value": "one"}, r"per-channel thresholds need spikes that carry their threshold"),
])
def test_a_refused_later_norm_converts_none_of_the_earlier(relu_run, tmp_path, norms, options, message):
    """Before, the first norm was calibrated, simulated and written to OUT/<norm>, then the second refused; a retry
    with the list corrected was refused in turn ('OUT/spike already holds a run')."""
    with pytest.raises(ConfigError, match=message):
        convert_norms(relu_run, tmp_path / "cmp", norms, 4, calib_timesteps=4, limit=10, **options, **QUIET)
    assert not (tmp_path / "cmp").exists()


def test_a_norm_folder_that_holds_a_run_is_refused_before_any_is_converted(relu_run, tmp_path):
    (tmp_path / "cmp" / "max").mkdir(parents=True)
    (tmp_path / "cmp" / "max" / "checkpoint.pt").write_bytes(b"an earlier conversion")
    with pytest.raises(ConfigError, match=r"cmp/max already holds a run"):
        convert_norms(relu_run, tmp_path / "cmp", ["spike", "max"], 4, calib_timesteps=4, limit=10, **QUIET)
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["max"]


def test_the_corrected_list_then_converts_into_the_same_out(relu_run, tmp_path, capsys):
    out = str(tmp_path / "cmp")
    common = ["--timesteps", "4", "--calib-timesteps", "4", "--limit", "10", "--quiet", "--out", out]
    assert main(["convert", str(relu_run), "--norm", "spike,qcfs", *common]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["convert", str(relu_run), "--norm", "spike,max", *common]) == 0
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir() if p.is_dir()) == ["max", "spike"]


def test_the_comparison_tables_give_the_energy_with_the_neurons_updates(relu_run, tmp_path):
    """The third table is the SNN energy with every IF neuron's two ACs per step added: never below the second."""
    result = convert_norms(relu_run, tmp_path / "cmp", ["max", "spike"], timesteps=4, calib_timesteps=4, limit=10,
                           **QUIET)
    assert "SNN with the neurons' own updates / ANN energy per image (45nm_fp32)" in result["table"]
    rows = result["rows"]
    assert len(rows) == 2 * 3  # two norms at T = 1, 2, 4
    assert all(r["energy_with_updates_snn_over_ann"] > r["energy_snn_over_ann"] for r in rows)


def test_a_comparison_into_a_converted_run_is_refused_and_keeps_its_figure(relu_run, tmp_path):
    """Before, ``--norm max,spike --out`` a converted run wrote OUT/max, OUT/spike and the comparison's files beside
    the run's own, and its accuracy_vs_timesteps.png replaced the run's figure."""
    out = tmp_path / "snn"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"a converted run")
    (out / "accuracy_vs_timesteps.png").write_bytes(b"the run's figure")
    with pytest.raises(ConfigError, match=r"^\S+snn holds a run \(its checkpoint.pt\); pick another --out"):
        convert_norms(relu_run, out, ["max", "spike"], 4, calib_timesteps=4, limit=10, **QUIET)
    assert sorted(p.name for p in out.iterdir()) == ["accuracy_vs_timesteps.png", "checkpoint.pt"]
    assert (out / "accuracy_vs_timesteps.png").read_bytes() == b"the run's figure"


def test_a_conversion_into_a_comparison_is_refused_and_keeps_its_figure(relu_run, tmp_path):
    """Before, ``convert --norm max --out`` a comparison's folder converted into it and its accuracy_vs_timesteps.png
    replaced the comparison's figure."""
    out = tmp_path / "cmp"
    convert_norms(relu_run, out, ["max", "spike"], 4, calib_timesteps=4, limit=10, **QUIET)
    figure = (out / "accuracy_vs_timesteps.png").read_bytes()
    with pytest.raises(ConfigError, match=r"^\S+cmp holds a comparison of norms \(its comparison.json\)"):
        convert_run(relu_run, out, norm="max", timesteps=4, limit=10, **QUIET)
    assert (out / "accuracy_vs_timesteps.png").read_bytes() == figure and not (out / "checkpoint.pt").exists()


def test_an_empty_out_is_refused_not_read_as_the_current_folder(relu_run, tmp_path, monkeypatch):
    """``Path("")`` is ``.``: a comparison with ``--out ''`` wrote max/, spike/ and comparison.* into the current
    folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="^--out is empty; give the name of a folder$"):
        convert_norms(relu_run, "", ["max", "spike"], 4, calib_timesteps=4, limit=10, **QUIET)
    assert list(tmp_path.iterdir()) == []
