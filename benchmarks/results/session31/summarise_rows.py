"""The table of benchmarks/RESULTS.md "Session 31": test accuracy after the last epoch of every run that
``run_psn_rows.sh`` trained, per setting and seed, with the mean; reads ``runs/s31_fmrows_*`` (or the copies in
``benchmarks/results/session31/runs``).

    python benchmarks/results/session31/summarise_rows.py [FOLDER]
"""

import json
import statistics
import sys
from pathlib import Path

SETTINGS = ("lif", "psn", "masked8", "sliding8", "sliding28", "recurrent_lif", "recurrent_sliding8")


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "runs")
    print("| setting | seed 0 | seed 1 | seed 2 | mean | trainable parameters |")
    print("|---|---:|---:|---:|---:|---:|")
    for setting in SETTINGS:
        summaries = [json.loads((folder / f"s31_fmrows_{setting}_seed{s}" / "summary.json").read_text())
                     for s in range(3)]
        accuracies = [100 * s["test_accuracy"] for s in summaries]
        cells = " | ".join(f"{a:.2f}" for a in accuracies)
        print(f"| {setting} | {cells} | {statistics.mean(accuracies):.2f} | {summaries[0]['trainable_parameters']:,} |")


if __name__ == "__main__":
    main()
