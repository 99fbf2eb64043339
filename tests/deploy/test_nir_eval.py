"""``deepspike eval MODEL.nir --data NAME``: a run and the NIR file exported from it score the same; a file that
does not say its coding or time steps asks for them; options of the other kind are refused."""

import json

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from deepspike.cli import main  # noqa: E402
from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.data import load_dataset  # noqa: E402
from deepspike.deploy import from_nir  # noqa: E402
from deepspike.deploy.nir_eval import check_outputs, decided_class, nir_encoder  # noqa: E402
from deploy.nir_files import tiny_graph, write  # noqa: E402


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def _run_and_file(capsys, run, path, data: str, *options: str) -> tuple[dict, dict]:
    """``deepspike eval RUN`` and ``deepspike eval FILE.nir --data DATA`` (each with ``options``): their summaries."""
    capsys.readouterr()
    assert main(["eval", str(run), *options]) == 0
    ours = _json(capsys)
    assert main(["eval", str(path), "--data", data, *options]) == 0
    return ours, _json(capsys)


@pytest.fixture(scope="module")
def run_and_file(tmp_path_factory):
    """A standardised digits run with signed Poisson input (30 hidden LIF neurons, T = 6) and its NIR export."""
    folder = tmp_path_factory.mktemp("nir_eval")
    run = folder / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=6", "method.encoder=bipolar", "model.name=mlp",
                 "model.args.hidden=[30]", "data.normalize=true", "train.epochs=3", "train.progress=false",
                 "--out", str(run)]) == 0
    assert main(["export", str(run), "--nir", str(folder / "model.nir")]) == 0
    return run, folder / "model.nir"


def test_a_run_and_its_exported_file_score_the_same(run_and_file, capsys):
    run, path = run_and_file
    ours, theirs = _run_and_file(capsys, run, path, "digits")
    assert 0.2 < ours["test_accuracy"] < 1.0  # trained, not perfect: the comparison can fail
    assert theirs["accuracy"] == ours["test_accuracy"] and theirs["samples"] == ours["samples"] == 360
    assert (theirs["coding"], theirs["timesteps"], theirs["decode"]) == ("bipolar", 6, "rate")
    graph = nir.read(str(path))
    assert len(graph.metadata["input_mean"]) == 1  # the run's standardisation travels with the file
    assert main(["eval", str(path), "--data", "digits", "--timesteps", "1", "--limit", "100"]) == 0
    short = _json(capsys)
    assert short["samples"] == 100 and short["timesteps"] == 1 and short["accuracy"] != theirs["accuracy"]


def test_a_file_that_does_not_say_its_coding_asks_for_it(run_and_file, tmp_path, capsys):
    _, path = run_and_file
    graph = nir.read(str(path))
    graph.metadata = {"dt": graph.metadata["dt"]}  # as another tool writes it
    bare = tmp_path / "bare.nir"
    nir.write(str(bare), graph)
    capsys.readouterr()
    assert main(["eval", str(bare), "--data", "digits"]) == 2
    assert "does not say how its input is coded (no metadata 'encoder'): pass --encoder" in capsys.readouterr().err
    assert main(["eval", str(bare), "--data", "digits", "--encoder", "direct"]) == 2
    assert "pass --timesteps" in capsys.readouterr().err
    assert main(["eval", str(bare), "--data", "digits", "--encoder", "direct", "--timesteps", "4"]) == 0
    assert _json(capsys)["samples"] == 360


