"""stbp's direct-training choices: TET, CE and spike-count losses, per-step outputs, norm options, the max-membrane
readout and the hidden-rate regulariser (``methods.stbp_training``)."""

import math

import pytest
import torch

import deepspike as ds
from deepspike.config.reference import method_keys
from deepspike.core.errors import ConfigError
from deepspike.layers.neunorm import NeuNorm
from deepspike.layers.rate_penalty import hidden_neurons, rate_penalty
from deepspike.layers.readout import MaxMembraneReadout
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.losses import tet_loss
from deepspike.methods.stbp_training import TET_PHI_MAX
from deepspike.models import create_architecture
from deepspike.models.spec import Architecture, Flatten, Linear
from deepspike.training.temporal_grad import online_step, prepare_temporal_grad
from option_effect import assert_refused_where_it_builds_nothing


def test_tet_equals_the_per_step_mean_by_hand():
    # T = 2, B = 1, K = 2, label 0: o_1 = [0, 0] -> CE = ln 2; o_2 = [ln 3, 0] -> p_0 = 3/4, CE = ln(4/3)
    o = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])
    y = torch.tensor([0])
    ce = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    assert float(tet_loss(o, y)) == pytest.approx(ce)
    # lambda = 0.25, phi = 1: MSE over all T*B*K = ((0-1)^2 + (0-1)^2 + (ln 3 - 1)^2 + (0-1)^2) / 4
    mse = (3.0 + (math.log(3.0) - 1.0) ** 2) / 4
    assert float(tet_loss(o, y, 0.25, 1.0)) == pytest.approx(0.75 * ce + 0.25 * mse)


def _tet_phi_half_case():
    """Outputs, label and the TET loss by hand for lambda = 0.25, phi = 0.5 (Deng et al., ICLR 2022, eq. 8-10:
    L = (1 - lambda) (1/T) sum_t CE(o_t, y) + lambda MSE(o, phi))."""
    # T = 2, B = 1, K = 2, label 0. o_1 = [1/2, 1/2] -> CE = ln 2; o_2 = [1/2 + ln 3, 1/2] -> p_0 = 3/4, CE = ln(4/3)
    # (a shift of all K scores leaves softmax unchanged). MSE to phi = 1/2 over T*B*K = 4 values:
    # (0^2 + 0^2 + (ln 3)^2 + 0^2) / 4 = (ln 3)^2 / 4.
    o = torch.tensor([[[0.5, 0.5]], [[0.5 + math.log(3.0), 0.5]]])
    ce = (math.log(2.0) + math.log(4.0 / 3.0)) / 2
    mse = math.log(3.0) ** 2 / 4
    return o, torch.tensor([0]), 0.75 * ce + 0.25 * mse


def test_tet_regulariser_pulls_towards_phi_by_hand():
    """Hand TET value with phi = 0.5 (the case above uses phi = 1, which a phi left at 1 would also pass)."""
    o, y, expected = _tet_phi_half_case()
    assert float(tet_loss(o, y, 0.25, 0.5)) == pytest.approx(expected, rel=1e-6)


def test_stbp_tet_loss_uses_the_method_tet_phi():
    """``method.tet_phi`` (and ``tet_lambda``) reach the loss: the hand value of Deng et al.'s TET with phi = 0.5."""
    o, y, expected = _tet_phi_half_case()
    method = get_method("stbp", {"loss": "tet", "tet_lambda": 0.25, "tet_phi": 0.5})
    assert float(method.loss(o, y)) == pytest.approx(expected, rel=1e-6)


def test_tet_on_a_batch_is_the_mean_of_per_step_cross_entropies():
    torch.manual_seed(0)
    o, y = torch.randn(4, 3, 5), torch.tensor([0, 4, 2])
    steps = [torch.nn.functional.cross_entropy(o[t], y) for t in range(4)]
    assert float(tet_loss(o, y)) == pytest.approx(float(sum(steps) / 4), rel=1e-6)


