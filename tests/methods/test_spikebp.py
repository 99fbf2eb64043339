"""Method ``spikebp`` (Lee et al. 2020): its options' defaults against the paper's constants."""

import math
import re
from pathlib import Path

import pytest
import torch

from deepspike.config.load import load_config
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.methods.spikebp import SpikeBpOptions
from deepspike.models.registry import create_architecture
from deepspike.neurons.spikebp_lif import leak_corrected_derivative
from spikebp_reference import FiredGate

RECIPES = Path(__file__).resolve().parents[2] / "configs"


def test_defaults_are_lee2020_constants():
    """lee2020's constants as the method docstring and docs/methods/spikebp.md cite them: LIF leak
    exp(-1/tau_m) = 0.99 (tau_m = 100 steps), threshold 1, 2x2 spiking average pooling with threshold 0.75."""
    options = SpikeBpOptions()
    assert options.leak == 0.99
    assert options.threshold == 1.0
    assert options.pool_threshold == 0.75
    assert get_method("spikebp", {}).options.pool_threshold == 0.75


@pytest.mark.parametrize("key", ["threshold", "pool_threshold"])
@pytest.mark.parametrize("value", [1e39, 0.0, -1.0, 1e-39, 1e-320])
def test_thresholds_beyond_float32_or_not_positive_are_refused_by_the_options_in_one_line(key, value):
    """A float32 membrane reads 1e39 as inf: the options took it and only the build refused it, 'spikebp
    threshold=1e+39 must be a finite number > 0' (no method key; 1e39 is finite), and a pool threshold of a net
    without pooling was taken silently."""
    expected = (rf"^bad value {re.escape(repr(value))} for method.{key}: expected > 0, from float32's smallest normal "
                r"1.175e-38 to its largest 3.403e\+38$")
    with pytest.raises(ConfigError, match=expected):
        get_method("spikebp", {key: value})


def test_the_largest_float32_threshold_is_accepted():
    assert get_method("spikebp", {"threshold": 3.4e38, "pool_threshold": 3.4e38}).options.threshold == 3.4e38


@pytest.mark.parametrize("value", [0.0, -1.0, float("nan"), 1e39, 1e-320])
def test_an_input_scale_that_is_no_positive_float32_is_refused_by_the_options_in_one_line(value):
    with pytest.raises(ConfigError, match=rf"^bad value {re.escape(repr(value))} for method.input_scale: [^\n]*$"):
        get_method("spikebp", {"input_scale": value})


def test_an_input_scale_with_an_encoder_that_does_not_scale_is_refused_in_one_line():
    with pytest.raises(ConfigError, match=r"^bad value 2.0 for method.input_scale: only the bipolar encoder"):
        get_method("spikebp", {"input_scale": 2.0, "encoder": "poisson"})


def test_input_scale_divides_the_bipolar_input_of_the_built_network_as_lee2020s_mnist_code():
    """``method.input_scale: 2`` builds the encoder of lee2020's MNIST code, spikes ``((|x| / 2) > rand) sign(x)``;
    before, spikebp had no such option and its MNIST recipe fired the [0, 1] pixels at twice the code's rate."""
    net = get_method("spikebp", {"input_scale": 2.0, "timesteps": 4}).build(create_architecture("lenet", 10))
    x = torch.rand(2, 1, 28, 28, dtype=torch.float64)
    torch.manual_seed(3)
    s = net.encoder(x, 40)
    torch.manual_seed(3)
    expected = ((x.abs() / 2) > torch.rand((40, *x.shape), dtype=torch.float64)).double() * torch.sign(x)
    assert torch.equal(s, expected)
    assert 0.3 < float(s.mean() / x.mean()) < 0.7  # about half of P(spike) = x


def test_the_mnist_lenet_recipe_halves_the_pixels_as_lee2020s_mnist_code():
    method = load_config(RECIPES / "spikebp_mnist_lenet.yaml").method
    assert method.options.input_scale == 2.0 and method.options.encoder == "bipolar"


@pytest.mark.parametrize("recipe", ["spikebp_cifar10_vgg9.yaml", "spikebp_cifar10_resnet11.yaml"])
def test_the_cifar10_recipes_scale_the_input_to_lee2020s_codes_standardisation(recipe):
    """lee2020's CIFAR-10 code standardises by std (0.557, 0.549, 0.5534); data.normalize divides by CIFAR-10's
    own (0.2470, 0.2435, 0.2616), so the code fires each pixel at min(|x| / r, 1) of ours, r = their ratio per channel
    (2.255, 2.255, 2.115). The recipes had no scale (r = 1): over twice the code's input spikes."""
    ratios = [code / ours for code, ours in zip((0.557, 0.549, 0.5534), (0.2470, 0.2435, 0.2616), strict=True)]
    scale = load_config(RECIPES / recipe).method.options.input_scale
    assert min(ratios) <= scale <= max(ratios)
    assert all(abs(scale / r - 1) < 0.07 for r in ratios)


