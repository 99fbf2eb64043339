"""``method.init_from: FILE.nir``: a run starts from a NIR file's net. The recipe's net with the file's weights runs
as the file's net does (``from_nir``, and ``GraphSimulator``: the independent reference); a neuron input gain is folded
into the weights; what the recipe's net cannot hold is a one-line error; the run resumes exactly without the file."""

import numpy as np
import pytest
import torch

nir = pytest.importorskip("nir")

from deepspike.cli import main  # noqa: E402
from deepspike.config import load_config  # noqa: E402
from deepspike.core.errors import ConfigError  # noqa: E402
from deepspike.deploy import GraphSimulator, from_nir, to_nir, write_nir  # noqa: E402
from deepspike.deploy.nir_init import start_from_nir  # noqa: E402
from deepspike.layers.readout import SpikeRateReadout  # noqa: E402
from deepspike.layers.time_distributed import TimeDistributed  # noqa: E402
from deepspike.methods import create_model  # noqa: E402
from deepspike.methods.rate_network import RateNetwork  # noqa: E402
from deepspike.neurons.modules import LIF  # noqa: E402
from deepspike.training.reload import build_new_run  # noqa: E402
from tiny_run import full_and_resumed_weights  # noqa: E402

DT = 1e-3
NEURON = {"decay": 0.8, "threshold": 0.7, "reset": "subtract"}
RECIPE = [f"method.{k}={v}" for k, v in NEURON.items()]


def _net(name: str = "mlp", **options):
    args = {"model_args": {"hidden": [12]}} if name == "mlp" else {}
    return create_model(name, method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                        **{**NEURON, **options}, **args).eval()


def _file_weights(net):
    for p in net.parameters():  # not the recipe's start: random weights of the file's own
        torch.nn.init.normal_(p, 0.05, 0.4, generator=torch.Generator().manual_seed(p.numel()))
    return net


def _file(tmp_path, net, name="model.nir"):
    return write_nir(to_nir(_file_weights(net), (1, 8, 8)), tmp_path / name)


