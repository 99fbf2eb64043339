"""Method ``stbp``: eq. 5-6 neuron with reset variants, the surrogate, voting, encoders, T settings."""

import pytest
import torch
from torch import nn

from deepspike.core.errors import ConfigError
from deepspike.layers.event_frames import FrameEncoder
from deepspike.layers.voting import VotingReadout
from deepspike.methods import get_method
from deepspike.methods.rate_network import check_runs_in_pieces
from deepspike.methods.stbp import StbpOptions
from deepspike.models import create_architecture


def _neuron(**options):
    return get_method("stbp", options).neuron()


@pytest.mark.parametrize("reset, expected", [
    # decay 0.5, V_th 1, constant I = 0.9:
    # zero:     u = .9, 1.35 (fire, u -> 0), .9, 1.35 (fire)                   -> 0 1 0 1
    # subtract: u = .9, 1.35 (fire, -> .35), .175 + .9 = 1.075 (fire, -> .075), .0375 + .9 = .9375 -> 0 1 1 0
    # none:     u = .9, 1.35, .675 + .9 = 1.575, .7875 + .9 = 1.6875 (all fire) -> 0 1 1 1
    ("zero", [0, 1, 0, 1]), ("subtract", [0, 1, 1, 0]), ("none", [0, 1, 1, 1])])
def test_eq5_lif_reset_variants_by_hand(reset, expected):
    s = _neuron(decay=0.5, threshold=1.0, reset=reset)(torch.full((4, 1, 1), 0.9))
    assert s.flatten().tolist() == expected


def test_defaults_are_wu2019_cifar_constants():
    """wu2019 Table 7, CIFAR10 column (as configs/stbp_cifar10_cifarnet.yaml quotes it): k_tau1 0.25, k_tau2 0.9."""
    options = StbpOptions()
    assert options.decay == 0.25  # k_tau1, the membrane decay of eq. 5
    assert options.neunorm_decay == 0.9  # k_tau2, NeuNorm's decay (eq. 9)
    assert get_method("stbp", {}).options.decay == 0.25


def test_eq5_decay_clears_after_spike():
    # wu2019 eq. 5: u_{t+1} = k u_t (1 - o_t) + I; k = 0.25, V_th = 0.5, I = 0.45:
    # u = .45, .1125 + .45 = .5625 (fire), 0 + .45, .5625 (fire)
    s = _neuron(decay=0.25, threshold=0.5)(torch.full((4, 1, 1), 0.45))
    assert s.flatten().tolist() == [0, 1, 0, 1]


def test_rectangular_surrogate_width():
    # h(u) = (1/a) 1[|u - V_th| < a/2]; V_th = 0.5, a = 1: u = .2, .6 -> 1; u = 1.2 -> 0
    x = torch.tensor([0.2, 0.6, 1.2]).view(1, 1, 3).requires_grad_()
    _neuron(threshold=0.5, surrogate_args={"a": 1.0})(x).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 1.0, 0.0]
    x2 = x.detach().clone().requires_grad_()
    _neuron(threshold=0.5, surrogate_args={"a": 0.5})(x2).sum().backward()  # |u - .5| < .25: only .6 -> 2
    assert x2.grad.flatten().tolist() == [0.0, 2.0, 0.0]


def test_voting_readout_by_hand():
    # K = 2 classes, G = 2 neurons each; rates over T = 2: [.5, 0, 1, .5] -> class scores [.25, .75]
    x = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 0.0]]).view(2, 1, 4)
    assert VotingReadout(nn.Identity(), 2)(x).flatten().tolist() == [0.25, 0.75]


def test_vote_group_widens_the_classifier():
    model = get_method("stbp", {"timesteps": 2, "vote_group": 10}).build(
        create_architecture("stbp_mnist", width=0.25))
    assert model.body[-1].module.out_features == 100
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 10)
    with pytest.raises(ConfigError, match="vote_group"):
        get_method("stbp", {"vote_group": 0})


