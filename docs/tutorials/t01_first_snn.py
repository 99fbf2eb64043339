"""Tutorial 1: your first spiking network, with deepspike's neurons in your own training loop.

A spiking layer is an ordinary ``nn.Module`` on time-first tensors ``[T, B, ...]``: ``ds.LIF`` runs its whole
time loop in one fused kernel and keeps no state between calls (nothing to reset). Stateless layers (linear,
convolution, pooling) go inside ``ds.TimeDistributed``, which runs them once on the ``[T*B, ...]`` batch. The
input is encoded into T steps (``ds.direct`` feeds the image at every step; ``ds.rate_poisson`` draws spikes),
and the output layer's currents (no neuron after it) are averaged over T into class scores. Gradients flow through
the hidden spikes by a surrogate derivative, so any torch optimiser trains the net.

Data: scikit-learn's 8x8 digits (always available). Runs in a few seconds.
"""

import torch
from sklearn.datasets import load_digits
from torch import nn

import deepspike as ds

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0  # [N, 1, 8, 8] in [0, 1]
y = torch.tensor(digits.target)
x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

T = 6  # time steps
net = nn.Sequential(
    ds.TimeDistributed(nn.Conv2d(1, 16, 3, padding=1)),  # [T, B, 1, 8, 8] -> [T, B, 16, 8, 8]
    ds.LIF(decay=0.5, threshold=0.5),  # spikes, the same shape
    ds.TimeDistributed(nn.AvgPool2d(2)),  # [T, B, 16, 4, 4]
    ds.TimeDistributed(nn.Flatten()),
    ds.TimeDistributed(nn.Linear(16 * 4 * 4, 64)),
    ds.LIF(decay=0.5, threshold=0.5),
    ds.TimeDistributed(nn.Linear(64, 10)),  # output currents [T, B, 10]
)


def scores(images: torch.Tensor) -> torch.Tensor:
    return net(ds.direct(images, T)).mean(0)  # [B, 1, 8, 8] -> [T, B, ...] -> mean over T: [B, 10]


opt = torch.optim.Adam(net.parameters(), lr=3e-3)
for epoch in range(4):
    order = torch.randperm(len(x_train))
    for i in range(0, len(order), 50):
        batch = order[i:i + 50]
        loss = nn.functional.cross_entropy(scores(x_train[batch]), y_train[batch])
        opt.zero_grad()
        loss.backward()  # surrogate gradients through the fused LIF kernels, back through time
        opt.step()
    with torch.no_grad():
        accuracy = (scores(x_test).argmax(1) == y_test).float().mean().item()
    print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy:.3f}")

# How much did the network spike? Count the hidden neurons' spikes on the test set.
with torch.no_grad():
    hidden = net[:2](ds.direct(x_test, T))  # [T, B, 16, 8, 8] spikes of the first layer
print(f"first layer: {hidden.mean().item():.3f} spikes per neuron and step")
assert accuracy > 0.8, "the tutorial's network should learn the digits"
