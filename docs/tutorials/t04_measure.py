"""Tutorial 4: measuring spikes, synaptic operations and energy.

A spiking network is worth its cost only if it spikes little. ``ds.analyze`` reloads a run, runs its test
samples with monitors on every spiking layer and reports:

* spikes per sample, per layer and in total (and the firing rate per neuron and step);
* synaptic operations: an accumulate (AC) for every spike that reaches a synapse, against the multiply-
  accumulates (MACs) of the same network as an ANN;
* energy per inference for hardware presets (pJ per MAC, AC and spike), SNN against ANN;
* accuracy against time steps and against weight precision (bits);
* the membrane of a few neurons per layer, step by step, on the first test sample (``report["traces"]``; for a
  net of one's own, ``ds.record_traces(model, x)`` and ``ds.plot_traces``): how close the silent ones came to
  their threshold is the first thing to look at in a layer that does not fire.

Here an ``stbp`` net (Wu et al. 2019: LIF neurons, surrogate gradients) trained briefly on the 8x8 digits.
On a net this small the SNN costs more than its ANN: with direct input the first layer does its MACs at every
step, and the hidden layer's spikes fan out to every output. What a spiking net saves depends on how little
its layers spike; the report says so in numbers rather than assuming it.
"""

import tempfile
from pathlib import Path

import deepspike as ds

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial4_"))
summary = ds.train(None, work / "stbp", ["method.name=stbp", "method.timesteps=4", "method.loss=ce",
                                         "model.name=mlp", "model.args.hidden=[64]", "data.name=digits",
                                         "optim.lr=0.005", "train.epochs=6", "train.progress=false"])
options = ds.AnalysisOptions(limit=360, bits=(32, 8, 4, 2), snrs=(), deletions=(), jitters=(), plots=False)
report = ds.analyze(work / "stbp", work / "report", options)

print(f"test accuracy {report['accuracy']:.3f} on {report['samples']} samples, T = 4")
activity = report["activity"]
for layer in activity["layers"]:
    print(f"  {layer['name']:<24} {layer['spikes_per_sample']:10.1f} spikes per sample")
print(f"total {activity['spikes_per_sample']:.1f} spikes per sample")
ops = report["operations"]
print(f"ANN MACs {ops['ann_macs_per_sample']:,.0f}; SNN synaptic operations {ops['snn_synops_per_sample']:,.0f} "
      f"({ops['snn_over_ann']:.2f} per ANN MAC)")
for preset, row in report["energy"].items():  # pJ per inference on each hardware preset
    if row["ann_pj"] is not None and row["snn_pj"]:
        print(f"  {preset:<14} ANN {row['ann_pj']:10.0f} pJ   SNN {row['snn_pj']:10.0f} pJ   "
              f"ANN / SNN = {row['ann_over_snn']:.2f}")
print("accuracy against T:", {r["timesteps"]: round(r["accuracy"], 3) for r in report["sweeps"]["timesteps"]})
print("accuracy against weight bits:", {r["bits"]: round(r["accuracy"], 3) for r in report["sweeps"]["bits"]})
for trace in report["traces"]:  # membrane after each step's reset, neurons "shown" (half fired, half silent)
    if "skipped" not in trace:
        for col, (neuron, fired) in enumerate(zip(trace["shown"], trace["fired"])):
            v = [row[col] for row in trace["membrane"]]
            print(f"  {trace['layer']:<24} neuron {neuron:<4} {'fired' if fired else 'silent'}, membrane "
                  f"{min(v):+.2f} .. {max(v):+.2f}, threshold {trace['threshold'][0][col]:.2f}")
print("full report:", work / "report" / "report.md")
