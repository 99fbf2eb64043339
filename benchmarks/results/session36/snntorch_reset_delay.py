"""How much the benchmarks' snnTorch rows moved with reset_delay (session 36): snnTorch's training step of one net
(benchmarks/peers/nets.py, batch 32, SGD, cross-entropy, as bench_rate.py times it) with snn.Leaky's reset_delay
forced to True (snnTorch's default, a detached reset: what the RESULTS tables up to session 35 timed) and to False
(the net the tables name, nets.py since 6c604eb), alternating, median of STEPS steps after 3 warm-up steps.

    OMP_NUM_THREADS=2 .bench-venv/bin/python benchmarks/results/session36/snntorch_reset_delay.py NET T
"""
import statistics
import sys
import time
from pathlib import Path

import snntorch as snn
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "peers"))
import nets  # noqa: E402

NET, T = sys.argv[1], int(sys.argv[2])
STEPS, ROUNDS = 5, 2
original = snn.Leaky.__init__


def timed(reset_delay: bool) -> float:
    def init(self, *a, **k):
        k["reset_delay"] = reset_delay
        original(self, *a, **k)

    snn.Leaky.__init__ = init
    torch.manual_seed(0)
    model = nets.build("snntorch", NET, T)
    snn.Leaky.__init__ = original
    assert all(m.reset_delay == reset_delay for m in model.modules() if isinstance(m, snn.Leaky))
    x, y = torch.rand(32, *nets.NETS[NET]), torch.randint(0, 10, (32,))
    opt, loss_fn = torch.optim.SGD(model.parameters(), lr=0.01), torch.nn.CrossEntropyLoss()
    times = []
    for i in range(3 + STEPS):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()
        if i >= 3:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


rows = {True: [], False: []}
for _ in range(ROUNDS):
    for rd in (True, False):
        rows[rd].append(timed(rd))
print(f"{NET} T={T} batch 32, snnTorch train step ms (median of {STEPS} steps, {ROUNDS} alternating rounds): "
      f"reset_delay=True {[round(v, 1) for v in rows[True]]}, reset_delay=False {[round(v, 1) for v in rows[False]]}")
