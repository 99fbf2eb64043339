"""``deepspike demo``: train a small spiking conv net on scikit-learn's digits and report its spikes.

The recipe is ``configs/demo.yaml`` (kept in the package as ``DEMO_RECIPE`` so the demo works from an
installed wheel too): STBP (iterative LIF, rectangular surrogate, BPTT) on the 8x8 digits, a few
minutes on 2 CPU cores.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from omegaconf import OmegaConf

from deepspike.config import load_config

DEMO_RECIPE = """
method: {name: stbp, timesteps: 6, decay: 0.5, threshold: 0.5, encoder: direct, readout: rate, loss: mse}
model: {name: scnn_digits}
data: {name: digits, val_fraction: 0.0}
optim: {name: adam, lr: 0.003}
schedule: {name: cosine}
train: {epochs: 15, batch_size: 32, seed: 0}
"""


def run_demo(out: str | Path, overrides: list[str]) -> dict:
    """Train the demo recipe into ``out`` (replacing an earlier demo there) and print its results."""
    from deepspike.analysis.activity import measure_activity
    from deepspike.train.run_setup import make_batches
    from deepspike.train.trainer import Trainer

    out = Path(out)
    recipe = out.parent / f".{out.name}-recipe.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(OmegaConf.to_yaml(OmegaConf.create(DEMO_RECIPE)))
    config = load_config(recipe, overrides)
    recipe.unlink()
    if (out / "checkpoint.pt").is_file() and (out / ".demo").is_file():
        shutil.rmtree(out)  # an earlier demo: the demo always starts fresh
    trainer = Trainer(config, out)
    (out).mkdir(parents=True, exist_ok=True)
    (out / ".demo").touch()
    summary = trainer.fit()
    parts = trainer.parts
    batches = make_batches(config, parts.data, "test", next(parts.model.parameters()).device)
    activity = measure_activity(parts.model, batches)
    print(f"\ndeepspike demo: {summary['method']} / {summary['model']} on {summary['dataset']}")
    print(f"  test accuracy       {summary['test_accuracy']:.4f}   ({summary['epochs']} epochs, "
          f"{summary['train_seconds']:.1f} s training)")
    print(f"  time steps          {config.method['timesteps']}")
    print(f"  spikes / inference  {activity.spikes_per_sample:,.1f}   (hidden + output layers)")
    print(f"  firing rate         {activity.mean_rate:.4f} spikes per neuron per step")
    print("  per layer:          " + ", ".join(
        f"{layer.name} {layer.rate:.3f}" for layer in activity.layers))
    print(f"  outputs in          {out}/ (config.yaml, metrics.jsonl, checkpoint.pt, summary.json)")
    return summary