@pytest.mark.parametrize("readout, group", [("membrane", 1), ("rate", 1), ("rate", 3)])
def test_tet_network_returns_per_step_scores_in_training_only(readout, group):
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 3, "loss": "tet", "readout": readout, "vote_group": group,
                                 "threshold": 0.2})
    net = method.build(create_architecture("scnn_digits", width=0.5))
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    steps = net(x)
    assert steps.shape == (3, 4, 10)
    method.loss(steps, y).backward()
    assert method.predict(steps).tolist() == steps.mean(0).argmax(1).tolist()
    net.eval()
    with torch.no_grad():
        assert torch.allclose(net(x), steps.detach().mean(0))  # eval: the mean of the same per-step scores


def test_ce_and_mse_keep_the_mean_output():
    net = get_method("stbp", {"timesteps": 3, "loss": "ce"}).build(create_architecture("scnn_digits", width=0.5))
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10) and not net.per_step


@pytest.mark.parametrize("norm, kind", [("bn", torch.nn.BatchNorm2d), ("tdbn", torch.nn.BatchNorm2d),
                                        ("tebn", TemporalEffectiveBatchNorm)])
def test_norm_option_places_the_chosen_norm_after_every_normed_conv(norm, kind):
    arch = create_architecture("vgg", blocks=[[4, 4]], hidden=[8])
    net = get_method("stbp", {"timesteps": 2, "norm": norm}).build(arch)
    norms = [m for m in net.body if isinstance(m, kind) or isinstance(getattr(m, "module", None), kind)]
    assert len(norms) == 2  # after the two convs (the vgg head has biases, no norm)
    if norm == "tdbn":
        assert norms[0].module.weight.tolist() == [0.5] * 4  # alpha V_th = 1 * 0.5 (the default threshold)
    assert all(isinstance(m, (TimeDistributed, TemporalEffectiveBatchNorm)) for m in norms)


def test_norm_option_errors_in_one_line():
    with pytest.raises(ConfigError, match="choose method.norm"):
        get_method("stbp", {}).build(create_architecture("vgg"))
    with pytest.raises(ConfigError, match="method.norm; valid: none, bn, tdbn, tebn"):
        get_method("stbp", {"norm": "layer"})
    with pytest.raises(ConfigError, match="eval_timesteps must equal timesteps"):
        get_method("stbp", {"norm": "tebn", "timesteps": 4, "eval_timesteps": 8})
    with pytest.raises(ConfigError, match="tet_lambda"):
        get_method("stbp", {"loss": "tet", "tet_lambda": 2.0})


def test_a_non_rectangular_surrogate_takes_only_its_own_parameters():
    # the options' default surrogate_args used to be {a: 1}, merged into every recipe's: arctan refused "a"
    neuron = get_method("stbp", {"surrogate": "arctan", "surrogate_args": {"alpha": 2.0}}).neuron()
    assert neuron.params.surrogate_args == {"alpha": 2.0}
    assert get_method("stbp", {}).options.surrogate_args == {}  # rectangular: its own default a = 1


def test_tet_under_sltt_is_the_same_per_step_sum_taken_one_step_at_a_time():
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 3, "loss": "tet", "readout": "membrane", "threshold": 0.2,
                                 "tet_lambda": 0.1})
    net = method.build(create_architecture("scnn_digits", width=0.5))
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    with torch.no_grad():
        expected = method.loss(net(x), y)  # TET of the [T, B, K] per-step scores of one call
    mean_out, loss = online_step(net, net, method, x, y, "sltt")
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)  # (1/T) sum_t TET(o_t) = TET([T, B, K])
    assert mean_out.shape == (4, 10)


def test_tebn_refuses_the_online_modes_in_one_line():
    method = get_method("stbp", {"timesteps": 3, "norm": "tebn", "readout": "membrane"})
    net = method.build(create_architecture("vgg", blocks=[[4]], hidden=[]))
    with pytest.raises(ConfigError, match="temporal_grad=bptt"):
        online_step(net, net, method, torch.rand(2, 1, 28, 28), torch.tensor([0, 1]), "sltt")


