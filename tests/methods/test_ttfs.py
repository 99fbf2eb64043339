"""Every registered TTFS network builds and trains one step at tiny width; the methods' contract."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models import create_architecture, list_models
from deepspike.models.costs import count_parameters
from deepspike.ttfs.batchnorm import TTFSBatchNorm
from option_effect import assert_refused_where_it_builds_nothing

TTFS_MODELS = sorted(e.name for e in list_models() if e.name.startswith(("zhou2021_", "zhang2021_")))
SMALL_INPUT = {"zhou2021_googlenet": (3, 32, 32)}


def test_all_paper_networks_are_registered():
    assert sorted([
        "zhou2021_mnist", "zhou2021_cifar_small", "zhou2021_cifar_medium", "zhou2021_vgg16",
        "zhou2021_googlenet", "zhang2021_fc340", "zhang2021_fc400", "zhang2021_fc800", "zhang2021_fc1000",
        "zhang2021_conv",
    ]) == TTFS_MODELS


def test_paper_shapes():
    # zhou2021 MNIST: 28 -> 14 -> 7 with SAME padding: 5*5*32 + 5*5*32*16 + 7*7*16*10 = 21440 weights
    arch = create_architecture("zhou2021_mnist")
    n = sum(p.numel() for p in get_method("ttfs", {"bias": False}).build(arch).parameters())
    assert n == 800 + 12800 + 7840
    # zhang2021 conv: the flattened map is 800 = 32 x 5 x 5
    arch = create_architecture("zhang2021_conv")
    model = get_method("stdbp", {}).build(arch)
    assert model.neuron_layers()[2].weight.shape == (128, 800)


@pytest.mark.parametrize(("method", "options", "biases"), [("ttfs", {}, 32 + 16 + 10), ("stdbp", {}, 58),
                                                         ("ttfs", {"bias": False}, 0)])
def test_the_built_architecture_holds_the_bias_spikes_weights(method, options, biases):
    """A TTFS layer has a bias spike's weight per neuron or channel (``method.bias``, on by default) whatever the
    spec's ``bias``: zhou2021_mnist's 21,440 weights and 32 + 16 + 10 biases. The architecture the parameter count and
    analyze's mesh read left them out (21,440); it holds what the net holds now, a Concat net's (googlenet) too."""
    m = get_method(method, options)
    arch = create_architecture("zhou2021_mnist")
    assert count_parameters(m.built_architecture(arch)) == 21_440 + biases
    assert sum(p.numel() for p in m.build(arch).parameters()) == 21_440 + biases
    arch = create_architecture("zhou2021_googlenet", num_classes=4, input_shape=(3, 32, 32), width=0.05)
    assert count_parameters(m.built_architecture(arch)) == sum(p.numel() for p in m.build(arch).parameters())


@pytest.mark.parametrize("name", TTFS_MODELS)
def test_network_trains_one_step(name):
    torch.manual_seed(0)
    method = "stdbp" if name.startswith("zhang") else "ttfs"
    arch = create_architecture(name, num_classes=4, input_shape=SMALL_INPUT.get(name), width=0.05)
    m = get_method(method, {"batchnorm": name == "zhou2021_cifar_small"})
    model = m.build(arch)
    x = torch.rand(3, *arch.input_shape)
    y = torch.tensor([0, 1, 3])
    out = model(x)
    assert out.shape == (3, 4)
    loss = m.loss(out, y)
    assert torch.isfinite(loss)
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters())]
    assert any(changed), f"{name}: no parameter moved"


def test_predict_earliest_spike_ties_and_silence():
    m = get_method("ttfs", {})
    t = torch.tensor([[2.0, 1.0, 3.0], [1.0, 1.0, 0.5], [0.7, 0.7, 2.0], [math.inf, math.inf, math.inf]])
    assert m.predict(t).tolist() == [1, 2, 0, -1]  # tie -> lowest index, no spike -> -1 (always wrong)


def test_stdbp_defaults_are_zhang2021():
    o = get_method("stdbp", {}).options
    assert (o.kernel, o.coding, o.jitter, o.loss, o.weight_sum_cost, o.grad_clip_rows) == (
        "relpsp", "255", 0.14, "ce", 0.0, None)
    o = get_method("ttfs", {}).options
    assert (o.kernel, o.coding, o.alpha, o.weight_sum_cost, o.l2, o.grad_clip_rows) == (
        "exp", "1-p", 3.0, 100.0, 1e-3, 10.0)


@pytest.mark.parametrize("options", [{"kernel": "alpha"}, {"coding": "log"}, {"loss": "mse"},
                                     {"alpha": 0}, {"grad_clip_rows": -1}, {"theta": 0}, {"bogus": 1}])
def test_bad_options_raise_config_errors(options):
    with pytest.raises(ConfigError):
        get_method("ttfs", options)


@pytest.mark.parametrize("method", ["ttfs", "stdbp"])
@pytest.mark.parametrize("key, value", [("t_silent", 1e39), ("t_silent", -1e39), ("init_scale", 1e300)])
def test_times_and_scales_past_float32_are_refused_at_load(method, key, value):
    # the times and weights are float32: t_silent 1e39 failed in the first loss ("value cannot be converted to type
    # float without overflow"), init_scale 1e300 when the weights were drawn ("to is out of bounds for float"), each a
    # traceback with exit 1
    with pytest.raises(ConfigError, match=f"method.{key}"):
        get_method(method, {key: value})


@pytest.mark.parametrize("method", ["ttfs", "stdbp"])
@pytest.mark.parametrize("key", ["theta", "tau", "weight_sum_cost", "l2"])
def test_neuron_constants_and_costs_past_float32_are_refused_at_load(method, key):
    # float32 arithmetic: stdbp theta 1e308 failed in the first forward pass ("value cannot be converted to type float
    # without overflow", a traceback), ttfs theta 1e39 gave an infinite loss, tau 1e39 ran as tau = inf, and costs of
    # 1e39 made the loss inf or NaN, which the run reported as a divergence ("lower optim.lr")
    with pytest.raises(ConfigError, match=rf"^bad value 1e\+39 for method.{key}: expected .*at most float32's"):
        get_method(method, {key: 1e39})
    get_method(method, {key: 3.4e38})


def test_the_largest_float32_time_and_scale_still_train():
    m = get_method("ttfs", {"t_silent": 3.4e38, "init_scale": 3.4e38})
    assert m.loss(torch.tensor([[1.0, math.inf]]), torch.tensor([1])).isfinite()


def test_model_state_dict_round_trip_and_deepcopy():
    import copy

    arch = create_architecture("zhang2021_fc340", width=0.05)
    m = get_method("ttfs", {"batchnorm": True})
    model = m.build(arch)
    clone = copy.deepcopy(model)
    x = torch.rand(2, 1, 28, 28)
    model.eval()
    clone.eval()
    torch.testing.assert_close(clone(x), model(x))
    other = get_method("ttfs", {}).build(arch).eval()
    other.load_state_dict(model.state_dict())
    torch.testing.assert_close(other(x), model(x))


@pytest.mark.parametrize("method", ["ttfs", "stdbp"])
@pytest.mark.parametrize("alpha", [1e-300, 1e-40])
def test_an_alpha_below_float32s_smallest_normal_is_refused_at_load(method, alpha):
    """``method.alpha=1e-300`` is 0 in float32: every input time became 0 and the run trained silently at chance
    (10%); now below float32's smallest normal number (as ``ttfs_window``'s alpha) it is a one-line ConfigError."""
    with pytest.raises(ConfigError, match=rf"^bad value {alpha!r} for method.alpha: expected in \[1.175e-38, "):
        get_method(method, {"alpha": alpha})
    assert get_method(method, {"alpha": 1.2e-38}).options.alpha == 1.2e-38

@pytest.mark.parametrize("method", ["ttfs", "stdbp", "ttfs_window"])
@pytest.mark.parametrize("init_from", ["", "  "])
def test_an_empty_init_from_is_refused_not_taken_as_no_run(method, init_from):
    """``method.init_from=`` (empty text) trained from scratch in silence, as if no run had been named."""
    with pytest.raises(ConfigError, match=r"^bad value '\s*' for method.init_from: expected a run directory to start "
                                          r"from, or null \(empty text named no run and started from scratch\)$"):
        get_method(method, {"init_from": init_from})


@pytest.mark.parametrize("method, options, needs", [
    ("ttfs", {"weight_sum_cost": 0.0, "l2": 0.0, "reg_reduction": "sum"}, "method.weight_sum_cost or method.l2 is "),
    ("stdbp", {"reg_reduction": "sum"}, "method.weight_sum_cost or method.l2 is "),  # stdbp: both 0 by default
    ("ttfs", {"measures": False, "measure_batches": 5}, "method.measures=true"),
    ("ttfs_window", {"spike_cost_cap": 0.5}, "method.spike_cost is above 0"),
    ("ttfs_window", {"measures": False, "measure_batches": 5}, "method.measures=true"),
    ("stdbp", {"tau": 2.0}, r"method.kernel=exp, method.loss=zhou_code or zhou_paper, or method.batchnorm=true "
                            r"\(relpsp neurons and the ce loss have no time constant\)"),  # relpsp and ce by default
])
def test_an_option_the_run_would_ignore_is_refused_for_a_new_run_and_an_old_run_still_loads(method, options, needs):
    """Before, each was ignored without a word (no regulariser: ``penalty`` returns None before reading the reduction;
    no measures: ``epoch_measures`` returns {}; no spike cost: the cap is never read)."""
    arch = create_architecture("zhou2021_mnist", num_classes=10, input_shape=(1, 8, 8))
    built = get_method(method, options)
    built.build(arch)  # what reading a saved run does
    key = next(k for k in options if k in ("reg_reduction", "measure_batches", "spike_cost_cap", "tau"))
    with pytest.raises(ConfigError, match=rf"^method.{key}={options[key]!r} has no effect unless {needs}.*: set that, "
                                          rf"or leave method.{key} at its default "):
        built.check_new_run(arch)
    get_method(method, {}).check_new_run(arch)  # the defaults, and with the feature on:
    on = {"reg_reduction": {"weight_sum_cost": 1.0}, "measure_batches": {"measures": True}, "spike_cost_cap":
          {"spike_cost": 0.1}, "tau": {"kernel": "exp"}}[key]
    get_method(method, {**options, **on}).check_new_run(arch)


def test_batchnorm_on_a_model_without_convolutions_is_refused_for_a_new_run():
    """The time-domain batch-norm sits after convolutional layers only (``ttfs_network._activation``). Before: on the
    fully connected zhang2021_fc340, method.batchnorm=true built the same net without a word (no TTFSBatchNorm)."""
    arch = create_architecture("zhang2021_fc340", num_classes=10, input_shape=(1, 8, 8))
    conv = create_architecture("zhou2021_mnist", num_classes=10, input_shape=(1, 8, 8))
    assert_refused_where_it_builds_nothing(
        get_method("ttfs", {"batchnorm": True}), TTFSBatchNorm, arch, conv,
        r"^method.batchnorm=True has no effect unless the model has convolutional layers \(model 'zhang2021_fc340' "
        r"has none\): set that, or leave")


@pytest.mark.parametrize("model", ["zhou2021_mnist", "scnn_digits"])
def test_tau_changes_nothing_under_relpsp_and_ce(model):
    """The reference for refusing ``method.tau`` there: stdbp's relpsp neurons and ce loss give the same output times
    and gradients bit for bit at tau 1 and 3 (ttfs' exp kernel does not)."""
    arch = create_architecture(model, num_classes=10, input_shape=(1, 8, 8))
    x, y = torch.rand(6, 1, 8, 8, generator=torch.Generator().manual_seed(0)), torch.arange(6)
    for method, same in (("stdbp", True), ("ttfs", False)):
        seen = []
        for tau in (1.0, 3.0):
            m = get_method(method, {"tau": tau, "jitter": 0.0})
            torch.manual_seed(0)
            net = m.build(arch)
            out = net(x)
            m.loss(out, y).backward()
            seen.append([out.detach(), *(p.grad.clone() for p in net.parameters() if p.grad is not None)])
        assert all(torch.equal(a, b) for a, b in zip(*seen, strict=True)) == same