@pytest.mark.parametrize(("target", "options", "message"), [
    ("run", ["--data", "digits"], "--data: for a NIR file given in place of RUN_DIR, not a run directory"),
    ("file", ["--round-delays"], "--round-delays: for a run directory, not a NIR file"),
    ("file", [], "is a file: to score a NIR file, name the data set with --data"),
    ("file", ["--data", "digits", "--encoder", "morse"], "input coding 'morse' is not one deepspike builds"),
    ("file", ["--data", "digits", "--timesteps", "0"], "--timesteps must be a whole number from 1 to 1,000,000"),
])
def test_options_of_the_other_kind_and_bad_values_are_one_line(run_and_file, capsys, target, options, message):
    run, path = run_and_file
    capsys.readouterr()
    assert main(["eval", str(run if target == "run" else path), *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_decisions_by_hand():
    spikes = torch.tensor([[[1.0, 0, 1, 0, 0, 1]], [[0, 0, 1, 1, 0, 1]]])  # [T=2, B=1, K=6]
    assert decided_class(spikes, "rate").tolist() == [2]  # counts 1 0 2 1 0 2: the first of the largest
    assert decided_class(spikes, "vote", num_classes=3).tolist() == [1]  # contiguous groups (1 0) (2 1) (0 2): 1 3 2
    trace = torch.tensor([[[0.5, 0.1]], [[0.2, 0.4]]])
    assert decided_class(trace, "membrane").tolist() == [1]  # the last step's membrane
    with pytest.raises(ConfigError, match="decode 'vote' needs num_classes dividing the 6 output neurons"):
        decided_class(spikes, "vote", num_classes=4)


def test_a_delta_coded_sequence_run_and_its_exported_file_score_the_same(tmp_path, capsys):
    """to_nir writes delta_off_spikes as 1 or 0; the reader refused its own file ('delta off_spikes must be true or
    false, got 1')."""
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=4", "method.encoder=delta", "model.name=rsnn",
                 "data.name=digits_rows", "train.epochs=1", "train.progress=false", "--out", str(run)]) == 0
    assert main(["export", str(run), "--nir", str(tmp_path / "model.nir")]) == 0
    ours, theirs = _run_and_file(capsys, run, tmp_path / "model.nir", "digits_rows")
    assert theirs["accuracy"] == ours["test_accuracy"] and theirs["samples"] == ours["samples"] == 360
    assert theirs["coding"] == "delta"


def test_coding_options_a_file_does_not_state_are_the_methods_defaults():
    """--encoder delta or population on another tool's file (no coding options) raised AttributeError."""
    delta = nir_encoder({}, "delta")
    assert (delta.threshold, delta.off_spikes, delta.mode) == (0.1, True, "step")
    population = nir_encoder({"dt": 1e-4}, "population")
    assert (population.size, population.low, population.high, population.spikes) == (8, 0.0, 1.0, False)
    written = nir_encoder({"encoder": "delta", "delta_threshold": 0.3, "delta_off_spikes": 0, "delta_mode": "level"})
    assert (written.threshold, written.off_spikes, written.mode) == (0.3, False, "level")
    with pytest.raises(ConfigError, match="delta off_spikes must be true or false, got 2"):
        nir_encoder({"encoder": "delta", "delta_off_spikes": 2})


def test_a_file_whose_outputs_are_not_the_data_sets_classes_is_refused(tmp_path, capsys):
    """tiny_graph's 3 output neurons on the 10 digits were scored as if they were classes 0-2 (exit 0)."""
    path = write(tiny_graph(), tmp_path / "tiny.nir")
    assert main(["eval", str(path), "--data", "digits", "--encoder", "poisson", "--timesteps", "2"]) == 2
    err = capsys.readouterr().err
    assert "the NIR file has output neurons for 3 classes, but the data set has 10" in err and err.count("\n") == 1


def test_output_checks_by_hand():
    check_outputs(torch.zeros(2, 1, 10), "rate", 10)
    check_outputs(torch.zeros(2, 1, 30), "vote", 10, num_classes=10)
    with pytest.raises(ConfigError, match=r"output must be \[T, B, K\] \(one value per class\), got \(2, 1, 2, 5\)"):
        check_outputs(torch.zeros(2, 1, 2, 5), "rate", 10)
    with pytest.raises(ConfigError, match="the NIR file votes for 5 classes, but the data set has 10"):
        check_outputs(torch.zeros(2, 1, 30), "vote", 10, num_classes=5)
    with pytest.raises(ConfigError, match="has output neurons for 12 classes, but the data set has 10"):
        check_outputs(torch.zeros(2, 1, 12), "membrane", 10)