# --- readout max_membrane, loss mse_count, rate_reg (surrogate-gradient practice: SHD work, snnTorch) ---


@pytest.mark.parametrize("options, match", [
    ({"readout": "max"}, "valid: rate, membrane, max_membrane$"),
    ({"loss": "mse_count", "readout": "membrane"}, "needs method.readout: rate"),
    ({"loss": "tet", "readout": "max_membrane"}, "no per-step scores"),
    ({"readout_decay": 1.5}, "method.readout_decay"),
    ({"readout": "membrane", "membrane_decay": float("nan")}, r"^bad value nan for method.membrane_decay: expected a "
                                                               r"number in \[0, 1\]$"),
    ({"readout": "membrane", "membrane_decay": 1.5}, "bad value 1.5 for method.membrane_decay"),
    ({"readout": "rate", "membrane_decay": 0.9}, "^method.membrane_decay is the leak of the membrane readout: it needs "
                                                 "method.readout: membrane, not rate$"),
    ({"readout": "membrane", "loss": "tet", "membrane_decay": 0.9}, "^method.loss=tet scores every step, whose mean"),
    ({"count_incorrect_rate": -0.1}, "method.count_incorrect_rate"),
    # the prediction is the largest rate: a label asked to fire less than the others (0.2 vs 0.8) trained a digits
    # mlp to 5.6% test accuracy, below chance; equal rates make the loss ignore the label
    ({"loss": "mse_count", "count_correct_rate": 0.2, "count_incorrect_rate": 0.8},
     r"^bad values for method.count_correct_rate/count_incorrect_rate: expected incorrect < correct .*got 0.2/0.8$"),
    ({"count_correct_rate": 0.5, "count_incorrect_rate": 0.5}, "expected incorrect < correct"),
    ({"rate_reg": "l3"}, "valid: none, l1, l2, band$"),
    # tdBN's scale alpha V_th: 1e39 passed the options and failed the build ('tdBN alpha=1e+39 must be a finite
    # number > 0', no key); 1e-320 made the scale 0 in float32 and the normed layers silent
    ({"norm": "tdbn", "tdbn_alpha": 1e39}, r"^bad value 1e\+39 for method.tdbn_alpha: tdBN alpha=1e\+39 must be"),
    ({"norm": "tdbn", "tdbn_alpha": 1e-320}, r"^bad value 1e-320 for method.tdbn_alpha: tdBN scale .* below float32's"),
    ({"rate_reg": "band", "rate_reg_low": 0.3, "rate_reg_high": 0.2}, "low <= high"),
    # float32 losses: a weight of 1e39 made the training loss inf (reported as a divergence, "lower optim.lr")
    ({"rate_reg": "l1", "rate_reg_weight": 1e39}, r"^bad value 1e\+39 for method.rate_reg_weight: expected >= 0 and "
                                                  "at most float32's 3.403e\\+38$"),
    # TET's MSE term (o_t - phi)^2: phi 1e39 was a RuntimeError traceback ("value cannot be converted to type float
    # without overflow")
    ({"loss": "tet", "tet_lambda": 0.5, "tet_phi": 1e39}, r"^bad value 1e\+39 for method.tet_phi: expected a float32 "
                                                          r"number \(at most 3.403e\+38 in size\)$"),
    ({"loss": "tet", "tet_lambda": 0.5, "tet_phi": -1e300}, "method.tet_phi"),
    # phi = 1e20 squares to 1e40, inf in float32: the run stopped at its first batch with 'training diverged ...
    # the loss is inf ... lower optim.lr or set train.grad_clip', naming neither key
    # lambda = 1 leaves (1 - lambda) CE = 0: a digits mlp (membrane readout, T=4, 3 epochs) ended at 6.1% test accuracy
    ({"loss": "tet", "tet_lambda": 1.0}, r"^bad value 1.0 for method.tet_lambda: expected in \[0, 1\) \(at 1 the loss "
                                         r"is the MSE to tet_phi alone and ignores the label\)$"),
    ({"loss": "tet", "tet_lambda": 0.5, "tet_phi": 1e20},
     r"^bad value 1e\+20 for method.tet_phi with method.tet_lambda=0.5: expected at most 2.815e\+14 in size \(TET's"),
])
def test_readout_loss_and_rate_reg_options_are_checked_in_one_line(options, match):
    with pytest.raises(ConfigError, match=match):
        get_method("stbp", options)


