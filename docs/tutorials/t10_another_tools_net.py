"""Tutorial 10: a net from another tool, scored, trained further and handed back.

Nets trained in snnTorch, Norse, SpikingJelly, Sinabs or Rockpool travel as NIR files. deepspike reads such a file
into a torch module (``from_nir``), scores it on a data set (``ds.evaluate_nir``), trains it further, either in a
torch loop of one's own or as a whole deepspike run that starts from the file (``method.init_from=FILE.nir``: the
recipe builds the same layers and neurons, and every run feature comes with it: checkpoints, exact resume, ``eval``,
``analyze``, export), and writes the result back as NIR (``to_nir``) for the tool, simulator or chip it came from.

The file here is written by hand the way SpikingJelly writes a 64-32-10 MLP of ``LIFNode`` neurons (``tau = 10``
steps without input decay, ``v = 0.9 v + x``, threshold 1, hard reset, ``Linear`` layers with biases, a flat
``[64]`` input, dt = 0.1 ms), with untrained random weights; ``benchmarks/results/session37/spikingjelly_finetune.py``
does the same with SpikingJelly itself. Data: the 8x8 digits, the image at each of T = 8 steps.
"""

import tempfile
from pathlib import Path

import nir
import numpy as np
import torch

import deepspike as ds
from deepspike.data import load_dataset
from deepspike.deploy import GraphSimulator, from_nir, to_nir, write_nir

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial10_"))
DT, STEPS = 1e-4, 8


def lif(n: int) -> nir.LIF:
    """k = 1 - dt/tau = 0.9 and input gain r dt / tau = 1: v = 0.9 v + x, as SpikingJelly's LIFNode(tau=10,
    decay_input=False); fires at v >= 1 and resets to 0."""
    tau = np.full(n, DT / 0.1, np.float32)
    return nir.LIF(tau=tau, r=tau / DT, v_leak=np.zeros(n, np.float32), v_threshold=np.ones(n, np.float32),
                   v_reset=np.zeros(n, np.float32), metadata={"fires": "v >= threshold"})


rng = np.random.default_rng(0)
nodes = {"input": nir.Input(input_type={"input": np.array([64])}),
         "fc1": nir.Affine(weight=rng.normal(0, 0.3, (32, 64)).astype(np.float32), bias=np.zeros(32, np.float32)),
         "lif1": lif(32),
         "fc2": nir.Affine(weight=rng.normal(0, 0.4, (10, 32)).astype(np.float32), bias=np.zeros(10, np.float32)),
         "lif2": lif(10),
         "output": nir.Output(output_type={"output": np.array([10])})}
names = list(nodes)
graph = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={"dt": DT}, type_check=False)
theirs = write_nir(graph, work / "theirs.nir")

# 1. Score the file as it is. Another tool's file does not say how its input is coded: pass encoder and steps.
before = ds.evaluate_nir(theirs, "digits", encoder="direct", timesteps=STEPS)
print(f"the file as it came: {before['accuracy']:.3f} on {before['samples']} test digits")

# 2. Train it further in a torch loop of one's own: the imported net's weights are parameters, its neurons pass
#    surrogate gradients. Input: the flattened image at every step, [T, B, 64].
data = load_dataset("digits")
net = from_nir(theirs)
optimiser = torch.optim.Adam(net.parameters(), lr=5e-3)
for epoch in range(3):
    for idx in torch.randperm(len(data.train.y), generator=torch.Generator().manual_seed(epoch)).split(64):
        x = data.train.x[idx].flatten(1).expand(STEPS, -1, -1)
        loss = torch.nn.functional.cross_entropy(net(x).sum(0), data.train.y[idx])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
tuned = write_nir(to_nir(net), work / "tuned_in_torch.nir")  # its weights as they are now, the same nodes
after = ds.evaluate_nir(tuned, "digits", encoder="direct", timesteps=STEPS)
print(f"after 3 epochs in a torch loop: {after['accuracy']:.3f}")

# 3. Or start a whole deepspike run from the file. The recipe builds the same layers and neurons; what differs is
#    one line naming the key to set (try method.decay=0.5).
recipe = ["method.name=stbp", f"method.timesteps={STEPS}", "method.encoder=direct", "method.decay=0.9",
          "method.threshold=1.0", "method.reset=zero", "method.loss=ce", "model.name=mlp", "model.args.hidden=[32]",
          "model.args.bias=true", "data.name=digits", "optim.lr=0.005", "train.epochs=3", "train.progress=false",
          f"method.init_from={theirs}"]
summary = ds.train(None, work / "run", recipe)
print(f"a deepspike run started from the file, 3 epochs: {summary['test_accuracy']:.3f}")

# 4. Hand the run back as NIR: the same spikes in an independent simulator of the file.
ds.export(work / "run", work / "run.nir", dt=DT)
_, parts = ds.load_run(work / "run")
x = data.test.x[:32].expand(STEPS, -1, -1, -1, -1)  # direct coding: the image at each step, [T, B, 1, 8, 8]
with torch.no_grad():
    ours = parts.model.readout.neuron(parts.model.body(x))
simulated = GraphSimulator.rate_coded(nir.read(str(work / "run.nir"))).run({"input": x})["output"].float()
print(f"the run's NIR file in GraphSimulator: the run's spikes {'exactly' if torch.equal(ours, simulated) else 'NOT'}")
assert torch.equal(ours, simulated)
