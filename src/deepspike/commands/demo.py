"""``deepspike demo``: what ``make demo`` runs: train a small spiking conv net on scikit-learn's digits and report
its spikes.

The recipe is ``deepspike/recipes/demo.yaml`` (shipped inside the package, so the demo also runs from an
installed wheel): STBP on the 8x8 digits, well under a minute (session 22: 11 s on two cores).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from deepspike import api
from deepspike.config import load_config
from deepspike.core.atomic import check_output_dir
from deepspike.core.errors import ConfigError

NAME = "demo"
HELP = "train a small spiking conv net on digits (under a minute) and print its spikes"
DEMO_RECIPE = Path(api.__file__).parents[1] / "recipes" / "demo.yaml"
DEMO_MARKER = ".demo"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the demo recipe")


def run(args: argparse.Namespace) -> int:
    run_demo(args.out, list(args.overrides))
    return 0


def run_demo(out: str | Path, overrides: list[str]) -> dict:
    """Train the demo recipe into ``out`` (replacing an earlier demo there) and print its results. ``out``
    must be new, empty or an earlier demo run (marked by ``.demo``): no other folder is written into."""
    out = check_output_dir(out, "--out")
    config = load_config(DEMO_RECIPE, overrides)
    if (out / DEMO_MARKER).is_file():
        shutil.rmtree(out)  # an earlier demo run: the demo always starts fresh (other runs are never touched)
    elif out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no earlier demo; pick another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).touch()
    summary = api.train(config, out)
    activity = api.spike_activity(out)
    print(f"\ndeepspike demo: {summary['method']} / {summary['model']} on {summary['dataset']}")
    print(
        f"  test accuracy       {summary['test_accuracy']:.4f}   ({summary['epochs']} epochs, "
        f"{summary['train_seconds']:.1f} s training)"
    )
    print(f"  time steps          {config.method.options.timesteps}")
    print(f"  spikes / inference  {activity.spikes_per_sample:,.1f}   (hidden + output layers)")
    print(f"  firing rate         {activity.mean_rate:.4f} spikes per neuron per step")
    print("  per layer:          " + ", ".join(f"{layer.name} {layer.rate:.3f}" for layer in activity.layers))
    print(f"  outputs in          {out}/ (config.yaml, metrics.jsonl, checkpoint.pt, summary.json)")
    return summary
