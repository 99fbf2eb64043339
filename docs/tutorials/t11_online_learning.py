"""Tutorial 11: learning online, with memory that does not grow with T (e-prop).

Backpropagation through time keeps every step's activations until the end of the sequence, so its memory grows
with the number of steps T, and nothing is learnt before the sequence ends. Online rules learn as the steps arrive.
E-prop (Bellec et al., Nat. Commun. 2020; ``train.temporal_grad=eprop``) forms the gradient forward in time: each
synapse keeps an eligibility trace of how its weight moved its neuron's state, and each step's error, reaching the
neuron through the readout, turns the traces into weight changes. With Bellec et al.'s adaptive-threshold neurons
(``method.neuron=alif``: each spike raises the neuron's threshold, which decays back) a synapse also traces how it
moved that threshold. ``train.eprop_feedback=random`` sends the error back through fixed random weights instead of
the transposed ones, as a chip that cannot read its weights backwards would.

Here a recurrent net of 64 adaptive neurons reads each 8x8 digit one row per step (``digits_rows``, T = 8) and is
trained three ways from the same seed; then one e-prop training step is measured at growing T against BPTT's.
"""

import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import deepspike as ds
from deepspike.training.temporal_grad import online_step, prepare_temporal_grad

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial11_"))
recipe = ["method.name=stbp", "method.timesteps=8", "method.encoder=frames", "method.readout=membrane",
          "method.loss=ce", "method.decay=0.9", "method.threshold=1.0", "method.reset=subtract",
          "method.surrogate=fast_sigmoid", "method.neuron=alif", "model.name=rsnn", "model.args.hidden=[64]",
          "data.name=digits_rows", "data.normalize=false", "optim.lr=0.005", "train.epochs=6",
          "train.progress=false", "train.seed=0"]
for name, extra in [("BPTT", []), ("e-prop", ["train.temporal_grad=eprop"]),
                    ("e-prop, random feedback", ["train.temporal_grad=eprop", "train.eprop_feedback=random"])]:
    summary = ds.train(None, work / name.replace(" ", "_").replace(",", ""), [*recipe, *extra])
    print(f"{name}: test accuracy {summary['test_accuracy']:.3f}")


def peak_mb(steps: int, mode: str) -> float:
    """The largest total of live tensors (MB) during one training step at T = ``steps`` (torch.profiler)."""
    torch.manual_seed(0)
    method = ds.get_method("stbp", {"timesteps": steps, "encoder": "frames", "readout": "membrane", "loss": "ce",
                                    "decay": 0.9, "surrogate": "fast_sigmoid", "neuron": "alif"})
    net = method.build(ds.create_architecture("rsnn", num_classes=10, input_shape=(8,), hidden=[64])).train()
    prepare_temporal_grad(net, mode, None, "stbp")
    x, y = torch.rand(32, steps, 8), torch.randint(0, 10, (32,))

    def step():
        if mode == "eprop":
            online_step(net, net, method, x, y, mode)  # the method's loss of each step's scores
        else:
            F.cross_entropy(net(x), y).backward()

    step()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    live = peak = 0
    for event in sorted(prof.profiler.kineto_results.events(), key=lambda e: e.start_ns()):
        if event.name() == "[memory]":
            live += event.nbytes()
            peak = max(peak, live)
    return peak / 2**20


for steps in (50, 200, 800):
    print(f"T = {steps}: BPTT {peak_mb(steps, 'bptt'):.1f} MB, e-prop {peak_mb(steps, 'eprop'):.1f} MB")
# e-prop holds the adaptation eligibility, 64 neurons x 32 samples x (8 + 64) synapses, whatever T is; BPTT's
# activations grow with T.
