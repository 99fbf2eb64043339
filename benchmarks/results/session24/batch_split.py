"""Session 24: are a net's gradients independent of how a batch is split (what 2-process data parallelism does)?

Gradients of the mean loss over 64 digits-sized random samples, against the mean of the two halves' gradients; the
largest relative difference over the parameters, for the LIF and the synaptic neuron (stbp, scnn_digits, T = 8):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/results/session24/batch_split.py   (output: batch_split.txt)
"""

import torch

from deepspike.methods import get_method
from deepspike.models import create_architecture


def grads(neuron: str, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
    torch.manual_seed(0)
    method = get_method("stbp", {"timesteps": 8, "neuron": neuron, "decay": 0.5, "threshold": 0.5})
    net = method.build(create_architecture("scnn_digits", num_classes=10))
    method.loss(net(x), y).backward()
    return [p.grad.clone() for p in net.parameters()]


def main() -> None:
    torch.manual_seed(1)
    x, y = torch.rand(64, 1, 8, 8), torch.randint(0, 10, (64,))
    for neuron in ("lif", "synaptic"):
        whole, first, second = grads(neuron, x, y), grads(neuron, x[:32], y[:32]), grads(neuron, x[32:], y[32:])
        err = max(float((w - (a + b) / 2).abs().max() / (w.abs().max() + 1e-12))
                  for w, a, b in zip(whole, first, second, strict=True))
        print(neuron, err)


if __name__ == "__main__":
    main()
