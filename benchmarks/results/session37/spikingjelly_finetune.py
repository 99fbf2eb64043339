"""Session 37: a net trained in SpikingJelly, scored and trained further in deepspike from its NIR file.

    OMP_NUM_THREADS=1 .nir-venv/bin/python benchmarks/results/session37/spikingjelly_finetune.py OUT_DIR

1. SpikingJelly trains a 64-32-10 MLP of ``LIFNode`` neurons (tau 10 without input decay: ``v = 0.9 v + x``,
   threshold 1, hard reset to 0, its default sigmoid surrogate; ``layer.Linear`` with biases) on deepspike's digits
   training split (the image at each of T = 8 steps; cross-entropy of the spike counts; Adam 5e-3, batch 64,
   ``--sj-epochs`` epochs) and exports it with ``nir_exchange.export_to_nir`` (dt 1e-4 s). snnTorch 1.0.0's and
   Norse's exports cannot be read here (``deploy.peers.known_issues.IMPORT_ISSUES``: a type-inference failure, and
   tau = dt / tau_mem_inv).
2. ``deepspike eval OUT/spikingjelly.nir --data digits --encoder direct --timesteps 8``: the file scored in
   deepspike.
3. ``deepspike train`` an stbp run with ``method.init_from=OUT/spikingjelly.nir`` (``RECIPE``: the same layers and
   neurons) for ``--epochs`` epochs, and ``deepspike eval`` of it.
Prints one JSON object: SpikingJelly's own test accuracy, the file's in deepspike, the fine-tuned run's.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
from pathlib import Path

import torch
from spikingjelly.activation_based import functional, layer, neuron
from spikingjelly.activation_based.nir_exchange import export_to_nir
from torch import nn

from deepspike.cli import main
from deepspike.data import load_dataset
from deepspike.deploy import write_nir

STEPS, DT = 8, 1e-4
RECIPE = ["method.name=stbp", f"method.timesteps={STEPS}", "method.encoder=direct", "method.decay=0.9",
          "method.threshold=1.0", "method.reset=zero", "method.loss=ce", "model.name=mlp", "model.args.hidden=[32]",
          "model.args.bias=true", "data.name=digits", "train.progress=false"]


def sj_net() -> nn.Module:
    torch.manual_seed(0)

    def lif():
        return neuron.LIFNode(tau=10.0, decay_input=False, v_reset=0.0, v_threshold=1.0)

    return nn.Sequential(layer.Linear(64, 32), lif(), layer.Linear(32, 10), lif())


def counts(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Spike counts ``[B, 10]`` of images ``x [B, 1, 8, 8]`` given at each of ``STEPS`` steps."""
    functional.reset_net(net)
    return sum(net(x.flatten(1)) for _ in range(STEPS))


def train_sj(epochs: int) -> tuple[nn.Module, float]:
    data = load_dataset("digits")
    net = sj_net()
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(data.train.y), generator=g).split(64):
            loss = nn.functional.cross_entropy(counts(net, data.train.x[idx]), data.train.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        accuracy = float((counts(net, data.test.x).argmax(1) == data.test.y).float().mean())
    return net, accuracy


def deepspike_json(args: list[str]) -> dict:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(args) == 0, args
    return json.loads(out.getvalue())


def run(out: Path, sj_epochs: int, epochs: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    net, theirs = train_sj(sj_epochs)
    functional.reset_net(net)
    path = write_nir(export_to_nir(net, torch.zeros(1, 64), dt=DT), out / "spikingjelly.nir")
    scored = deepspike_json(["eval", str(path), "--data", "digits", "--encoder", "direct", "--timesteps",
                             str(STEPS)])
    run_dir = out / "finetuned"
    deepspike_json(["train", *RECIPE, f"method.init_from={path}", f"train.epochs={epochs}", "--out", str(run_dir)])
    tuned = deepspike_json(["eval", str(run_dir)])
    return {"spikingjelly_test_accuracy": theirs, "file_in_deepspike": scored["accuracy"],
            "finetuned_test_accuracy": tuned["test_accuracy"], "sj_epochs": sj_epochs, "epochs": epochs,
            "test_samples": scored["samples"], "recipe": RECIPE}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--sj-epochs", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=3)
    a = parser.parse_args()
    print(json.dumps(run(a.out, a.sj_epochs, a.epochs), indent=2))