def _coded(steps=5, batch=4):
    return (torch.rand(steps, batch, 1, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.4).float()


@pytest.mark.parametrize("name", ["mlp", "scnn_digits"])
def test_the_recipes_net_with_the_files_weights_runs_as_the_file(name, tmp_path):
    path = _file(tmp_path, _net(name))
    ours = _net(name)
    start_from_nir(path, ours)
    x = _coded()
    with torch.no_grad():
        spikes = ours.body(x)
        spikes = ours.readout.neuron(spikes)
        theirs = from_nir(path)(x)
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    assert torch.equal(spikes, theirs) and torch.equal(spikes, simulated)


def _gained_graph(gain, flat: tuple[int, ...] | None = None) -> nir.NIRGraph:
    """Another tool's MLP 64-12-10 (``flat``: taking samples of that shape, [64] or [1, 64], without a Flatten node)
    with LIF nodes
    (k = 0.8, threshold 0.7, reset by subtraction in the metadata) whose r gives each neuron the input gain ``gain``
    (``r dt / tau``), Linear nodes without bias."""
    g = np.random.default_rng(4)
    tau = np.float32(DT / 0.2)

    def lif(n, c):
        ones = np.ones(n, np.float32)
        return nir.LIF(tau=ones * tau, r=np.broadcast_to(np.float32(c) * tau / DT, (n,)).astype(np.float32),
                       v_leak=0 * ones, v_threshold=ones * 0.7, v_reset=0 * ones,
                       metadata={"reset": "subtract", "fires": "v >= threshold"})

    nodes = {"input": nir.Input(input_type={"input": np.array([1, 8, 8])}),
             "flat": nir.Flatten(input_type={"input": np.array([1, 8, 8])}, start_dim=0, end_dim=-1),
             "fc1": nir.Linear(weight=g.normal(0.1, 0.3, (12, 64)).astype(np.float32)), "lif1": lif(12, gain),
             "fc2": nir.Linear(weight=g.normal(0.1, 0.5, (10, 12)).astype(np.float32)), "lif2": lif(10, 1.0),
             "output": nir.Output(output_type={"output": np.array([10])})}
    if flat:
        del nodes["flat"]
        nodes["input"] = nir.Input(input_type={"input": np.array(flat)})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": DT}, type_check=False)


def test_another_tools_input_gain_is_folded_into_the_weights(tmp_path):
    # a gain of 2 (a power of two: c W x is (c W) x exactly, so the spikes can be compared exactly)
    path = write_nir(_gained_graph(2.0), tmp_path / "gained.nir")
    ours = _net()
    start_from_nir(path, ours)
    x = _coded()
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    assert torch.equal(spikes, simulated)
    fc1 = nir.read(str(path)).nodes["fc1"].weight
    torch.testing.assert_close(ours.body[1].module.weight, torch.as_tensor(fc1) * 2.0)  # r dt / tau in float32


@pytest.mark.parametrize(("recipe", "message"), [
    ({"decay": 0.5}, "layer 2 (SpikingNeuron): the file's neurons have decay 0.8, threshold 0.7, reset subtract, the "
                     "recipe's decay 0.5, threshold 0.7, reset subtract: set method.decay=0.8"),
    ({"reset": "zero"}, "set method.reset=subtract"),
])
def test_neurons_that_differ_name_the_recipe_keys_to_set(tmp_path, recipe, message):
    path = _file(tmp_path, _net())
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        start_from_nir(path, _net(**recipe))


def test_layers_that_differ_are_one_line(tmp_path):
    path = _file(tmp_path, _net())
    with pytest.raises(ConfigError, match=r"layer 1 \(Linear\): weight \[12, 64\] in the file, \[20, 64\]"):
        start_from_nir(path, create_model("mlp", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                                          model_args={"hidden": [20]}, **NEURON))
    with pytest.raises(ConfigError, match="has 5 layers .* the recipe's net 11"):
        start_from_nir(path, _net("scnn_digits"))
    varying = np.linspace(1.0, 2.0, 12).astype(np.float32)  # one gain per hidden neuron: folds into fc1's rows
    start_from_nir(write_nir(_gained_graph(varying), tmp_path / "per_neuron_gain.nir"), _net())


def test_a_run_starts_from_the_file_resumes_exactly_and_is_read_without_it(tmp_path, capsys):
    path = _file(tmp_path, _net())
    recipe = ["method.name=stbp", "method.timesteps=5", "model.name=mlp", "model.args.hidden=[12]", *RECIPE,
              f"method.init_from={path}", "train.epochs=2", "train.progress=false", "train.batch_size=64"]
    config = load_config(None, recipe)
    start = build_new_run(config, torch.device("cpu")).model.eval()
    x = _coded()
    with torch.no_grad():
        assert torch.equal(start.readout.neuron(start.body(x)), from_nir(path)(x))
    full, resumed = full_and_resumed_weights(config, tmp_path)
    assert full.keys() == resumed.keys() and all(torch.equal(full[k], resumed[k]) for k in full)
    path.unlink()  # a run is read from its checkpoint: the file it started from may be gone
    assert main(["eval", str(tmp_path / "full")]) == 0


@pytest.mark.parametrize(("value", "message"), [
    ("runs/a", "bad value 'runs/a' for method.init_from: expected a NIR file (.nir)"),
])
def test_init_from_that_is_not_a_nir_file_is_one_line(value, message, capsys):
    assert main(["train", "method.name=stbp", f"method.init_from={value}", "train.epochs=1", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def _rsnn():
    return create_model("rsnn", method="stbp", num_classes=10, input_shape=(8,), timesteps=5,
                        model_args={"hidden": [16]}, **NEURON).eval()


@pytest.mark.parametrize("gain", [1.0, 2.0])
def test_a_recurrent_files_net_starts_an_rsnn_run_and_runs_as_the_file(tmp_path, gain):
    # a NIR recurrent layer is a Linear node before a neuron node on a cycle with V; the recurrent neurons' input
    # gain r dt / tau (2: exact in float32) scales the input and what is fed back: folded into W (V has it on import)
    graph = to_nir(_file_weights(_rsnn()), (8,))
    lif = next(k for k, v in graph.nodes.items() if isinstance(v, nir.LIF))
    graph.nodes[lif].r = (graph.nodes[lif].r * np.float32(gain)).astype(np.float32)
    path = write_nir(graph, tmp_path / "rsnn.nir")
    ours = _rsnn()
    start_from_nir(path, ours)
    x = (torch.rand(6, 4, 8, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    assert torch.equal(spikes, simulated) and torch.equal(spikes, from_nir(path)(x))


@pytest.mark.parametrize(("options", "message"), [
    ({"neuron": "plif"}, "a recurrent layer of learnable (PLIF) neurons does not start from a file; use "
                         "method.neuron=lif with the file's decay and threshold"),
    ({"learn_threshold": True}, "a recurrent layer of neurons with a learnt threshold does not start from a file; "
                                "set method.learn_threshold=false"),
], ids=["plif", "lif with a learnt threshold"])
def test_a_recurrent_layer_of_learnable_neurons_names_the_key_to_set(tmp_path, options, message):
    # before: a method.neuron=lif recipe with method.learn_threshold=true was told to "use method.neuron=lif"
    path = write_nir(to_nir(_file_weights(_rsnn()), (8,)), tmp_path / "rsnn.nir")
    recipe = create_model("rsnn", method="stbp", num_classes=10, input_shape=(8,), timesteps=5,
                          model_args={"hidden": [16]}, **{**NEURON, **options})
    with pytest.raises(ConfigError) as e:
        start_from_nir(path, recipe)
    assert str(e.value) == f"method.init_from: {path}: layer 1 (RecurrentSpiking): {message}"


def _image_rsnn():
    return create_model("rsnn", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                        model_args={"hidden": [12]}, **NEURON).eval()


@pytest.mark.parametrize(("file_net", "recipe_net", "message"), [
    (_net, _image_rsnn, "layer 2 (SpikingNeuron): the recipe's net has RecurrentSpiking here: the file's layer has no "
                       "recurrent weights"),
    (_image_rsnn, _net, "layer 2 (RecurrentSpiking): the recipe's net has LIF here: the file's layer is recurrent "
                       "(model.name=rsnn builds recurrent layers)"),
], ids=["feed-forward file, rsnn recipe", "rsnn file, mlp recipe"])
def test_a_recurrent_layer_in_one_net_only_names_the_model_not_a_neuron_key(tmp_path, file_net, recipe_net, message):
    # before: an rsnn recipe against a feed-forward file was told "set method.neuron=lif", which it had already
    path = write_nir(to_nir(file_net(), (1, 8, 8)), tmp_path / "model.nir")
    with pytest.raises(ConfigError) as e:
        start_from_nir(path, recipe_net())
    assert str(e.value) == f"method.init_from: {path}: {message}"


@pytest.mark.parametrize("flat", [(64,), (1, 64)])
def test_a_file_taking_flat_samples_starts_the_recipes_mlp_whose_flatten_makes_them(tmp_path, flat):
    # snnTorch's and Norse's MLPs take [T, B, 64], Rockpool's [T, B, 1, 64], with no Flatten node; the recipe's mlp
    # flattens [1, 8, 8] first
    path = write_nir(_gained_graph(1.0, flat=flat), tmp_path / "flat.nir")
    ours = _net()
    start_from_nir(path, ours)
    x = _coded()
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
        theirs = from_nir(path)(x.reshape(*x.shape[:2], *flat))
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    assert torch.equal(spikes, theirs.reshape(spikes.shape))
    if flat == (64,):
        simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x.flatten(2)})["output"].float()
        assert torch.equal(spikes, simulated)


@pytest.mark.parametrize(("file", "recipe", "keys"), [
    ({"neuron": "synaptic", "syn_decay": 0.5}, {}, "set method.neuron=synaptic method.syn_decay=0.5"),
    ({}, {"neuron": "synaptic", "syn_decay": 0.5}, "set method.neuron=lif"),
])
def test_a_synaptic_current_in_one_net_only_names_the_neuron_key_to_set(tmp_path, file, recipe, keys):
    path = _file(tmp_path, _net(**file))
    with pytest.raises(ConfigError) as error:
        start_from_nir(path, _net(**recipe))
    assert str(error.value).endswith(keys)
    fixed = dict(arg.split("=") for arg in keys.removeprefix("set ").replace("method.", "").split())
    start_from_nir(path, _net(**{**recipe, **fixed}))  # the keys named are the ones that make the nets match


@pytest.mark.parametrize(("file", "recipe", "keys"), [
    ({}, {"readout": "membrane"}, "set method.readout=rate"),
    ({"readout": "membrane"}, {}, "set method.readout=membrane"),
    ({}, {"neuron": "alif"}, "set method.neuron=lif"),
    ({"readout": "membrane", "membrane_decay": 0.9}, {"readout": "membrane"}, "set method.membrane_decay=0.9"),
])
def test_a_readout_or_neuron_of_another_kind_names_the_key_that_builds_the_files(tmp_path, file, recipe, keys):
    path = _file(tmp_path, _net(**file))
    with pytest.raises(ConfigError) as error:
        start_from_nir(path, _net(**recipe))
    assert str(error.value).endswith(keys) and "\n" not in str(error.value)
    key, value = keys.removeprefix("set method.").split("=")
    start_from_nir(path, _net(**{**recipe, key: value}))  # the key named makes the nets match


def test_a_readout_with_a_decay_per_neuron_is_refused_saying_so(tmp_path):
    """An LI readout whose tau differs per neuron (imported since from_nir reads it) was refused as "the recipe's
    net has Integrator here", though the recipe had a membrane readout: now the message says what differs."""
    graph = to_nir(_file_weights(_net(readout="membrane")), (1, 8, 8))
    name = next(k for k, v in graph.nodes.items() if isinstance(v, nir.I))
    dt = graph.metadata["dt"]
    graph.nodes[name] = nir.LI(tau=np.array([2.0, 4.0] * 5) * dt, r=np.ones(10), v_leak=np.zeros(10))
    path = write_nir(graph, tmp_path / "per_neuron.nir")
    with pytest.raises(ConfigError, match=r"\(PerNeuronIntegrator\): the file's readout decays by 0.5 to 0.75 per "
                                          r"step, a rate per neuron; a recipe's membrane readout decays by one rate"):
        start_from_nir(path, _net(readout="membrane"))


def test_a_recipe_net_no_nir_file_holds_is_refused_as_the_init_file_not_as_an_export(tmp_path):
    path = _file(tmp_path, _net(readout="membrane"))
    with pytest.raises(ConfigError, match=r"^method.init_from: the recipe's net is not one a NIR file holds "
                                          r"\(unsupported readout MaxMembraneReadout \(NIR has no max over time; "
                                          r"the rate, vote and membrane readouts export: "
                                          r"method.readout=rate\|membrane\)\)$"):
        start_from_nir(path, _net(readout="max_membrane"))


def test_a_max_membrane_readout_is_refused_by_to_nir_saying_which_readouts_export():
    with pytest.raises(ConfigError, match=r"^NIR export: unsupported readout MaxMembraneReadout \(NIR has no max "
                                          r"over time; .*method.readout=rate\|membrane\)$"):
        to_nir(_net(readout="max_membrane"), input_shape=(1, 8, 8))


def _scaled_conv_graph(shape: tuple[int, ...]) -> tuple[nir.NIRGraph, object]:
    """A conv net 1x4x4 -> Conv2d(4 channels) -> LIF -> Flatten -> Linear -> LIF, written by to_nir, with a NIR Scale
    node of ``shape`` (values 1, 2, ...) between the conv and its LIF; and a maker of the recipe's net."""
    def make():
        torch.manual_seed(0)
        conv = TimeDistributed(torch.nn.Conv2d(1, 4, 3, padding=1, bias=False))
        body = torch.nn.Sequential(conv, LIF(decay=0.8, threshold=0.5), TimeDistributed(torch.nn.Flatten()),
                                   TimeDistributed(torch.nn.Linear(64, 10, bias=False)))
        return RateNetwork(torch.nn.Identity(), body, SpikeRateReadout(LIF(decay=0.8, threshold=0.5)), 5).eval()

    graph = to_nir(make(), (1, 4, 4))
    graph.nodes["scale"] = nir.Scale(scale=np.arange(1, 1 + np.prod(shape), dtype=np.float32).reshape(shape))
    graph.edges = [e for e in graph.edges if e != ("0_conv", "1_lif")] + [("0_conv", "scale"), ("scale", "1_lif")]
    return graph, make


def test_a_conv_gain_per_channel_is_folded_and_one_per_column_is_refused(tmp_path):
    # a Scale of [4] multiplies a [4, 4, 4] conv output along its last axis (the columns): before, its 4 values were
    # taken as the 4 channels' gains and folded into the conv's weights, a net that spiked otherwise than the file's
    graph, make = _scaled_conv_graph((4, 1, 1))
    path = write_nir(graph, tmp_path / "per_channel.nir")
    ours = make()
    start_from_nir(path, ours)
    x = (torch.rand(6, 3, 1, 4, 4, generator=torch.Generator().manual_seed(3)) < 0.4).float()
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
        theirs = from_nir(path)(x)  # the Scale node as a module (GraphSimulator's type check refuses [4, 1, 1])
    assert spikes.sum() > 0 and torch.equal(spikes, theirs)
    graph, make = _scaled_conv_graph((4,))
    with pytest.raises(ConfigError, match=r"layer 0 \(Conv2d\): the file's neurons have an input gain that varies "
                                          r"within a channel \(\[4\]\)"):
        start_from_nir(write_nir(graph, tmp_path / "per_column.nir"), make())


@pytest.mark.parametrize(("file", "recipe", "keys"), [
    ({"vote_group": 3}, {}, "decodes by a vote of 3 output neurons per class: set method.vote_group=3"),
    ({}, {"vote_group": 3}, "has one output neuron per class: set method.vote_group=1"),
])
def test_a_vote_in_one_net_only_names_the_vote_group_to_set(tmp_path, file, recipe, keys):
    # before: 'layer 3 (Linear): weight [30, 12] in the file, [10, 12] in the recipe's net', no key named
    path = _file(tmp_path, _net(**file))
    with pytest.raises(ConfigError) as error:
        start_from_nir(path, _net(**recipe))
    assert str(error.value).endswith(keys)
    start_from_nir(path, _net(**{**recipe, "vote_group": int(keys[-1])}))


@pytest.mark.parametrize("num_classes", [None, True, 0, 7], ids=["unsaid", "boolean", "zero", "not dividing"])
def test_a_vote_file_without_usable_num_classes_names_the_group_of_the_recipes_classes(tmp_path, num_classes):
    # before: "decodes by a vote of G output neurons per class: set method.vote_group=G", a key value no recipe takes
    graph = to_nir(_file_weights(_net(vote_group=3)), (1, 8, 8))
    del graph.metadata["num_classes"]
    if num_classes is not None:
        graph.metadata["num_classes"] = num_classes
    path = write_nir(graph, tmp_path / "vote.nir")
    with pytest.raises(ConfigError) as error:
        start_from_nir(path, _net())
    assert str(error.value).endswith("decodes by a vote of 3 output neurons per class: set method.vote_group=3")
    start_from_nir(path, _net(vote_group=3))


def test_a_file_that_does_not_say_how_it_decodes_starts_a_voting_recipe(tmp_path):
    graph = to_nir(_file_weights(_net(vote_group=3)), (1, 8, 8))
    del graph.metadata["decode"], graph.metadata["num_classes"]  # another tool's file: 30 output neurons, no word
    start_from_nir(write_nir(graph, tmp_path / "unsaid.nir"), _net(vote_group=3))


def _snntorch_like_graph() -> nir.NIRGraph:
    """snnTorch's export of Linear(64, 32) -> Leaky(beta 0.9, reset zero) -> Linear(32, 10) -> Leaky: Affine nodes
    (torch's nn.Linear has a bias), LIF nodes with tau = dt / (1 - beta), r = tau / dt, threshold 1, no metadata
    (dt: from_nir's default 1e-4, snnTorch's)."""
    g = np.random.default_rng(0)
    tau = np.float32(1e-4 / (1 - 0.9))

    def lif(n):
        ones = np.ones(n, np.float32)
        return nir.LIF(tau=ones * tau, r=ones * np.float32(tau / 1e-4), v_leak=0 * ones, v_threshold=ones,
                       v_reset=0 * ones)

    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "0": nir.Affine(weight=g.normal(0.05, 0.2, (32, 64)).astype(np.float32),
                             bias=g.uniform(-0.05, 0.05, 32).astype(np.float32)), "1": lif(32),
             "2": nir.Affine(weight=g.normal(0.1, 0.4, (10, 32)).astype(np.float32),
                             bias=g.uniform(-0.05, 0.05, 10).astype(np.float32)), "3": lif(10),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={}, type_check=False)


def test_an_snntorch_mlp_with_biases_starts_an_mlp_run_with_model_args_bias(tmp_path):
    # before: no recipe could hold a biased layer ('the file's layer has a bias, the recipe's net has none', no key)
    path = write_nir(_snntorch_like_graph(), tmp_path / "snntorch.nir")
    recipe = ["method.name=stbp", "method.timesteps=5", "model.name=mlp", "model.args.hidden=[32]",
              "method.decay=0.9", "method.threshold=1", "method.reset=zero", f"method.init_from={path}"]
    with pytest.raises(ConfigError, match=r"the file's layer has a bias, the recipe's net has none \(an mlp takes "
                                          r"model.args.bias=true\)$"):
        build_new_run(load_config(None, recipe), torch.device("cpu"))
    net = build_new_run(load_config(None, [*recipe, "model.args.bias=true"]), torch.device("cpu")).model.eval()
    x = (torch.rand(8, 4, 1, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.5).float()
    with torch.no_grad():
        spikes = net.readout.neuron(net.body(x))
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x.flatten(2)})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    assert torch.equal(spikes, simulated)


def test_a_file_whose_input_is_flat_starts_an_mlp_with_biases(tmp_path):
    """Another tool's MLP takes [64] (no Flatten node) and has biases; before: 'has 4 layers ... the recipe's net 5'
    (the recipe's Flatten unmatched), and the bias refused for want of model.args.bias."""
    g = np.random.default_rng(6)
    ones = np.ones(12, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "fc1": nir.Affine(weight=g.normal(0.1, 0.3, (12, 64)).astype(np.float32),
                               bias=g.normal(0.0, 0.1, 12).astype(np.float32)),
             "lif1": nir.LIF(tau=ones * np.float32(DT / 0.2), r=ones * np.float32(1 / 0.2), v_leak=0 * ones,
                             v_threshold=ones * 0.7, v_reset=0 * ones, metadata={"reset": "subtract"}),
             "fc2": nir.Affine(weight=g.normal(0.1, 0.5, (10, 12)).astype(np.float32),
                               bias=g.normal(0.0, 0.1, 10).astype(np.float32)),
             "lif2": nir.LIF(tau=ones[:10] * np.float32(DT / 0.2), r=ones[:10] * np.float32(1 / 0.2),
                             v_leak=0 * ones[:10], v_threshold=ones[:10] * 0.7, v_reset=0 * ones[:10],
                             metadata={"reset": "subtract"}),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    path = write_nir(nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": DT},
                                  type_check=False), tmp_path / "flat.nir")
    ours = create_model("mlp", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                        model_args={"hidden": [12], "bias": True}, **NEURON).eval()
    start_from_nir(path, ours)
    x = _coded()
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x.flatten(2)})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    torch.testing.assert_close(spikes, simulated, rtol=0, atol=0)
    with pytest.raises(ConfigError, match="the file's layer has a bias, the recipe's net has none"):
        start_from_nir(path, _net())


