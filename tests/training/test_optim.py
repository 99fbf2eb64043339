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