def test_float32_extremes_of_tet_phi_and_rate_reg_weight_are_accepted():
    method = get_method("stbp", {"loss": "tet", "tet_phi": -3.4e38, "rate_reg": "l2", "rate_reg_weight": 3.4e38})
    options = method.options
    assert (options.tet_phi, options.rate_reg_weight) == (-3.4e38, 3.4e38)


def test_the_largest_tet_phi_keeps_tets_loss_and_gradients_finite():
    """At the bound, with outputs of its size and the opposite sign, the MSE's sum of ``(o_t - phi)^2`` fits float32
    (measured: 24 values at phi = 9.2e18 summed to inf)."""
    method = get_method("stbp", {"loss": "tet", "tet_lambda": 0.5, "tet_phi": -TET_PHI_MAX})
    outputs = torch.full((2, 3, 4), TET_PHI_MAX, requires_grad=True)  # [T, B, K]
    loss = method.loss(outputs, torch.tensor([0, 1, 2]))
    loss.backward()
    assert math.isfinite(float(loss)) and torch.isfinite(outputs.grad).all()
    assert float(loss) == pytest.approx(0.5 * (2 * TET_PHI_MAX) ** 2, rel=1e-6)  # lambda MSE, (o - phi)^2 = (2 phi)^2


def test_the_recipe_reference_lists_the_new_choices():
    choices = {k.key: k.choices for k in method_keys()["stbp"]}
    assert "max_membrane" in choices["method.readout"] and "mse_count" in choices["method.loss"]
    assert choices["method.rate_reg"] == ("none", "l1", "l2", "band")


def test_max_membrane_readout_is_built_with_its_decay_and_trains_with_ce():
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 3, "readout": "max_membrane", "readout_decay": 0.8, "loss": "ce"})
    net = method.build(create_architecture("scnn_digits", width=0.5))
    assert isinstance(net.readout, MaxMembraneReadout) and net.readout.decay == 0.8 and not net.per_step
    out = net(torch.rand(4, 1, 8, 8))
    assert out.shape == (4, 10)
    method.loss(out, torch.tensor([0, 1, 2, 3])).backward()
    assert net.body[0].module.weight.grad.abs().sum() > 0


def test_mse_count_trains_on_the_spikes_and_evaluates_on_their_rates():
    """Training hands the loss the output spikes [T, B, K] (T from the shape); evaluation the rates [B, K] over
    eval_timesteps: with no batch-norm both give the same loss. One online step (sltt) is refused."""
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 4, "loss": "mse_count", "count_correct_rate": 0.75,
                                 "count_incorrect_rate": 0.25, "threshold": 0.2})
    net = method.build(create_architecture("scnn_digits", width=0.5))
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    spikes = net(x)
    assert spikes.shape == (4, 3, 10) and set(spikes.unique().tolist()) <= {0.0, 1.0}
    train_loss = method.loss(spikes, y)
    train_loss.backward()
    net.eval()
    with torch.no_grad():
        assert float(method.loss(net(x), y)) == pytest.approx(float(train_loss), rel=1e-6)
    net.train()
    with pytest.raises(ConfigError, match="sltt/ottt/eprop"):
        online_step(net, net, method, x, y, "sltt")