def test_the_val_split_of_a_file_is_its_runs_validation_split(tmp_path, capsys):
    """The export records the run's val_fraction and split seed; before, ``--split val`` on its file read the default
    recipe's (none: 'data set 'digits' has no val split')."""
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=4", "model.name=mlp", "model.args.hidden=[20]",
                 "data.val_fraction=0.25", "train.seed=3", "train.epochs=2", "train.progress=false",
                 "--out", str(run)]) == 0
    assert main(["export", str(run), "--nir", str(tmp_path / "model.nir")]) == 0
    ours, theirs = _run_and_file(capsys, run, tmp_path / "model.nir", "digits", "--split", "val")
    assert 0.1 < ours["val_accuracy"] < 1.0
    assert theirs["samples"] == ours["samples"] == 359  # a quarter of the 1,437 training images
    assert theirs["accuracy"] == ours["val_accuracy"]


def test_a_vote_file_that_does_not_say_its_classes_votes_for_the_data_sets(tmp_path, capsys):
    """Before: 'decode 'vote' needs num_classes dividing the 30 output neurons, got None' for a file whose metadata
    says decode vote without num_classes; now it groups its 30 neurons into the data set's 10 classes, as the run."""
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=4", "method.vote_group=3", "model.name=mlp",
                 "model.args.hidden=[20]", "train.epochs=2", "train.progress=false", "--out", str(run)]) == 0
    assert main(["export", str(run), "--nir", str(tmp_path / "model.nir")]) == 0
    graph = nir.read(str(tmp_path / "model.nir"))
    assert graph.metadata.pop("num_classes") == 10
    write(graph, tmp_path / "unsaid.nir")
    ours, theirs = _run_and_file(capsys, run, tmp_path / "unsaid.nir", "digits")
    assert 0.1 < ours["test_accuracy"] < 1.0
    assert theirs["accuracy"] == ours["test_accuracy"] and theirs["decode"] == "vote"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("val_fraction", "${oc.env:HOME}", "metadata val_fraction must be a number in [0, 1), got '${oc.env:HOME}'"),
    ("val_fraction", 5.0, "metadata val_fraction must be a number in [0, 1), got 5.0"),
    ("split_seed", "abc", "metadata split_seed must be a whole number in [0, 2**63 - 1], got 'abc'"),
])
def test_a_files_split_metadata_that_is_not_a_number_is_refused_naming_the_field(tmp_path, capsys, field, value,
                                                                                 message):
    # before: the text went into the recipe as it was, so '${oc.env:HOME}' was resolved and echoed ("bad value
    # '/root' for data.val_fraction"), and each refusal named a recipe key the user never set
    graph = tiny_graph()
    graph.metadata.update({"dataset": "digits", "encoder": "direct", "timesteps": 4, "val_fraction": 0.25,
                           "split_seed": 3, field: value})
    path = write(graph, tmp_path / "split.nir")
    assert main(["eval", str(path), "--data", "digits", "--split", "val"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"input_mean": "abc", "input_std": [1.0]}, "metadata input_mean must be a list of numbers, one per input "
                                                "channel, given with input_std; got 'abc'"),
    ({"input_mean": [0.5]}, "metadata input_std must be a list of numbers, one per input channel, given with "
                            "input_mean; got None"),
    ({"input_mean": [True], "input_std": [1.0]}, "metadata input_mean must be a list of numbers"),
    ({"encoder": "bipolar", "bipolar_scale": "x"}, "metadata bipolar_scale and bipolar_value must be numbers, got "
                                                   "'x' and 1.0"),
], ids=["text mean", "mean without std", "boolean mean", "text scale"])
def test_a_files_input_metadata_that_is_not_numbers_is_refused_naming_the_field(tmp_path, capsys, fields, message):
    # before: torch's TypeError "new(): invalid data type 'str'", "must be real number, not NoneType", and
    # float()'s ValueError "could not convert string to float: 'x'", each a traceback
    graph = tiny_graph()
    graph.metadata.update({"encoder": "direct", "timesteps": 4, **fields})
    path = write(graph, tmp_path / "stats.nir")
    assert main(["eval", str(path), "--data", "digits", "--limit", "4"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("steps", [10**11, -3, "5", 2.5])
def test_a_files_bad_timesteps_are_named_as_the_files_not_as_an_option(tmp_path, capsys, steps):
    # before: "--timesteps must be a whole number from 1 to 1,000,000, got -3" though no --timesteps was given
    graph = tiny_graph()
    graph.metadata.update({"encoder": "direct", "timesteps": steps})
    path = write(graph, tmp_path / "steps.nir")
    assert main(["eval", str(path), "--data", "digits", "--limit", "4"]) == 2
    err = capsys.readouterr().err
    assert (f"the NIR file's metadata timesteps must be a whole number from 1 to 1,000,000, got {steps!r}: pass "
            "--timesteps") in err and err.count("\n") == 1
    assert main(["eval", str(path), "--data", "digits", "--limit", "4", "--timesteps", "2"]) == 2
    assert "has output neurons for 3 classes" in capsys.readouterr().err  # --timesteps 2 took the file's place


def test_time_steps_whose_input_would_not_fit_in_memory_are_refused_before_it_is_drawn(tmp_path, capsys,
                                                                                       monkeypatch):
    # before: --timesteps 1000000 on digits drew a [10**6, 256, 1, 8, 8] Poisson input (65 GB) with no check
    monkeypatch.setattr("deepspike.training.runtime.device_memory_bytes", lambda device: 2**30)
    graph = tiny_graph()
    graph.metadata.update({"encoder": "poisson", "timesteps": 4})
    path = write(graph, tmp_path / "steps.nir")
    assert main(["eval", str(path), "--data", "digits", "--timesteps", "1000000"]) == 2
    err = capsys.readouterr().err
    assert "inference T=1000000 needs at least 61.0 GiB for one batch's [T, B, ...] input" in err
    assert err.count("\n") == 1


def test_a_file_whose_input_is_flat_reads_the_images_flattened(tmp_path, capsys):
    """Another tool's MLP takes [64] for an 8 x 8 digit; before: 'NIR network input must be [T, B, 64], got (4, 256,
    1, 8, 8)'. Scored here by hand: the spike counts of from_nir's net on the flattened images."""
    train, test = load_dataset("digits").train, load_dataset("digits").test
    templates = torch.stack([train.x[train.y == k].mean(0).flatten() for k in range(10)])  # [10, 64]
    weight = (templates - templates.mean(0)).numpy().astype(np.float32)  # a nearest-template classifier, far
    ones = np.ones(10, np.float32)  # above chance
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "fc": nir.Affine(weight=weight, bias=np.zeros(10, np.float32)),
             "lif": nir.LIF(tau=ones * 1e-3, r=ones, v_leak=0 * ones, v_threshold=ones * 0.5, v_reset=0 * ones),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-4}, type_check=False)
    path = write(graph, tmp_path / "flat.nir")
    assert main(["eval", str(path), "--data", "digits", "--encoder", "direct", "--timesteps", "4"]) == 0
    ours = _json(capsys)
    with torch.no_grad():
        counts = from_nir(graph)(test.x.flatten(1).expand(4, -1, -1)).sum(0)
    assert ours["samples"] == 360 and ours["accuracy"] == int((counts.argmax(1) == test.y).sum()) / 360
    assert ours["accuracy"] > 0.5