def _per_layer_and_per_neuron_graph() -> nir.NIRGraph:
    """A 64-12-10 MLP whose hidden LIF neurons each have their own tau and threshold and whose output layer has
    another decay than the hidden one (k = 1 - dt/tau)."""
    g = np.random.default_rng(8)
    tau = (DT / g.uniform(0.1, 0.5, 12)).astype(np.float32)  # k from 0.5 to 0.9, per neuron
    ones = np.ones(12, np.float32)
    nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
             "fc1": nir.Affine(weight=g.normal(0.1, 0.3, (12, 64)).astype(np.float32), bias=0 * ones),
             "lif1": nir.LIF(tau=tau, r=tau / DT, v_leak=0 * ones, v_threshold=g.uniform(0.5, 1.0, 12).astype(
                 np.float32), v_reset=0 * ones, metadata={"reset": "subtract", "fires": "v >= threshold"}),
             "fc2": nir.Affine(weight=g.normal(0.1, 0.5, (10, 12)).astype(np.float32), bias=0 * ones[:10]),
             "lif2": nir.LIF(tau=ones[:10] * np.float32(DT / 0.4), r=ones[:10] * np.float32(1 / 0.4),
                             v_leak=0 * ones[:10], v_threshold=ones[:10] * 0.7, v_reset=0 * ones[:10],
                             metadata={"reset": "subtract", "fires": "v >= threshold"}),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": DT}, type_check=False)