def _tiny_rate_reg_net(rate_reg: str, **options):
    """x = 1 -> Linear(1 -> 2, weights 0.5 and 1) -> IF (threshold 1) -> Linear(2 -> 2) -> readout, T = 4: the
    hidden spikes are 0101 and 1111, rates 0.5 and 1 for every sample."""
    arch = Architecture("tiny", (Flatten(), Linear(2), Linear(2, act=False)), (1, 1, 1), 2)
    method = get_method("stbp", {"timesteps": 4, "decay": 1.0, "threshold": 1.0, "init_kappa": None,
                                 "rate_reg": rate_reg, **options})
    net = method.build(arch)
    hidden = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    with torch.no_grad():
        hidden.weight.copy_(torch.tensor([[0.5], [1.0]]))
    return method, net, hidden


@pytest.mark.parametrize("rate_reg, options, expected", [
    ("l1", {}, 0.75),  # mean of [0.5, 1]
    ("l2", {}, 0.625),  # mean of [0.25, 1]
    ("band", {"rate_reg_low": 0.6, "rate_reg_high": 0.7}, 0.01 / 2 + 0.05**2),  # lower: (0.1^2 + 0) / 2; mean 0.75
])
def test_rate_reg_penalty_on_a_tiny_net_by_hand(rate_reg, options, expected):
    method, net, hidden = _tiny_rate_reg_net(rate_reg, rate_reg_weight=2.0, **options)
    net(torch.ones(3, 1, 1, 1))
    penalty = method.penalty(net)
    assert float(penalty.detach()) == pytest.approx(2.0 * expected)
    penalty.backward()
    # the penalty's gradient is that of the same formula on the hidden spikes computed outside the collector
    reference = hidden.weight.grad.clone()
    hidden.weight.grad = None
    spikes = method.neuron()(hidden(torch.ones(4, 3, 1)))  # [T, B, 2]
    (2.0 * rate_penalty([spikes.mean(0)], rate_reg, options.get("rate_reg_low", 0.0),
                        options.get("rate_reg_high", 0.1))).backward()
    assert reference.abs().sum() > 0 and torch.allclose(reference, hidden.weight.grad)


def test_no_rate_reg_hooks_nothing():
    method, net, _ = _tiny_rate_reg_net("none")
    assert method.penalty(net) is None and not hasattr(net, "hidden_rates")
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())


def _penalty_and_grads(method, net, x, y):
    net.zero_grad()
    loss = method.loss(net(x), y)
    penalty = method.penalty(net)
    (loss + penalty).backward()
    return float(penalty.detach()), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("fused", ["1", "0"])
def test_rate_reg_is_the_same_with_the_fused_kernels_and_in_checkpointed_segments(fused, monkeypatch):
    """scnn_digits (neuron + tiling pool pairs, fused kernels where they run): plain BPTT against time in segments
    of 2 steps (``train.temporal_grad=checkpoint``) give the same penalty and gradients; the online modes are
    refused in one line."""
    monkeypatch.setenv("DEEPSPIKE_FUSED", fused)
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 4, "threshold": 0.2, "rate_reg": "band", "rate_reg_low": 0.05})
    net = method.build(create_architecture("scnn_digits", width=0.5))
    x, y = torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2])
    penalty, grads = _penalty_and_grads(method, net, x, y)
    assert penalty > 0 and len(net.hidden_rates.neurons) == 3
    prepare_temporal_grad(net, "checkpoint", 2, "stbp")
    segmented, segmented_grads = _penalty_and_grads(method, net, x, y)
    assert segmented == pytest.approx(penalty, rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads, segmented_grads, strict=True))
    net.time_segment = None
    with pytest.raises(ConfigError, match="sltt, ottt and eprop"):
        online_step(net, net, method, x, y, "sltt")


def test_rate_reg_gradient_is_the_same_fused_and_unfused(monkeypatch):
    grads = {}
    for fused in ("1", "0"):
        monkeypatch.setenv("DEEPSPIKE_FUSED", fused)
        torch.manual_seed(0)
        method = get_method("stbp", {"timesteps": 4, "threshold": 0.2, "rate_reg": "l2"})
        net = method.build(create_architecture("scnn_digits", width=0.5))
        grads[fused] = _penalty_and_grads(method, net, torch.rand(3, 1, 8, 8), torch.tensor([0, 1, 2]))
    assert grads["1"][0] == pytest.approx(grads["0"][0], rel=1e-6)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(grads["1"][1], grads["0"][1], strict=True))


