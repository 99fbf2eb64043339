"""Test accuracy of a run trained with float membranes, evaluated as trained and with every LIF membrane quantised
to ``bits`` levels on [-th, 1.2 th] (``neurons.state_quant``, snnTorch's defaults), on the first ``samples`` test
images. Run from the repository root after ``run_state_bits.sh``:

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session26/eval_quantised_inference.py \\
        runs/s26_bits_float_seed0 8 300
"""

import sys
from dataclasses import replace

import torch

from deepspike.api.training import load_run
from deepspike.neurons import LIF
from deepspike.neurons.state_quant import StateQuant

run, bits, samples = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
_, parts = load_run(run, device="cpu")
model = parts.model.eval()
x, y = parts.data.test.x[:samples], parts.data.test.y[:samples]
with torch.no_grad():
    trained = float((parts.method.predict(model(x)) == y).float().mean())
    for m in model.modules():
        if isinstance(m, LIF):
            m.params = replace(m.params, state_quant=StateQuant(bits))
    quantised = float((parts.method.predict(model(x)) == y).float().mean())
print(f"{run}: float membranes {100 * trained:.2f}%, {bits}-bit membranes {100 * quantised:.2f}% ({samples} test "
      "samples)")
