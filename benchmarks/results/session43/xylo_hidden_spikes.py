"""Hidden spikes a neuron-step of a Xylo-mapped run: XyloSim's rules (``deploy.xylosim``) against deepspike's own
neurons on the chip's integers (``deploy.xylo.quantised_model``), on the first 500 test images.

Usage (in the NIR-tools venv, which has Rockpool): ``PYTHONPATH=src python
benchmarks/results/session43/xylo_hidden_spikes.py RUN``. Prints the mean hidden spikes a neuron-step under each
rule, the share of the chip's neuron-steps with more than one spike (the chip fires up to 31 a step, deepspike's
neuron one) and both accuracies on those images."""

from __future__ import annotations

import sys

import torch

import deepspike as ds
from deepspike.deploy.xylo import quantised_model, xylo_spec
from deepspike.deploy.xylosim import chip_config, xylo_simulate


def main(run: str, n: int = 500) -> None:
    torch.manual_seed(0)
    _, parts = ds.load_run(run)
    model, x, y = parts.model, parts.data.test.x[:n], parts.data.test.y[:n]
    mapped = xylo_spec(model)
    chip_model = quantised_model(model, mapped)
    with torch.no_grad():
        counts = model.encoder(x, model.eval_timesteps).flatten(2)
        hidden, out = xylo_simulate(chip_config(mapped["quantised"]), counts)
        records = []
        hooks = [m.register_forward_hook(lambda _m, _i, o: records.append(o)) for m in chip_model.modules()
                 if type(m).__name__ in ("LIF", "SynapticLIF")]
        torch.manual_seed(0)
        scores = chip_model(x)
        for h in hooks:
            h.remove()
    print(f"{run}: hidden spikes a neuron-step: XyloSim {hidden.float().mean():.3f} (share > 1: "
          f"{(hidden > 1).float().mean():.3f}, largest {int(hidden.max())}), deepspike {records[0].float().mean():.3f}")
    print(f"accuracy on {n} images: XyloSim {(out.float().mean(0).argmax(1) == y).float().mean():.3f}, "
          f"deepspike {(scores.argmax(1) == y).float().mean():.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