def test_a_plif_recipe_takes_decays_and_thresholds_that_differ_by_layer_and_neuron(tmp_path):
    path = write_nir(_per_layer_and_per_neuron_graph(), tmp_path / "varied.nir")
    options = dict(neuron="plif", neuron_params="neuron", learn_threshold=True, reset="subtract")
    ours = create_model("mlp", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                        model_args={"hidden": [12], "bias": True}, **options).eval()
    start_from_nir(path, ours)
    x = _coded(steps=40, batch=6)
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x.flatten(2)})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    # PLIF's k = 1 - sigmoid(w) and its input scale 1 - k, undone in the weights, are the file's to float32 rounding
    assert float((spikes == simulated).float().mean()) > 0.995
    with pytest.raises(ConfigError, match="the file's decay differs within a layer: set method.neuron_params=channel "
                                          "or neuron"):
        start_from_nir(path, create_model("mlp", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                                          model_args={"hidden": [12], "bias": True}, neuron="plif",
                                          reset="subtract"))


def test_a_fixed_neuron_recipe_is_told_which_neuron_takes_a_files_per_neuron_constants(tmp_path):
    """docs/deployment.md: a neuron constant that differs is one line naming what to set; a lif recipe from a file of
    per-neuron decays and thresholds said only 'the recipe's net has one set per layer'."""
    path = write_nir(_per_layer_and_per_neuron_graph(), tmp_path / "varied.nir")
    lif = create_model("mlp", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                       model_args={"hidden": [12], "bias": True}, reset="subtract")
    with pytest.raises(ConfigError, match=r"one set per layer: set method.neuron=plif method.neuron_params=channel "
                                          r"\(or neuron\) method.learn_threshold=true$"):
        start_from_nir(path, lif)


