"""Tutorial 2: closed-form time-to-first-spike (TTFS) networks.

Every neuron fires at most once, and the class is the output neuron that fires first. deepspike computes the
spike times in closed form, with exact gradients, instead of simulating time steps. Here the non-leaky IF
neuron with an exponentially decaying synaptic current (Zhou et al. 2021, ``kernel="exp"``, tau = theta = 1):

    exp(t_j) = sum_{i in C} w_ji exp(t_i) / (sum_{i in C} w_ji - theta)     C: the inputs that arrived before t_j

(Zhang et al. 2021's ReL-PSP neuron is ``kernel="relpsp"``: ``t_j = (theta + sum_C w_ji t_i) / sum_C w_ji``.)
Tensors are spike times ``[B, ...]``; ``+inf`` means "no spike". ``ds.TTFSInput`` turns intensities into
times (bright pixels early with ``coding="1-p"``); ``ds.ttfs_loss("zhou_code", t, y)`` is Zhou et al.'s
cross-entropy over ``-exp(t)``, which pulls the right output earlier than the others.

Data: the 8x8 digits. Runs in about ten seconds.
"""

import torch
from sklearn.datasets import load_digits

import deepspike as ds

torch.manual_seed(0)
digits = load_digits()
x = torch.tensor(digits.data, dtype=torch.float32) / 16.0  # [N, 64] intensities in [0, 1]
y = torch.tensor(digits.target)
x_train, y_train, x_test, y_test = x[:1400], y[:1400], x[1400:], y[1400:]

encode = ds.TTFSInput(coding="1-p", alpha=3.0)  # intensity p -> spike time 3 (1 - p)
hidden = ds.TTFSLinear(64, 100, kernel="exp")
out = ds.TTFSLinear(100, 10, kernel="exp")


def spike_times(images: torch.Tensor) -> torch.Tensor:
    return out(hidden(encode(images)))  # [B, 10] first-spike times of the output neurons


opt = torch.optim.Adam([*hidden.parameters(), *out.parameters()], lr=1e-3)
for epoch in range(6):
    order = torch.randperm(len(x_train))
    for i in range(0, len(order), 32):
        batch = order[i:i + 32]
        loss = ds.ttfs_loss("zhou_code", spike_times(x_train[batch]), y_train[batch])
        opt.zero_grad()
        loss.backward()  # exact gradients of the closed-form spike times
        opt.step()
    with torch.no_grad():
        t = spike_times(x_test)
        accuracy = (ds.first_spike_class(t) == y_test).float().mean().item()
    print(f"epoch {epoch + 1}: loss {loss.item():.3f}, test accuracy {accuracy:.3f}")

with torch.no_grad():
    h = hidden(encode(x_test))
    decision = t.min(dim=1).values  # when the first output neuron fires: the decision time
print(f"hidden neurons that fire: {torch.isfinite(h).float().mean().item():.2f} (each at most once)")
print(f"mean decision time {decision[torch.isfinite(decision)].mean().item():.2f} (inputs arrive in [0, 3])")
assert accuracy > 0.8, "the tutorial's TTFS network should learn the digits"