def _mean_hidden_rate(net, x) -> float:
    spikes = []
    handles = [m.register_forward_hook(lambda m, a, s: spikes.append(s.mean())) for m in hidden_neurons(net.body)]
    net.eval()
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return float(torch.stack(spikes).mean())


def test_two_training_steps_with_the_l1_penalty_lower_the_hidden_rates():
    """Same seed, same data, two SGD steps: with ``rate_reg: l1`` the hidden layers fire less than without."""
    rates = {}
    for rate_reg in ("none", "l1"):
        torch.manual_seed(0)
        method = get_method("stbp", {"timesteps": 4, "threshold": 0.2, "rate_reg": rate_reg,
                                     "rate_reg_weight": 10.0})
        net = method.build(create_architecture("scnn_digits", width=0.5))
        x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
        before = _mean_hidden_rate(net, x)
        net.train()
        optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
        for _ in range(2):
            optimizer.zero_grad()
            loss = method.loss(net(x), y)
            penalty = method.penalty(net)
            (loss if penalty is None else loss + penalty).backward()
            optimizer.step()
        rates[rate_reg] = _mean_hidden_rate(net, x)
    assert rates["l1"] < rates["none"] and rates["l1"] < before


def test_rate_reg_reads_the_spikes_of_recurrent_layers():
    """The SHD set-up (Cramer et al. 2020): a recurrent net (``rsnn``) with the max-membrane readout; the penalty is
    the weight times the sum over layers of each layer's mean rate over all steps, as hooks of our own record them.
    The probe hooks the recurrent layers, not their neurons, so the layers still run their one-node scan
    (``layers.recurrent``) and are called once."""
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 5, "encoder": "frames", "readout": "max_membrane", "loss": "ce",
                                 "threshold": 0.2, "rate_reg": "l1", "rate_reg_weight": 0.5})
    net = method.build(create_architecture("rsnn", num_classes=4, input_shape=(12,), hidden=[6, 5]))
    layers = net.hidden_rates.neurons
    spikes = {m: [] for m in layers}
    handles = [m.register_forward_hook(lambda m, a, s: spikes[m].append(s.detach())) for m in layers]
    x = torch.rand(3, 5, 12)  # [B, T, F]
    loss = method.loss(net(x), torch.tensor([0, 1, 3]))
    penalty = method.penalty(net)
    for h in handles:
        h.remove()
    assert [type(m).__name__ for m in layers] == ["RecurrentSpiking"] * 2
    assert [len(calls) for calls in spikes.values()] == [1, 1] and spikes[layers[0]][0].shape == (5, 3, 6)
    expected = 0.5 * sum(float(torch.cat(calls).mean()) for calls in spikes.values())
    assert float(penalty.detach()) == pytest.approx(expected, rel=1e-6) and expected > 0
    (loss + penalty).backward()
    assert all(p.grad is not None for p in net.parameters())


def test_a_leaky_membrane_readout_scores_the_hand_integrated_membrane_over_t():
    """``membrane_decay`` k < 1: ``V_t = k V_{t-1} + x_t``, score ``V_T / T``, against a plain loop."""
    arch = create_architecture("mlp", num_classes=3, input_shape=(1, 4, 4), hidden=[6])
    net = get_method("stbp", {"timesteps": 5, "readout": "membrane", "membrane_decay": 0.7, "loss": "ce",
                              "encoder": "direct"}).build(arch).eval()
    x = torch.rand(2, 1, 4, 4)
    with torch.no_grad():
        currents = net.body(net.encoder(x, 5))  # [T, B, K]
        v = torch.zeros_like(currents[0])
        for current in currents:
            v = 0.7 * v + current
        torch.testing.assert_close(net(x), v / 5)