def test_the_resnet11_recipe_has_lee2020s_resnet11_code_values():
    """lee2020's ResNet11 code: lr 0.0025 (VGG9's is 0.0033) and dropout 0.25 (DO=0.25 for every mask); the recipe
    had VGG9's 0.0033 (lr 0.1056) and 0.2. Our sse averages over a batch of 16 without the code's summed 2x, so the
    same SGD step needs lr * 2 * 16 and weight decay 5e-4 * lr_code / lr."""
    config = load_config(RECIPES / "spikebp_cifar10_resnet11.yaml")
    assert config.optim.lr == pytest.approx(0.0025 * 2 * config.train.batch_size) and config.train.batch_size == 16
    assert config.optim.lr * config.optim.weight_decay == pytest.approx(0.0025 * 5e-4)
    assert dict(config.model.args) == {"dropout": 0.25}


@pytest.mark.parametrize("name, args", [("mlp", {"hidden": [8]}),
                                        ("vgg", {"blocks": [[4]], "hidden": [8], "pool": "max"})])
def test_a_pool_threshold_of_a_model_without_average_pooling_is_refused_for_a_new_run(name, args):
    """Before: ``method.pool_threshold=0.5`` on a model with no spiking pooling neuron (no pooling, or max pooling
    of spikes) was taken without a word and changed nothing."""
    arch = create_architecture(name, num_classes=3, input_shape=(1, 8, 8), **args)
    with pytest.raises(ConfigError, match=rf"^method.pool_threshold=0.5 has no effect unless the model has average "
                                          rf"pooling \(model '{name}' has none\): set that, or leave "
                                          r"method.pool_threshold at its default 0.75$"):
        get_method("spikebp", {"pool_threshold": 0.5}).check_new_run(arch)
    get_method("spikebp", {"pool_threshold": 0.75}).check_new_run(arch)  # the default spelt out: a recipe may
    pooled = create_architecture("vgg", num_classes=3, input_shape=(1, 8, 8), blocks=[[4]], hidden=[8], pool="avg")
    get_method("spikebp", {"pool_threshold": 0.5}).check_new_run(pooled)


def test_a_leak_below_1_over_e_with_the_correction_is_refused_for_a_new_run():
    """eq. 22's ``a' = (1 + ln(leak) LF / count) / V_th`` (LF <= count) is negative below leak 1/e: by hand, a neuron
    whose one spike is the last of T = 4 steps has LF = count = 1, so a' = 1 + ln(0.2) = -0.6094 at leak 0.2 (a flipped
    gradient; 1 - 1 = 0 at 1/e). Before, method.leak=0.2 trained with it; now a new run is refused in one line."""
    spikes = torch.tensor([0.0, 0.0, 0.0, 1.0]).reshape(4, 1, 1)
    assert leak_corrected_derivative(spikes, 0.2).item() == pytest.approx(1 + math.log(0.2), abs=1e-6)  # -0.6094
    assert leak_corrected_derivative(spikes, math.exp(-1)).item() == pytest.approx(0.0, abs=1e-6)
    arch = create_architecture("mlp", hidden=[8])
    with pytest.raises(ConfigError, match=r"^method.leak=0.2 is below 1/e = 0.3679 \(tau_m under 1 step\), where "
                                          r"lee2020's eq. 22 derivative 1 \+ ln\(leak\) LF / count turns negative "
                                          r"\(down to -0.6094 .*: use method.leak >= 0.3679 or "
                                          r"method.leak_correction: false$"):
        get_method("spikebp", {"leak": 0.2}).check_new_run(arch)
    get_method("spikebp", {"leak": 0.2, "leak_correction": False}).check_new_run(arch)
    get_method("spikebp", {"leak": math.exp(-1)}).check_new_run(arch)