@pytest.mark.parametrize("name", ["${oc.env:HOME}", "", "nope"])
def test_a_data_set_name_is_checked_before_it_becomes_a_recipe_value(name, tmp_path, capsys):
    """--data went into the recipe as an override, where '${oc.env:HOME}' was resolved and shown ('unknown dataset
    '/root'') and '' read as 'bad value None for data.name'."""
    path = write(tiny_graph(), tmp_path / "tiny.nir")
    assert main(["eval", str(path), "--data", name, "--encoder", "poisson", "--timesteps", "2"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"deepspike: error: unknown dataset {name!r}; valid: ") and err.count("\n") == 1


def test_an_event_run_and_its_exported_file_read_the_same_frames(tmp_path, capsys):
    """The export records the run's data.args (less cache) as metadata data_args and eval reads the data set with them;
    before, eval of a digits_events run with stride 2 and 4 frames read the default frames (stride 1, 8 frames):
    'NIR network input must be [T, B, 2, 7, 7], got (4, 256, 2, 14, 14)'. data.augment is training-only: not written."""
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.encoder=frames", "method.timesteps=4", "model.name=mlp",
                 "model.args.hidden=[16]", "data.name=digits_events", "data.args.stride=2", "data.args.timesteps=4",
                 "data.args.threshold=0.3", "data.args.cache=true", "data.augment.roll=1", "train.epochs=2",
                 "train.progress=false", "--out", str(run)]) == 0
    assert main(["export", str(run), "--nir", str(tmp_path / "model.nir")]) == 0
    meta = nir.read(str(tmp_path / "model.nir")).metadata
    assert json.loads(meta["data_args"]) == {"stride": 2, "timesteps": 4, "threshold": 0.3}
    ours, theirs = _run_and_file(capsys, run, tmp_path / "model.nir", "digits_events")
    assert theirs["accuracy"] == ours["test_accuracy"] and theirs["samples"] == ours["samples"] == 360