@pytest.mark.parametrize("norm", ["bn", "tdbn", "tebn"])
def test_a_norm_for_a_model_without_batch_norm_is_refused_for_a_new_run_and_an_old_run_still_loads(norm, tmp_path):
    """Before, ``scnn_digits`` (no batch-norm layers) with ``method.norm=tebn`` built and trained without any
    normalisation while the run's config recorded tebn. A new run is refused; a run saved with it before still
    builds (``build``), so that ``eval``, ``export`` and ``analyze`` read it."""
    arch = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8))
    method = get_method("stbp", {"timesteps": 2, "norm": norm})
    method.build(arch)  # what reading a saved run does
    with pytest.raises(ConfigError, match=rf"^method.norm={norm} sets the kind of the model's batch-norm layers, but "
                                          r"model 'scnn_digits' has none: use method.norm: none"):
        method.check_new_run(arch)
    recipe = ["method.name=stbp", "method.timesteps=2", f"method.norm={norm}", "model.name=scnn_digits",
              "data.name=digits", "train.epochs=1", "train.progress=false"]
    with pytest.raises(ConfigError, match=rf"^method.norm={norm} sets the kind"):
        ds.train(None, tmp_path / "run", recipe)
    assert not (tmp_path / "run" / "config.yaml").exists()
    get_method("stbp", {"timesteps": 2}).check_new_run(arch)  # norm none, the default, starts


@pytest.mark.parametrize("options, needs", [
    ({"readout_decay": 0.5}, "method.readout=max_membrane"),
    ({"tet_lambda": 0.1}, "method.loss=tet"),
    ({"tet_phi": 2.0}, "method.loss=tet"),
    ({"loss": "tet", "tet_phi": 2.0}, r"method.tet_lambda > 0"),  # lambda 0: TET's MSE term is off
    ({"count_correct_rate": 0.8}, "method.loss=mse_count"),
    ({"loss": "ce", "count_incorrect_rate": 0.1}, "method.loss=mse_count"),
    ({"neunorm_decay": 0.5}, "method.neunorm=true"),
    ({"tdbn_alpha": 2.0}, "method.norm=tdbn"),
    ({"delta_threshold": 0.3}, "method.encoder=delta"),
    ({"encoder": "poisson", "population_size": 4}, "method.encoder=population"),
    ({"rate_reg_weight": 0.5}, "method.rate_reg=l1, l2 or band"),
    ({"rate_reg": "l1", "rate_reg_high": 0.3}, "method.rate_reg=band"),
    ({"stdp_rate_plus": 0.01}, "method.stdp_layers lists a layer"),
    ({"tau_init": 4.0}, "method.neuron=plif"),
    ({"neuron": "plif", "decay": 0.5}, r"method.neuron is one with a fixed decay, not plif \(which learns its own, "
                                       r"started from method.tau_init\)"),
    ({"neuron": "alif", "syn_decay": 0.9}, "method.neuron=synaptic"),
    ({"adapt_scale": 0.5}, "method.neuron=alif"),
    ({"psn_order": 2}, "method.neuron=masked_psn or sliding_psn"),
    ({"state_high": 0.5}, "method.state_bits is set"),
    ({"neuron": "psn", "reset": "subtract"}, r"method.neuron has a reset \(the PSN family has none\)"),
])
def test_an_option_of_a_feature_that_is_off_is_refused_for_a_new_run_and_an_old_run_still_loads(options, needs):
    """Before, each of these was ignored without a word (e.g. ``readout_decay`` with the rate readout: the same net,
    ``test_readout_decay_has_no_effect_on_the_rate_readout``). A new run is refused in one line naming the key and the
    setting it needs; a run saved with it before still builds, so ``eval``, ``export`` and ``analyze`` read it."""
    arch = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8))
    key, value = next((k, v) for k, v in options.items() if k not in ("loss", "norm", "encoder", "rate_reg", "neuron"))
    method = get_method("stbp", {"timesteps": 2, **options})
    method.build(arch)  # what reading a saved run does
    with pytest.raises(ConfigError, match=rf"^method.{key}={value!r} has no effect unless {needs}[^:]*: set that, or "
                                          rf"leave method.{key} at its default "):
        method.check_new_run(arch)


