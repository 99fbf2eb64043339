"""Last-epoch train minus test accuracy (points) of the runs saved under benchmarks/results/session26/runs whose
names match the given glob patterns. Run from the repository root:

    python3 benchmarks/results/session26/train_test_gap.py 's26_conv_none_*' 's26_conv2_none_*' 's26_mlp_none_*'
"""

import json
import sys
from pathlib import Path

root = Path(__file__).resolve().parent / "runs"
for pattern in sys.argv[1:]:
    for run in sorted(root.glob(pattern)):
        last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
        print(f"{run.name}: train {100 * last['train_accuracy']:.2f}%, test {100 * last['test_accuracy']:.2f}%, "
              f"gap {100 * (last['train_accuracy'] - last['test_accuracy']):.2f} points")