@pytest.mark.parametrize(("text", "message"), [
    ("not json", "metadata data_args must be JSON text of its run's data.args (an object of texts, finite numbers, "
                 "true, false, null or lists of those), got 'not json'"),
    ('{"threshold": NaN}', "metadata data_args must be JSON text"),
    ('{"pad": 1e999}', "metadata data_args must be JSON text"),
    ('{"stride": {"x": 1}}', "metadata data_args must be JSON text"),
    ("[2]", "metadata data_args must be JSON text"),
    (7, "metadata data_args must be JSON text"),
    ('{"seed": 1}', "metadata data_args may not set seed (not a data set option)"),
    ('{"stride": "x"}', "stride must be an integer from 1 to 65536, got 'x'"),
    ('{"foo": 1}', "dataset 'digits_events' has no option(s) foo"),
])
def test_a_files_bad_data_args_are_one_line(tmp_path, capsys, text, message):
    graph = tiny_graph()
    graph.metadata.update({"dataset": "digits_events", "encoder": "frames", "timesteps": 4, "data_args": text})
    path = write(graph, tmp_path / "args.nir")
    assert main(["eval", str(path), "--data", "digits_events", "--limit", "10"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_a_poisson_run_scored_in_batches_of_its_own_size_and_its_file_score_the_same(tmp_path, capsys):
    """A random encoder draws per batch, so the batches decide which sample gets which spikes: a bipolar run with
    train.eval_batch_size=500 scored 0.1361 and its file, read in eval's default batches of 256, 0.1278. The export
    now writes eval_batch_size when it is not the default, and eval reads the run's data set in such batches."""
    run = tmp_path / "run"
    assert main(["train", "method.name=stbp", "method.timesteps=4", "method.encoder=bipolar", "model.name=mlp",
                 "model.args.hidden=[16]", "train.epochs=1", "train.max_steps_per_epoch=3", "train.eval_batch_size=500",
                 "train.progress=false", "--out", str(run)]) == 0
    assert main(["export", str(run), "--nir", str(tmp_path / "model.nir")]) == 0
    assert nir.read(str(tmp_path / "model.nir")).metadata["eval_batch_size"] == 500
    ours, theirs = _run_and_file(capsys, run, tmp_path / "model.nir", "digits")
    assert theirs["accuracy"] == ours["test_accuracy"] and theirs["samples"] == ours["samples"] == 360


@pytest.mark.parametrize("size", [0, 2.5, "x", 10**7])
def test_a_files_bad_eval_batch_size_is_one_line(tmp_path, capsys, size):
    graph = tiny_graph()
    graph.metadata.update({"dataset": "digits", "encoder": "direct", "timesteps": 2, "eval_batch_size": size})
    path = write(graph, tmp_path / "batch.nir")
    assert main(["eval", str(path), "--data", "digits", "--limit", "10"]) == 2
    err = capsys.readouterr().err
    assert "the NIR file's metadata eval_batch_size must be a whole number from 1 to 1,000,000" in err
    assert err.count("\n") == 1


def _vote_graph(num_classes) -> nir.NIRGraph:
    """input [64] -> Affine 64 -> 20 -> IF -> output, decoded by vote (direct input, 4 steps)."""
    rng, ones = np.random.default_rng(0), np.ones(20, dtype=np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "fc": nir.Affine(weight=rng.normal(size=(20, 64)).astype(np.float32), bias=0 * ones),
             "if": nir.IF(r=ones / 1e-4, v_threshold=ones, v_reset=0 * ones),
             "output": nir.Output(output_type={"output": np.array([20])})}
    meta = {"dt": 1e-4, "decode": "vote", "num_classes": num_classes, "encoder": "direct", "timesteps": 4}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "if"), ("if", "output")], metadata=meta,
                        type_check=False)


