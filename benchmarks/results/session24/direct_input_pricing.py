"""Session 24: the energy of a direct-input stbp MLP (digits, 1 epoch, T = 4) analysed on 1, 2 and 3 test samples.

Before the fix one sample repeated over T steps read as threshold-valued spikes and its first layer was priced in
ACs (SNN / ANN 0.380 at one sample against 1.623 at two); now the layer receiving the analog encoder's output is
priced in MACs whatever the number of samples.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session24/direct_input_pricing.py OUT
"""

import sys
from pathlib import Path

from deepspike.analysis.report import AnalysisOptions, analyze_run
from deepspike.config.load import load_config
from deepspike.training.trainer import Trainer


def main() -> None:
    root = Path(sys.argv[1]) / "mlp_run"
    if not (root / "checkpoint.pt").exists():
        Trainer(load_config(None, ["method.name=stbp", "model.name=mlp", "data.name=digits", "train.epochs=1",
                                   "train.progress=false", "method.timesteps=4"]), root).fit()
    for limit in (1, 2, 3):
        options = AnalysisOptions(limit=limit, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False,
                                  plots=False, raster=0)
        a = analyze_run(root, None, options)
        ops = {k: v for k, v in a["operations"].items() if k.startswith("snn_") and "per_sample" in k}
        print(limit, ops, "45nm_fp32 SNN/ANN", round(1 / a["energy"]["45nm_fp32"]["ann_over_snn"], 4))


if __name__ == "__main__":
    main()
