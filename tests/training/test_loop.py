"""``training.loop``: a training batch that leaves a batch-norm one value per channel, and an optimizer step past
float32's range, are one-line errors that say what to change, instead of torch's ValueError or RuntimeError (a
traceback through the command line)."""

import pytest
import torch

from deepspike.config import ScheduleConfig
from deepspike.core.errors import ConfigError
from deepspike.methods import get_method
from deepspike.models.layer_specs import Flatten, Linear
from deepspike.models.spec import Architecture
from deepspike.training.loop import train_epoch
from deepspike.training.optim import make_scheduler


def _bn_mlp_with_a_last_batch_of_one(timesteps):
    arch = Architecture("bn_mlp", (Flatten(), Linear(6, norm=True), Linear(3, act=False)), (1, 2, 2), 3)
    method = get_method("stbp", {"timesteps": timesteps, "norm": "bn", "loss": "ce"})
    net = method.build(arch)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(4, 1, 2, 2, generator=g), torch.tensor([0, 1, 2, 0])),
               (torch.rand(1, 1, 2, 2, generator=g), torch.tensor([1]))]  # the last batch: one sample
    return method, net, optimizer, scheduler, batches


def test_a_last_batch_of_one_sample_at_one_step_is_a_one_line_error():
    method, net, optimizer, scheduler, batches = _bn_mlp_with_a_last_batch_of_one(timesteps=1)
    with pytest.raises(ConfigError, match=r"^a training batch of 1 sample\(s\) gives a batch-norm one value per "
                                          r"channel") as e:
        train_epoch(net, method, optimizer, scheduler, batches)
    assert "\n" not in str(e.value) and "train.batch_size" in str(e.value)


@pytest.mark.parametrize("mode", ["sltt", "ottt", "eprop"])
def test_a_last_batch_of_one_sample_in_an_online_mode_is_a_one_line_error(mode):
    """The online modes normalise one step at a time, so a batch of one sample gives a batch-norm one value per channel
    at any T: torch's ValueError came through as a traceback (bptt, normalising over T = 2 steps, trains it)."""
    method, net, optimizer, scheduler, batches = _bn_mlp_with_a_last_batch_of_one(timesteps=2)
    train_epoch(net, method, optimizer, scheduler, batches)  # bptt: two values per channel
    with pytest.raises(ConfigError, match=rf"^a training batch of 1 sample\(s\) gives a batch-norm one value per "
                                          rf"channel, .*\(train.temporal_grad={mode} normalises one step at a time\): "
                                          r"pick a train.batch_size .*, or train.temporal_grad=bptt with more than "
                                          r"one time step$") as e:
        train_epoch(net, method, optimizer, scheduler, batches, temporal_grad=mode)
    assert "\n" not in str(e.value)


def _mlp_and_batches():
    arch = Architecture("mlp", (Flatten(), Linear(6), Linear(3, act=False)), (1, 2, 2), 3)
    method = get_method("stbp", {"timesteps": 2, "loss": "ce", "threshold": 0.1})
    g = torch.Generator().manual_seed(0)
    batches = [(torch.rand(4, 1, 2, 2, generator=g), torch.tensor([0, 1, 2, 0])) for _ in range(3)]
    return method, method.build(arch), batches


@pytest.mark.parametrize("optimizer, rate, decay", [
    (torch.optim.Adam, 1e38, 0.0),  # within float32, but Adam's first step is lr / (1 - 0.9) = 1e39
    (torch.optim.SGD, 1e-3, 1e39),  # the weight decay
    (torch.optim.AdamW, 1e38, 0.01),
])
def test_an_optimizer_step_past_float32_is_a_one_line_error(optimizer, rate, decay):
    method, net, batches = _mlp_and_batches()
    opt = optimizer(net.parameters(), lr=rate, weight_decay=decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    with pytest.raises(ConfigError, match=r"^the optimizer step at learning rate .* overflows float32, whose largest "
                                          r"number is 3.403e\+38: lower optim.lr") as e:
        train_epoch(net, method, opt, scheduler, batches)
    assert "\n" not in str(e.value)


def test_a_schedule_that_grows_past_float_range_is_a_one_line_error():
    """schedule.gamma = 1e200 every epoch: the factor is 1e200 at the second epoch (the rate 1e197 overflowed torch's
    float32 step) and inf at the third (Python's ``1e200 ** 2`` raised OverflowError)."""
    method, net, batches = _mlp_and_batches()
    for lr, message in ((1e-3, "learning rate 1e\\+197"), (1e-300, "learning rate inf")):  # 1e-300: 1e-100, then inf
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        scheduler = make_scheduler(ScheduleConfig(name="step", gamma=1e200, step_size=1), opt, 5, len(batches))
        with pytest.raises(ConfigError, match=message):
            for _ in range(3):
                train_epoch(net, method, opt, scheduler, batches)


def test_the_passs_loss_and_accuracy_weigh_each_batch_by_its_samples_and_add_the_penalty(monkeypatch):
    """Batches of 4 and 1 samples at learning rate 0 (the weights stay): ``train_loss`` is the sample-weighted mean of
    the batches' losses plus the method's penalty, ``train_accuracy`` the fraction predicted right, as an
    independent pass computes them; ``max_steps=1`` counts the first batch only."""
    method, net, batches = _mlp_and_batches()
    batches = [batches[0], (batches[1][0][:1], batches[1][1][:1])]
    with torch.no_grad():
        outs = [(net(x), y) for x, y in batches]
    want_loss = sum(float(method.loss(o, y)) * len(y) for o, y in outs) / 5
    want_acc = sum(int((method.predict(o) == y).sum()) for o, y in outs) / 5
    monkeypatch.setattr(method, "penalty", lambda net: torch.tensor(0.25))
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    stats = train_epoch(net, method, opt, scheduler, batches)
    assert stats["train_loss"] == pytest.approx(want_loss + 0.25, rel=1e-6)
    assert stats["train_accuracy"] == pytest.approx(want_acc)
    first = train_epoch(net, method, opt, scheduler, batches, max_steps=1)
    assert first["train_loss"] == pytest.approx(float(method.loss(*outs[0])) + 0.25, rel=1e-6)


def test_grad_clip_bounds_the_steps_gradient_norm():
    """SGD at learning rate 1 with ``grad_clip=1e-3``: the weights move by a vector of norm 1e-3 (the gradient's norm
    is larger), where unclipped they move by the gradient itself."""
    method, net, batches = _mlp_and_batches()
    before = torch.cat([p.detach().flatten().clone() for p in net.parameters()])
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    train_epoch(net, method, opt, scheduler, batches[:1], grad_clip=1e-3)
    after = torch.cat([p.detach().flatten() for p in net.parameters()])
    assert float((after - before).norm()) == pytest.approx(1e-3, rel=1e-4)
