"""Learning-rate schedules against hand-computed factors; the optimizer's parameter groups."""

import pytest
import torch

from deepspike.config import ScheduleConfig
from deepspike.config.schema import OptimConfig
from deepspike.layers.delays import DelayedLinear
from deepspike.training.optim import make_optimizer, make_scheduler, schedule_factor


def test_schedule_factors_by_hand():
    step = ScheduleConfig(name="step", step_size=2, gamma=0.5)
    assert [schedule_factor(step, e, 10, 1) for e in (0, 1.9, 2, 4.5)] == [1, 1, 0.5, 0.25]
    multi = ScheduleConfig(name="multistep", milestones=[3, 1], gamma=0.1)
    assert schedule_factor(multi, 0.5, 10, 1) == 1
    assert schedule_factor(multi, 1, 10, 1) == pytest.approx(0.1)
    assert schedule_factor(multi, 3, 10, 1) == pytest.approx(0.01)
    cos = ScheduleConfig(name="cosine", min_factor=0.2)
    assert schedule_factor(cos, 0, 10, 1) == pytest.approx(1)
    assert schedule_factor(cos, 5, 10, 1) == pytest.approx(0.2 + 0.8 * 0.5)  # cos(pi/2) = 0
    assert schedule_factor(cos, 10, 10, 1) == pytest.approx(0.2)
    lin = ScheduleConfig(name="linear")
    assert schedule_factor(lin, 2.5, 10, 1) == pytest.approx(0.75)
    warm = ScheduleConfig(name="none", warmup_epochs=2)
    # 4 steps per epoch: step 0 is epoch 0 -> (0 + 1/4) / 2
    assert schedule_factor(warm, 0, 10, 4) == pytest.approx(0.125)
    assert schedule_factor(warm, 3, 10, 4) == 1


@pytest.mark.parametrize("name", ["step", "multistep"])
def test_a_factor_past_float_range_is_infinite_not_an_overflow_error(name):
    """gamma ** k past float range: Python's ``1e200 ** 2`` raised OverflowError (a traceback out of the scheduler's
    step); the factor is inf, which the training loop refuses in one line."""
    schedule = ScheduleConfig(name=name, gamma=1e200, step_size=1, milestones=[1, 2])
    assert schedule_factor(schedule, 1, 10, 1) == 1e200
    assert schedule_factor(schedule, 2, 10, 1) == float("inf")


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_delay_positions_learn_in_their_own_group_and_follow_the_schedule(name):
    layer = DelayedLinear(3, 2, 4)
    opt = make_optimizer(OptimConfig(name=name, lr=0.01, weight_decay=1e-4), layer.parameters())
    assert [(g["params"], g["lr"], g["weight_decay"]) for g in opt.param_groups] == [
        ([layer.weight], 0.01, 1e-4), ([layer.position], pytest.approx(1.0), 0.0)]
    sched = make_scheduler(ScheduleConfig(name="step", step_size=1, gamma=0.5), opt, 4, 1)
    opt.step()
    sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.005, 0.5])
    plain = make_optimizer(OptimConfig(name=name, lr=0.01), torch.nn.Linear(3, 2).parameters())
    assert len(plain.param_groups) == 1


def test_linear_ends_at_min_factor_and_a_short_warm_up_is_capped_at_one():
    lin = ScheduleConfig(name="linear", min_factor=0.2)
    # 1 - (1 - 0.2) * 2.5 / 10 = 0.8; at the end 0.2
    assert schedule_factor(lin, 2.5, 10, 1) == pytest.approx(0.8)
    assert schedule_factor(lin, 10, 10, 1) == pytest.approx(0.2)
    # warm-up of 0.3 epochs at 2 steps per epoch: step 0 (e = 0) is min(1, (0 + 1/2) / 0.3) = 1, not 1.67
    assert schedule_factor(ScheduleConfig(name="none", warmup_epochs=0.3), 0, 10, 2) == 1


def test_the_scheduler_steps_in_fractions_of_an_epoch():
    opt = make_optimizer(OptimConfig(name="sgd", lr=1.0), torch.nn.Linear(1, 1).parameters())
    sched = make_scheduler(ScheduleConfig(name="cosine"), opt, 4, 2)
    opt.step()
    sched.step()  # step 1 of 2 per epoch: e = 0.5, factor (1 + cos(pi * 0.5 / 4)) / 2 = 0.96193976625564337
    assert opt.param_groups[0]["lr"] == pytest.approx(0.96193976625564337)
    make_scheduler(ScheduleConfig(name="cosine"), opt, 4, 0)  # no step per epoch: no division by zero


def _one_step(cfg: OptimConfig) -> float:
    p = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = make_optimizer(cfg, [p])
    p.sum().backward()  # gradient 1
    opt.step()
    return p.item()


def test_the_optimizers_take_the_configs_settings_by_hand():
    # sgd, lr 0.1, momentum 0.5, weight decay 0.1: g = 1 + 0.1 * 1 = 1.1, buffer 1.1;
    # nesterov steps by g + 0.5 * 1.1 = 1.65 -> 1 - 0.165; plain momentum by the buffer 1.1 -> 1 - 0.11
    sgd = {"name": "sgd", "lr": 0.1, "momentum": 0.5, "weight_decay": 0.1}
    assert _one_step(OptimConfig(**sgd, nesterov=True)) == pytest.approx(0.835)
    assert _one_step(OptimConfig(**sgd)) == pytest.approx(0.89)
    # Adam's first step is lr * sign(g) (bias-corrected): 1 - 0.1; AdamW first decays p by (1 - lr wd) = 0.95
    assert _one_step(OptimConfig(name="adam", lr=0.1, weight_decay=0.5)) == pytest.approx(0.9)
    assert _one_step(OptimConfig(name="adamw", lr=0.1, weight_decay=0.5)) == pytest.approx(0.85)
    adam = make_optimizer(OptimConfig(name="adam", betas=[0.5, 0.6]), torch.nn.Linear(1, 1).parameters())
    assert adam.param_groups[0]["betas"] == (0.5, 0.6)