@pytest.mark.parametrize("options", [
    {"readout": "max_membrane", "readout_decay": 0.5},
    {"loss": "tet", "tet_lambda": 0.1, "tet_phi": 2.0},
    {"loss": "mse_count", "count_correct_rate": 0.8, "count_incorrect_rate": 0.1},
    {"neunorm": True, "neunorm_decay": 0.5},
    {"encoder": "delta", "delta_threshold": 0.3, "delta_mode": "level"},
    {"rate_reg": "band", "rate_reg_weight": 0.5, "rate_reg_low": 0.01, "rate_reg_high": 0.3},
    {"stdp_layers": [0], "stdp_rate_plus": 0.01, "stdp_epochs": 1},
    {"neuron": "plif", "tau_init": 4.0},
    {"neuron": "alif", "decay": 0.5},
    {"neuron": "sliding_psn", "decay": 0.5},  # the PSN family starts from the no-reset LIF of method.decay
    {"neuron": "alif", "adapt_scale": 0.5},
    {"neuron": "sliding_psn", "psn_order": 2},
    {"state_bits": 4, "state_high": 0.5},
    {"neuron": "alif", "reset": "subtract"},
])
def test_an_option_of_a_feature_that_is_on_starts_a_run(options):
    model = "scnn_digits" if options.get("neunorm") else "mlp"  # NeuNorm sits after a conv layer feeding another
    arch = create_architecture(model, num_classes=10, input_shape=(1, 8, 8))
    get_method("stbp", {"timesteps": 2, **options}).check_new_run(arch)


def test_every_stbp_default_spelt_out_starts_a_run_and_a_train_call_is_refused_before_it_writes(tmp_path):
    """A recipe or a run's config.yaml may spell every option at its default: those pass. ``ds.train`` refuses the
    ignored option before the run directory gets a config."""
    arch = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8))
    spelt = {key.key.removeprefix("method."): key.default for key in method_keys()["stbp"]}
    get_method("stbp", spelt).check_new_run(arch)
    recipe = ["method.timesteps=2", "method.readout_decay=0.5", "model.name=mlp", "data.name=digits",
              "train.epochs=1", "train.progress=false"]
    with pytest.raises(ConfigError, match=r"^method.readout_decay=0.5 has no effect unless method.readout=max_membr"):
        ds.train(None, tmp_path / "run", recipe)
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_readout_decay_has_no_effect_on_the_rate_readout():
    """Why the refusal above: under ``readout: rate`` two values of ``readout_decay`` give the same net output."""
    arch = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8))
    x = torch.rand(3, 1, 8, 8)
    outputs = []
    for decay in (0.9, 0.2):
        torch.manual_seed(0)
        outputs.append(get_method("stbp", {"timesteps": 3, "readout_decay": decay}).build(arch)(x))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)


def test_neunorm_on_a_model_without_a_conv_layer_feeding_another_is_refused_for_a_new_run():
    """``mlp`` with ``method.neunorm=true`` built no NeuNorm layer (it sits after a conv layer that feeds another) and
    trained as without it, in silence; ``scnn_digits`` (two conv layers) gets one."""
    mlp = create_architecture("mlp", num_classes=10, input_shape=(1, 8, 8))
    conv = create_architecture("scnn_digits", num_classes=10, input_shape=(1, 8, 8))
    assert_refused_where_it_builds_nothing(
        get_method("stbp", {"timesteps": 2, "neunorm": True}), NeuNorm, mlp, conv,
        r"^method.neunorm=true normalises the spikes of a convolutional layer that feeds another, and model 'mlp' "
        r"has none: set method.neunorm: false")