@pytest.mark.parametrize("value", [10.0, "10", 0])
def test_a_vote_files_num_classes_that_is_not_a_whole_number_is_one_line(tmp_path, capsys, value):
    # 10.0 read from a file ended in torch's TypeError "reshape(): argument 'shape' failed to unpack ... got float"
    # (a traceback), the text "10" in "votes for '10' classes, but the data set has 10"
    path = write(_vote_graph(value), tmp_path / "vote.nir")
    assert main(["eval", str(path), "--data", "digits", "--limit", "8"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"metadata num_classes must be a whole number >= 1, got {value!r}" in err
    assert main(["eval", str(write(_vote_graph(10), tmp_path / "ten.nir")), "--data", "digits", "--limit", "8"]) == 0


@pytest.mark.parametrize(("field", "value", "message"), [
    ("encoder", np.array([b"direct", b"poisson"]), "input coding array(['direct', 'poisson'], dtype=object) is not"),
    ("timesteps", np.array([4, 5]), "metadata timesteps must be a whole number from 1 to 1,000,000, got array([4, 5])"),
    ("dataset", np.array([b"digits", b"mnist"]), None),  # not the data set named: read as another tool's file
])
def test_a_files_metadata_array_where_a_word_or_number_belongs_is_one_line(tmp_path, capsys, field, value, message):
    # each ended in numpy's "ValueError: The truth value of an array with more than one element is ambiguous"
    graph = _vote_graph(10)
    graph.metadata[field] = value
    rc = main(["eval", str(write(graph, tmp_path / "m.nir")), "--data", "digits", "--limit", "8"])
    err = capsys.readouterr().err
    assert (rc, err.count("\n")) == ((2, 1) if message else (0, 0)) and (message or "") in err


def _li_readout_file(path, metadata: dict):
    """Another tool's digits net, input [64] -> Affine (class templates) -> IF (threshold 2) -> LI (decay 0.5) ->
    output [10], written with ``metadata`` besides ``dt``."""
    train = load_dataset("digits").train
    templates = torch.stack([train.x[train.y == k].mean(0).flatten() for k in range(10)])  # [10, 64]
    ones = np.ones(10, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "fc": nir.Affine(weight=(templates - templates.mean(0)).numpy(), bias=0 * ones),
             "if": nir.IF(r=ones * 1e4, v_threshold=ones * 2.0, v_reset=0 * ones),
             "li": nir.LI(tau=ones * 2e-4, r=ones * 2, v_leak=0 * ones),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": 1e-4, **metadata},
                         type_check=False)
    return write(graph, path), graph


def test_a_file_with_a_leaky_integrator_readout_is_scored_by_its_membrane(tmp_path, capsys):
    """An LI output does not spike: a file that does not say how it decodes was scored by the sum of its trace over
    the steps (decode 'rate': 294 of 360 correct here) where its last membrane is the reading (292); a file's own
    decode still wins. Scored here by hand on from_nir's trace of the flattened images."""
    path, graph = _li_readout_file(tmp_path / "li.nir", {})
    test = load_dataset("digits").test
    with torch.no_grad():
        trace = from_nir(graph)(test.x.flatten(1).expand(4, -1, -1))  # [T=4, 360, 10]
    last, summed = [int((v.argmax(1) == test.y).sum()) / 360 for v in (trace[-1], trace.sum(0))]
    assert last != summed  # the two readings differ on this net: the test can fail
    options = ["--data", "digits", "--encoder", "direct", "--timesteps", "4"]
    capsys.readouterr()
    assert main(["eval", str(path), *options]) == 0
    ours = _json(capsys)
    assert (ours["decode"], ours["accuracy"]) == ("membrane", last)
    said, _ = _li_readout_file(tmp_path / "said.nir", {"decode": "rate"})
    assert main(["eval", str(said), *options]) == 0
    assert (lambda s: (s["decode"], s["accuracy"]))(_json(capsys)) == ("rate", summed)