def test_the_counted_parameters_are_those_of_the_widened_classifier(tmp_path):
    """summary.json's ``parameters`` counted the unwidened spec (1,184 where the net has 2,624 weights)."""
    from deepspike.config import load_config
    from deepspike.training.trainer import Trainer

    cfg = load_config(None, ["method.name=stbp", "method.timesteps=2", "method.vote_group=10", "model.name=mlp",
                             "model.args.hidden=[16]", "data.name=digits", "train.epochs=1", "train.progress=false",
                             "train.max_steps_per_epoch=1"])
    summary = Trainer(cfg, tmp_path / "run").fit()
    assert summary["parameters"] == summary["trainable_parameters"] == 64 * 16 + 16 * 100


def test_training_and_inference_T_are_independent():
    model = get_method("stbp", {"timesteps": 3, "eval_timesteps": 5}).build(
        create_architecture("scnn_digits", width=0.25))
    seen = []
    model.body.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    x = torch.rand(2, 1, 8, 8)
    model.train()(x)
    model.eval()(x)
    model(x, timesteps=7)
    assert seen == [3, 5, 7]


def test_direct_encoding_feeds_the_analog_image_every_step():
    model = get_method("stbp", {"timesteps": 4}).build(create_architecture("scnn_digits", width=0.25))
    x = torch.rand(2, 1, 8, 8)
    frames = model.encoder(x, 4)
    assert frames.shape == (4, 2, 1, 8, 8) and all(torch.equal(frames[t], x) for t in range(4))


def test_frame_encoder_takes_event_frames():
    x = torch.rand(2, 6, 2, 5, 5)  # [B, T, C, H, W]
    out = FrameEncoder()(x, 4)
    assert out.shape == (4, 2, 2, 5, 5) and torch.equal(out[3, 1], x[1, 3])
    with pytest.raises(ConfigError, match="T=7"):
        FrameEncoder()(x, 7)
    model = get_method("stbp", {"timesteps": 3, "encoder": "frames"}).build(
        create_architecture("wu2019_small_events", width=0.05, input_shape=(2, 8, 8)))
    assert model(torch.rand(2, 3, 2, 8, 8)).shape == (2, 10)