def test_a_per_channel_plif_conv_net_starts_from_its_own_export(tmp_path):
    """A per-channel PLIF conv net with learnt thresholds, exported (per-neuron LIF nodes whose constants vary by
    channel) and started again in a per-channel PLIF recipe: its decays and thresholds per channel, the input scale
    1 - k undone per output channel of each conv, gives the file's spikes (GraphSimulator)."""
    options = dict(neuron="plif", neuron_params="channel", learn_threshold=True, reset="subtract")
    source = create_model("scnn_digits", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                          **options).eval()
    with torch.no_grad():
        for name, p in source.named_parameters():
            if name.endswith(".w"):  # tau from 1.5 to 5 per channel
                p.copy_(torch.log(1 / torch.linspace(0.2, 0.66, p.numel()) - 1).reshape(p.shape))
            elif name.endswith("threshold"):
                p.copy_(torch.linspace(0.4, 0.9, p.numel()).reshape(p.shape))
            else:
                torch.nn.init.normal_(p, 0.05, 0.4, generator=torch.Generator().manual_seed(p.numel()))
    path = write_nir(to_nir(source, (1, 8, 8)), tmp_path / "plif.nir")
    ours = create_model("scnn_digits", method="stbp", num_classes=10, input_shape=(1, 8, 8), timesteps=5,
                        **options).eval()
    start_from_nir(path, ours)
    x = _coded(steps=20)
    with torch.no_grad():
        spikes = ours.readout.neuron(ours.body(x))
    simulated = GraphSimulator.rate_coded(nir.read(str(path))).run({"input": x})["output"].float()
    assert 0.02 * spikes.numel() < spikes.sum() < 0.98 * spikes.numel()
    assert float((spikes == simulated).float().mean()) > 0.995


