"""``deepspike demo``: train a small spiking conv net on scikit-learn's digits and report its spikes.

The recipe is ``deepspike/recipes/demo.yaml`` (shipped inside the package, so the demo also runs from an
installed wheel): STBP on the 8x8 digits, about a minute on 2 idle CPU cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from deepspike.config import load_config

DEMO_RECIPE = Path(__file__).parent / "recipes" / "demo.yaml"
DEMO_MARKER = ".demo"


def run_demo(out: str | Path, overrides: list[str]) -> dict:
    """Train the demo recipe into ``out`` (replacing an earlier demo there) and print its results."""
    from deepspike.analysis.activity import measure_activity
    from deepspike.train.run_setup import make_batches
    from deepspike.train.trainer import Trainer

    out = Path(out)
    config = load_config(DEMO_RECIPE, overrides)
    if (out / DEMO_MARKER).is_file():
        shutil.rmtree(out)  # an earlier demo run: the demo always starts fresh (other runs are never touched)
    trainer = Trainer(config, out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).touch()
    summary = trainer.fit()
    parts = trainer.parts
    batches = make_batches(config, parts.data, "test", next(parts.model.parameters()).device)
    activity = measure_activity(parts.model, batches)
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
