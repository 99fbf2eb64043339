"""Session 24: a rate-coded run against its NIR file, read by ``from_nir`` and stepped by
``GraphSimulator.rate_coded``, on the whole test split with the same encoded input.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session24/rate_nir_roundtrip.py RUN FILE.nir

(``FILE.nir`` from ``deepspike export RUN --nir FILE.nir``.) Prints the three accuracies and how many output spike
entries of the simulator differ from ``from_nir``'s.
"""

import sys

import nir
import torch

import deepspike as ds
from deepspike.deploy import GraphSimulator, from_nir
from deepspike.training.evaluate import eval_pass
from deepspike.training.run_setup import make_batches


def main() -> None:
    run, path = sys.argv[1], sys.argv[2]
    config, parts = ds.load_run(run)
    model, imported, graph = parts.model.eval(), from_nir(path), nir.read(path)
    meta = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in graph.metadata.items()}
    steps, direct = int(meta["timesteps"]), str(meta["encoder"]) == "direct"
    sim = GraphSimulator.rate_coded(graph)
    captured: list[torch.Tensor] = []
    if not direct:
        model.encoder.register_forward_hook(lambda m, i, o: captured.append(o.detach().clone()))
    correct, n, differing = [0, 0, 0], 0, 0
    with eval_pass(model):
        for x, y in make_batches(config, parts.data, "test", torch.device("cpu")):
            predictions = [parts.method.predict(model(x))]
            series = x.unsqueeze(0).expand(steps, *x.shape).contiguous() if direct else torch.cat(captured)
            captured.clear()
            sim.reset()
            outputs = [imported(series), sim.run({"input": series})["output"].float()]
            differing += int((outputs[1] != outputs[0]).sum())
            predictions += [o.sum(0).argmax(1) if meta["decode"] == "rate" else o[-1].argmax(1) for o in outputs]
            correct = [c + int((p == y).sum()) for c, p in zip(correct, predictions, strict=True)]
            n += len(y)
    print(f"samples {n}: pytorch {correct[0] / n:.6f}  from_nir {correct[1] / n:.6f}  GraphSimulator "
          f"{correct[2] / n:.6f}  differing output spike entries {differing}")


if __name__ == "__main__":
    main()
