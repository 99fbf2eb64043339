"""Tutorial 5: exporting to NIR and ONNX and running the graph elsewhere.

NIR (the Neuromorphic Intermediate Representation) is the file format that neuromorphic simulators and chips
read. ``ds.export(run, "model.nir")`` writes a trained rate-coded run as a graph of ``Conv2d``/``Affine``
synapses and ``LIF``/``IF`` neurons, with what the graph means stored beside it (the time step dt, the reset
mode, the input coding and the readout, in the graph's metadata). Any NIR consumer can then run it; here the
graph is read back twice: with the ``nir`` package itself (what a chip's toolchain sees) and with deepspike's
own importer, which builds a network from the file alone and must give the trained network's output spikes
exactly. Then the same graph goes to ONNX (``ds.export(run, onnx="model.onnx")``), the format every ordinary
inference runtime reads: the "step" form is one time step with the neurons' membranes as inputs and outputs, the
loop an embedded device or a live event camera runs, and onnxruntime stepping it gives the same spikes again.

Data: the 8x8 digits; an ``stbp`` conv net with Poisson input, trained for a few epochs. It needs the ``nir``
and ``onnx`` extras (``make setup-dev``, or ``pip install 'deepspike[nir,onnx]'``).
"""

import tempfile
from pathlib import Path

import nir
import numpy as np
import onnxruntime
import torch

import deepspike as ds
from deepspike.deploy import from_nir

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial5_"))
ds.train(None, work / "run", ["method.name=stbp", "method.encoder=poisson", "method.timesteps=8", "method.loss=ce",
                              "model.name=vgg", "model.args.blocks=[[8]]", "model.args.hidden=[32]",
                              "model.args.batch_norm=false", "data.name=digits", "optim.lr=0.005",
                              "train.epochs=6", "train.progress=false"])
written = ds.export(work / "run", work / "model.nir", dt=1e-3)
print("wrote", written["nir"])

graph = nir.read(str(work / "model.nir"))  # what any NIR tool reads
for name, node in graph.nodes.items():
    print(f"  {name:<12} {type(node).__name__}")
print("metadata:", {k: (v.decode() if isinstance(v, bytes) else getattr(v, "item", lambda v=v: v)())
                    for k, v in graph.metadata.items()})

# Run the file with deepspike's importer and the trained network on the same input spike trains.
_, parts = ds.load_run(work / "run")
model = parts.model.eval()
imported = from_nir(work / "model.nir")
images = parts.data.test.x[:64]
spikes_in = ds.rate_poisson(images, 8)  # [T, B, 1, 8, 8] Poisson spike trains
with torch.no_grad():
    ours = model.readout.neuron(model.body(spikes_in))  # [T, B, 10] output spikes of the trained net
    theirs = imported(spikes_in)  # the same, computed from the NIR file alone
print(f"output spikes: {int(ours.sum())} from the trained net, {int(theirs.sum())} from the NIR file; "
      f"identical: {torch.equal(ours, theirs)}")
agree = (ours.sum(0).argmax(1) == parts.data.test.y[:64]).float().mean().item()
print(f"accuracy of the exported graph on 64 test digits: {agree:.2f}")
assert torch.equal(ours, theirs)

# The same net as ONNX, one time step per call: the caller keeps the membranes (state.* in, next.* out).
summary = ds.export(work / "run", onnx=work / "model.onnx", dt=1e-3)["onnx"]
print("ONNX inputs:", summary["inputs"], "states:", list(summary["states"]), "verified:", summary["verified"]["equal"])
session = onnxruntime.InferenceSession(str(work / "model.onnx"), providers=["CPUExecutionProvider"])
states = {name: np.zeros((64, *shape[1:]), np.float32) for name, shape in summary["states"].items()}
outputs = [o.name for o in session.get_outputs()]
stepped = []
for t in range(spikes_in.shape[0]):  # what a device loop does with each new input frame
    result = dict(zip(outputs, session.run(None, {"input": spikes_in[t].numpy(), **states})))
    stepped.append(result["output"])
    states = {name: result["next." + name[len("state."):]] for name in states}
stepped = torch.from_numpy(np.stack(stepped))
print(f"onnxruntime, stepped: {int(stepped.sum())} output spikes; identical to the trained net: "
      f"{torch.equal(stepped, ours)}")
assert torch.equal(stepped, ours)
