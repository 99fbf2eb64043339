"""Issue 22: training step time of the ablation's rows, interleaved in one process so shared-CPU load hits every
row alike (the ablation's own step times come from separate runs minutes apart).

Each row builds ``configs/stbp_fmnist_ablation.yaml``'s net with its overrides and times forward + loss +
backward + Adam step on a fixed batch of 64 random 1x28x28 images; 3 warm-up steps, then ``ROUNDS`` (5) rounds of
``STEPS`` (10) steps per row, rows interleaved; the minimum over rounds of the mean step time is reported.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/issue22_step_time.py
"""

from __future__ import annotations

import time

import torch

from deepspike.config import load_config
from deepspike.methods.registry import method_from_options
from deepspike.models import create_architecture

RECIPE = "configs/stbp_fmnist_ablation.yaml"
ROWS = {
    "tet-tdbn": ["method.loss=tet", "method.norm=tdbn"],
    "ce-tdbn": ["method.loss=ce", "method.norm=tdbn"],
    "mse-tdbn": ["method.loss=mse", "method.norm=tdbn"],
    "tet-tebn": ["method.loss=tet", "method.norm=tebn"],
    "tet-bn": ["method.loss=tet", "method.norm=bn"],
    "tet-none": ["method.loss=tet", "method.norm=none", "model.args.batch_norm=false"],
}
STEPS, ROUNDS = 10, 5


def _setup(overrides: list[str]):
    cfg = load_config(RECIPE, overrides)
    method = method_from_options(cfg.method.name, cfg.method.options)
    arch = create_architecture(cfg.model.name, num_classes=10, input_shape=(1, 28, 28), width=cfg.model.width,
                               **cfg.model.args)
    net = method.build(arch).train()
    return method, net, torch.optim.Adam(net.parameters(), lr=1e-3)


def _steps(method, net, opt, x, y, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        opt.zero_grad(set_to_none=True)
        method.loss(net(x), y).backward()
        opt.step()
    return (time.perf_counter() - start) / n


if __name__ == "__main__":
    torch.manual_seed(0)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    setups = {name: _setup(overrides) for name, overrides in ROWS.items()}
    for setup in setups.values():
        _steps(*setup, x, y, 3)
    best = dict.fromkeys(ROWS, float("inf"))
    for _ in range(ROUNDS):
        for name in ROWS:
            best[name] = min(best[name], _steps(*setups[name], x, y, STEPS))
    print("| row | step (ms) |\n|---|---|")
    for name, seconds in best.items():
        print(f"| {name} | {1000 * seconds:.0f} |")