def test_leak_correction_off_without_a_leak_is_refused_for_a_new_run():
    """Before: ``method.leak=1 method.leak_correction=false`` was taken without a word and trained as with the
    correction on: its term ``ln(leak) LF / count`` is 0 at leak 1 (the reference: equal gradients either way)."""
    arch = create_architecture("mlp", num_classes=3, input_shape=(1, 4, 4), hidden=[6])
    x, y = torch.rand(5, 1, 4, 4), torch.arange(5) % 3
    grads = []
    for correction in (True, False):
        method = get_method("spikebp", {"timesteps": 6, "leak": 1.0, "leak_correction": correction,
                                        "threshold": 0.3})
        torch.manual_seed(0)
        net = method.build(arch)
        method.loss(net(x), y).backward()
        grads.append([p.grad for p in net.parameters()])
    assert any(g.abs().sum() > 0 for g in grads[0])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    with pytest.raises(ConfigError, match=r"^method.leak_correction=False has no effect unless method.leak is below 1 "
                                          r"\(its term ln\(leak\) LF / count is 0 at leak 1\): set that, or leave "
                                          r"method.leak_correction at its default True$"):
        get_method("spikebp", {"leak": 1.0, "leak_correction": False}).check_new_run(arch)
    get_method("spikebp", {"leak": 1.0, "leak_correction": True}).check_new_run(arch)
    get_method("spikebp", {"leak": 0.9, "leak_correction": False}).check_new_run(arch)


class _Scaled(torch.autograd.Function):
    """Identity forward (exact 0 / 1 spikes), ``grad * scale`` backward (``scale`` a tensor read at backward time)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale(), None


def test_a_pooled_net_equals_autograd_through_lee2020s_per_step_graph_in_float64():
    """conv-LIF, 2x2 spiking pool, FC-LIF, integrating output, SSE, against autograd through the per-step graph of
    lee2020's code in float64: ``h_t = leak v_{t-1} + x_t``, fire strictly above V_th, hard reset (Algorithm 1),
    the leak detached, each spike's gradient times ``a' = (1[count > 0] + ln(leak) LF / count) / V_th`` of its
    neuron's whole window (eq. 22), the pooling neuron's ``1[count > 0]`` (no leak, threshold 0.75), the output
    ``V(T) / T`` with derivative ``1/T`` (eq. 6, 23) and ``E = (1/2) sum_k e_k^2`` (eq. 9) averaged over B."""
    import torch.nn.functional as F

    from deepspike.models.spec import Architecture
    from deepspike.models.wu2019 import from_code

    leak, th, steps, classes = 0.9, 0.6, 12, 3
    arch = Architecture("t", from_code("4C3-AP2-6FC", classes, 1.0, 0.0), (2, 6, 6), classes)
    method = get_method("spikebp", {"leak": leak, "threshold": th, "timesteps": steps, "encoder": "direct"})
    torch.manual_seed(0)
    net = method.build(arch).double()
    x, y = torch.rand(4, 2, 6, 6, dtype=torch.float64), torch.tensor([0, 2, 1, 1])
    loss = method.loss(net(x), y)
    loss.backward()

    weights = [p.detach().clone().requires_grad_() for p in net.parameters()]
    layers = ((leak, th, 1 / th), (1.0, 0.75, 1.0), (leak, th, 1 / th))  # (leak, V_th, a' factor): LIF, pool, LIF
    mems, spikes, derivative = [0.0] * 3, [[], [], []], [None] * 3

    def neuron(i, current):
        decay, threshold, factor = layers[i]
        mem = mems[i] + current
        ex = F.threshold(mem, threshold, 0.0)
        mem = mem - ex  # reset
        mems[i] = decay * mem.detach() + mem - mem.detach()  # the leak is noise in backward
        spike = FiredGate.apply(ex)
        spikes[i].append(spike.detach())
        return _Scaled.apply(spike, lambda: derivative[i] * factor)

    outputs = 0.0
    for t in range(steps):
        hidden = neuron(2, neuron(1, F.avg_pool2d(neuron(0, F.conv2d(x, weights[0], padding=1)), 2)).flatten(1)
                        @ weights[1].T)
        outputs = leak * outputs.detach() + outputs - outputs.detach() + hidden @ weights[2].T if t else \
            hidden @ weights[2].T  # V(T) with d V(T) / d x_t = 1
    for i, (decay, _, _) in enumerate(layers):
        s = torch.stack(spikes[i])
        count, lf = s.sum(0), sum(decay ** (steps - 1 - t) * s[t] for t in range(steps))
        derivative[i] = (count > 0).double() + math.log(decay) * lf / count.clamp_min(1)
    expected = (0.5 * ((outputs / steps - F.one_hot(y, classes).double()) ** 2).sum(1)).mean()
    expected.backward()
    assert [torch.stack(s).sum().item() for s in spikes] == [1975, 401, 48]  # every layer fires
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    for p, ref in zip(net.parameters(), weights, strict=True):  # a' is float32 (leak_filter): 2e-8 apart
        torch.testing.assert_close(p.grad, ref.grad, rtol=1e-5, atol=1e-7)