def test_a_file_that_says_how_its_net_read_its_input_needs_a_recipe_that_reads_it_so(tmp_path):
    """A deepspike file records its input coding and standardisation; a recipe coding its input otherwise, or
    feeding raw images to a net trained on standardised ones, started silently from it before."""
    poisson = _file(tmp_path, _net(encoder="poisson"), "poisson.nir")
    with pytest.raises(ConfigError, match="net read poisson input, the recipe's net direct input: set "
                                          "method.encoder=poisson$"):
        start_from_nir(poisson, _net())
    start_from_nir(poisson, _net(encoder="poisson"))
    net = _net()
    graph = to_nir(net, (1, 8, 8), metadata={"input_mean": [0.3], "input_std": [0.4]})
    standardised = write_nir(graph, tmp_path / "standardised.nir")
    recipe = ["method.name=stbp", "method.timesteps=5", "model.name=mlp", "model.args.hidden=[12]", *RECIPE,
              f"method.init_from={standardised}"]
    with pytest.raises(ConfigError, match="read standardised images .* set data.normalize=true$"):
        build_new_run(load_config(None, recipe), torch.device("cpu"))
    build_new_run(load_config(None, [*recipe, "data.normalize=true"]), torch.device("cpu"))


@pytest.mark.parametrize("changed, message", [
    ({"bipolar_scale": 2.0}, r"coded its input with bipolar_scale 2, the recipe's net with 1 \(no method key sets "
                             r"it\)$"),
    ({"bipolar_value": 2.0, "bipolar_scale": 2.0}, r"bipolar_scale 2, the recipe's net with 1"),
])
def test_a_bipolar_file_read_at_another_input_scale_is_refused(tmp_path, changed, message):
    """A file whose net read ``sign(x) 1[|x| / c > U_t]`` with c = 2 (a spikebp ``method.input_scale=2`` export, a
    converted net's ``input_scale``) started an stbp recipe that reads c = 1 silently: twice the input rate."""
    graph = to_nir(_net(encoder="bipolar"), (1, 8, 8))
    graph.metadata.update(changed)
    path = write_nir(graph, tmp_path / "scaled.nir")
    with pytest.raises(ConfigError, match=message):
        start_from_nir(path, _net(encoder="bipolar"))
    plain = write_nir(to_nir(_net(encoder="bipolar"), (1, 8, 8)), tmp_path / "plain.nir")
    start_from_nir(plain, _net(encoder="bipolar"))