@pytest.mark.slow
def test_stbp_learns_digits_quickly():
    from deepspike.data import load_dataset

    torch.manual_seed(0)
    data = load_dataset("digits")
    x, y = data.train[torch.arange(64)]
    method = get_method("stbp", {"timesteps": 2, "vote_group": 4})
    model = method.build(create_architecture("scnn_digits", width=0.25))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    first = None
    for _ in range(15):
        loss = method.loss(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.7 * first


def test_delays_a_net_could_never_deliver_are_refused():
    arch = create_architecture("dsnn", num_classes=3, input_shape=(8,), hidden=[4], delays=9)
    with pytest.raises(ConfigError, match=r"^Linear\(delays=9\) has delays of up to 8 steps, which a net run for "
                                          r"method.timesteps=8 steps would deliver after its end: give delays <= 8$"):
        get_method("stbp", {"timesteps": 8, "encoder": "frames"}).build(arch)
    get_method("stbp", {"timesteps": 9, "encoder": "frames"}).build(arch)  # the longest delay, 8 steps, arrives


@pytest.mark.parametrize("method", ["stbp", "spikebp"])
def test_an_init_kappa_past_float32_is_refused_at_load(method):
    # kappa 1e300 passed '> 0': N(0, kappa / fan_in) drew infinite float32 weights and the first loss was NaN
    with pytest.raises(ConfigError, match="^bad value 1e.300 for method.init_kappa: expected > 0 and at most"):
        get_method(method, {"init_kappa": 1e300})
    assert get_method(method, {"init_kappa": 3.4e38}).options.init_kappa == 3.4e38


def test_per_step_bfloat16_spikes_are_averaged_without_ties():
    # TET / mse_count hand the per-step spikes [T, B, K] (bfloat16 under autocast) to predict and class_scores; their
    # mean over T was taken in bfloat16, where 167 and 168 spikes of T = 300 both are 0.55859375 and argmax chose
    # class 0. Reference: the counts over T in float64.
    counts = torch.tensor([167, 168, 100])
    spikes = (torch.arange(300)[:, None, None] < counts).bfloat16()  # [T, 1, K]
    method = get_method("stbp", {"loss": "tet"})
    torch.testing.assert_close(method.class_scores(spikes).double(), counts.double()[None] / 300, rtol=0, atol=1e-7)
    assert method.predict(spikes).tolist() == [1]


class _Rectangular(torch.autograd.Function):
    """wu2019 eq. 6 forward ``f(u - V_th)`` (1 from 0 up), eq. 14 backward ``(1/a) 1[|u - V_th| < a/2]``."""

    @staticmethod
    def forward(ctx, x, a):
        ctx.save_for_backward(x)
        ctx.a = a
        return (x >= 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() < ctx.a / 2).to(x.dtype) / ctx.a, None


def test_a_neunorm_voting_net_equals_autograd_through_wu2019s_equations_in_float64():
    """The whole wu2019 net (encoding conv, NeuNorm on the two conv layers that feed convs, AP2, FC, voting, MSE)
    against autograd through a plain float64 loop of the paper's equations: eq. 5-6 (LIF with the reset
    ``(1 - o_{t-1})`` inside the graph), eq. 9 (``x_t = k_tau2 x_{t-1} + (1 - k_tau2) mean_f o_t,f``: our reading of
    ``k_tau2 + vF = 1``, layers.neunorm), eq. 10 (``o - U x`` into the next conv), eq. 11 (mean rate of each class's
    group, MSE to the one-hot label; averaged over K) and eq. 14. Table 7's N-MNIST column: V_th 0.25, a 0.25,
    k_tau1 0.3, k_tau2 0.9."""
    import torch.nn.functional as F

    from deepspike.models.spec import Architecture
    from deepspike.models.wu2019 import from_code

    k1, th, a, k2, group, classes, steps = 0.3, 0.25, 0.25, 0.9, 2, 3, 5
    arch = Architecture("t", from_code("4C3-6C3-AP2-5C3-7FC", classes, 1.0, 0.0), (2, 6, 6), classes)
    method = get_method("stbp", {"decay": k1, "threshold": th, "surrogate_args": {"a": a}, "neunorm": True,
                                 "neunorm_decay": k2, "vote_group": group, "timesteps": steps, "encoder": "frames"})
    torch.manual_seed(1)
    net = method.build(arch).double()
    names = [name for name, _ in net.named_parameters()]
    assert [name.endswith("scale") for name in names] == [False, True, False, True, False, False, False]
    for name, p in net.named_parameters():
        if name.endswith("scale"):  # U starts at 0: give it values so that eq. 10 counts
            p.data.normal_(0, 0.5)
    x = (torch.rand(3, steps, 2, 6, 6, dtype=torch.float64) < 0.5).double()  # event frames [B, T, C, H, W]
    y = torch.tensor([0, 2, 1])
    loss = method.loss(net(x), y)
    loss.backward()

    w0, u0, w1, u1, w2, w3, w4 = (p.detach().clone().requires_grad_() for p in net.parameters())
    state: dict[int, tuple] = {}

    def lif(i, current):  # eq. 5-6
        u, o = state.get(i, (0.0, 0.0))
        u = k1 * u * (1 - o) + current
        state[i] = (u, _Rectangular.apply(u - th, a))
        return state[i][1]

    aux = [0.0, 0.0]
    total = 0.0
    for t in range(steps):
        o1 = lif(0, F.conv2d(x[:, t], w0, padding=1))
        aux[0] = k2 * aux[0] + (1 - k2) * o1.mean(1, keepdim=True)  # eq. 9
        o2 = lif(1, F.conv2d(o1 - u0 * aux[0], w1, padding=1))  # eq. 10
        aux[1] = k2 * aux[1] + (1 - k2) * o2.mean(1, keepdim=True)
        o3 = lif(2, F.conv2d(F.avg_pool2d(o2 - u1 * aux[1], 2), w2, padding=1))
        total = total + lif(4, lif(3, o3.flatten(1) @ w3.T) @ w4.T)
    scores = (total / steps).view(3, classes, group).mean(2)  # eq. 11: (1/T) sum_t M o_t
    expected = ((scores - F.one_hot(y, classes).double()) ** 2).mean()
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), abs=1e-12)
    assert any(p.grad.abs().max() > 0 for p in (u0, u1))
    for p, ref in zip(net.parameters(), (w0, u0, w1, u1, w2, w3, w4), strict=True):
        torch.testing.assert_close(p.grad, ref.grad, rtol=1e-9, atol=1e-12)


