"""stbp's direct-training choices: TET and CE losses, per-step outputs, norm options (``methods.stbp_training``)."""

import math

import pytest
import torch

from deepspike.core.errors import ConfigError
from deepspike.layers.temporal_batchnorm import TemporalEffectiveBatchNorm
from deepspike.layers.time_distributed import TimeDistributed
from deepspike.methods import get_method
from deepspike.methods.losses import tet_loss
from deepspike.models import create_architecture
from deepspike.training.temporal_grad import online_step


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