def test_a_population_or_delta_file_coded_with_other_settings_names_the_key_to_set(tmp_path):
    """The population encoder's range and the delta encoder's threshold were not compared with the recipe's: a
    file coded with population_high 2 started a recipe coding with 1 silently."""
    net = _file_weights(_net(encoder="population", population_size=2, population_high=2.0))
    path = write_nir(to_nir(net, (2, 8, 8)), tmp_path / "population.nir")
    with pytest.raises(ConfigError, match=r"coded its input with population_high 2, the recipe's net with 1: set "
                                          r"method.population_high=2$"):
        start_from_nir(path, _net(encoder="population", population_size=2))
    start_from_nir(path, _net(encoder="population", population_size=2, population_high=2.0))
    delta = _file(tmp_path, _net(encoder="delta", delta_threshold=0.2), "delta.nir")
    with pytest.raises(ConfigError, match=r"delta_threshold 0.2, the recipe's net with 0.1: set "
                                          r"method.delta_threshold=0.2$"):
        start_from_nir(delta, _net(encoder="delta", delta_threshold=0.1))


def test_a_files_decode_that_is_not_a_word_says_nothing_of_a_vote(tmp_path):
    # an array (a hand-written or damaged file) ended in numpy's "truth value of an array ... is ambiguous"
    graph = to_nir(_file_weights(_net()), (1, 8, 8))
    graph.metadata["decode"] = np.array([b"vote", b"rate"])
    start_from_nir(write_nir(graph, tmp_path / "odd.nir"), _net())