def test_the_mnist_recipe_has_the_values_of_wu2019s_mnist_code():
    """configs/stbp_mnist.yaml is "wu2019's original code on MNIST": its spiking_model.py runs ``time_window = 20``
    steps with thresh 0.5, lens 0.5 (``|u - thresh| < lens``: a = 1), decay 0.2, batch 100, Adam 1e-3, 100 epochs, lr
    x0.1 every 40. The recipe (and stbp_fashion_mnist.yaml's note on the code) said T = 8."""
    from pathlib import Path

    from deepspike.config.load import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "configs" / "stbp_mnist.yaml")
    o = config.method.options
    assert (o.timesteps, o.eval_timesteps, o.decay, o.threshold, o.surrogate) == (20, None, 0.2, 0.5, "rectangular")
    assert o.surrogate_args == {"a": 1.0} and o.encoder == "poisson" and config.model.name == "stbp_mnist"
    train, optim = config.train, config.optim
    assert (train.batch_size, train.epochs, optim.name, optim.lr) == (100, 100, "adam", 1e-3)


def test_spike_delay_equals_the_plain_net_with_each_hidden_layers_spikes_shifted_by_hand():
    """``model.args.spike_delay: 1`` (Xylo's timing): the net with the delay equals the same weights without it where
    each hidden layer's spikes [T, B, H] are shifted one step by hand (``out[0] = 0``, ``out[t] = s[t - 1]``) before
    the next layer; the output layer is not delayed. The shift changes the scores (the test can fail)."""
    def build(delay):
        torch.manual_seed(0)
        method = get_method("stbp", {"timesteps": 4, "encoder": "direct", "neuron": "synaptic", "threshold": 0.3,
                                     "reset": "subtract", "decay": 0.5})
        return method.build(create_architecture("mlp", num_classes=3, input_shape=(6,), hidden=[5, 4],
                                                spike_delay=delay)).eval()

    delayed, plain = build(1), build(0)
    assert [type(m).__name__ for m in delayed.body].count("SpikeDelay") == 2
    x = torch.rand(7, 6) * 3
    h = plain.encoder(x, 4)
    for m in plain.body:
        h = m(h)
        if type(m).__name__ == "SynapticLIF":
            assert h.any()
            h = torch.cat((torch.zeros_like(h[:1]), h[:-1]))
    with torch.no_grad():
        by_hand, got = plain.readout(h), delayed(x)
    assert torch.equal(got, by_hand) and not torch.equal(got, plain(x))


def test_spike_delay_is_refused_in_one_line_by_methods_that_cannot_build_it():
    arch = create_architecture("mlp", num_classes=3, input_shape=(6,), hidden=[5], spike_delay=1)
    for method in ("spikebp", "ann", "ttfs"):
        with pytest.raises(ConfigError, match=r"^layer 1 \(Linear\(.*spike_delay=1\)\) delays its spikes by one step "
                                              r"\(model.args.spike_delay\), which this method cannot build; it needs "
                                              r"method stbp$"):
            get_method(method, {}).build(arch)
    net = get_method("stbp", {"timesteps": 4}).build(arch)  # reads the step before: not a step at a time
    with pytest.raises(ConfigError, match=r"^streaming: the layer SpikeDelay needs the whole sequence at once \(its "
                                          r"delays reach back over earlier steps\)$"):
        check_runs_in_pieces(net, "streaming")
