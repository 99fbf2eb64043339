"""Session 30: the figures quoted for the defect sweeps, measured again (RESULTS, "Session 30").

1. Streaming against the whole-sequence call at batch 1 and 3 (mlp, membrane readout, T = 5, direct input).
2. STDP sums of a Linear(784->400) layer at T = 8, B = 256 (spikes of density 0.2) computed inside bfloat16 autocast,
   as the learner did before session 30's fix, against float32: relative error of LTP - LTD.
3. The first convolution's weight standard deviation in the Fashion-MNIST ablation's frozen and STDP 1e-3 runs
   (needs runs/s30/{frozen,stdp_1e-3}/checkpoint.pt from the training commands in RESULTS; skipped without them).

    OMP_NUM_THREADS=1 PYTHONPATH=src .venv/bin/python benchmarks/results/session30/sweep_figures.py
"""

from pathlib import Path

import torch
from torch import nn

import deepspike as ds
from deepspike.layers.stdp_rule import StdpRule, stdp_correlations
from deepspike.methods.streaming import Stream
from deepspike.training.runs import load_checkpoint

torch.set_num_threads(1)
for batch in (1, 3):
    torch.manual_seed(0)
    net = ds.create_model("mlp", method="stbp", timesteps=5, readout="membrane", input_shape=(1, 8, 8),
                          model_args={"hidden": [16]}).eval()
    torch.manual_seed(5)
    x = torch.rand(batch, 1, 8, 8) * 2
    stream = Stream(net)
    for _ in range(5):
        stream.step(x)
    with torch.no_grad():
        print(f"1. streaming, batch {batch}: max |stream - whole| = {(stream.scores() - net(x)).abs().max():.3g}")

torch.manual_seed(0)
layer = nn.Linear(784, 400, bias=False)
pre = (torch.rand(8, 256, 784) < 0.2).float()
post = (torch.rand(8, 256, 400) < 0.2).float()
exact = stdp_correlations(pre, post, layer, StdpRule())
with torch.autocast("cpu", dtype=torch.bfloat16):
    low = stdp_correlations(pre, post, layer, StdpRule())
diff = exact[0] - exact[1]
error = ((low[0] - low[1]).float() - diff).norm() / diff.norm()
print(f"2. STDP LTP - LTD under bf16 autocast: dtype {low[0].dtype}, relative error {100 * error:.1f}%")

runs = Path("runs/s30")
if (runs / "frozen" / "checkpoint.pt").is_file() and (runs / "stdp_1e-3" / "checkpoint.pt").is_file():
    for name in ("frozen", "stdp_1e-3"):
        w = load_checkpoint(runs / name / "checkpoint.pt")["model"]["body.0.module.weight"]
        print(f"3. {name}: first convolution's weight standard deviation {w.std():.2f}")
else:
    print("3. skipped: runs/s30/frozen and runs/s30/stdp_1e-3 not here")
