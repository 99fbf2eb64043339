"""Tutorial 9: learning without labels or gradients (Diehl & Cook's competitive STDP), and what it costs.

Method ``wta_stdp`` trains Diehl & Cook's (2015) network: Poisson inputs drive conductance-based excitatory
neurons with adaptive thresholds; each excitatory neuron has an inhibitory partner that inhibits all the others, so
the first neurons to fire silence the rest (a soft winner-take-all), and spike-timing-dependent plasticity moves
the winners' weights towards the input. No label and no gradient is used while learning. Afterwards every neuron is
labelled with the class it answers most, and a test image is given the label whose neurons answer it most.

Here 40 excitatory neurons learn the 8x8 digits in one pass over their 1,437 training images, with shows of
100 ms and a higher input rate than the paper's (the digits have 64 pixels, not 784). This is a small and quick
setting, not a good one: the paper's net learns from 60,000 images, several times over, and on these settings a
second pass makes the thresholds climb until most images have to be shown again and again (the accuracy falls).

The same ``ds.analyze`` that measures gradient-trained nets then counts what the net costs per image: the input's
Poisson spikes, the excitatory and inhibitory spikes, the synaptic accumulates (an input spike reaches every
excitatory neuron, an inhibitory spike all but one), and the neurons' own updates at every simulated step.
``ds.compare`` puts it beside a surrogate-gradient net of the same width: the competitive net is unsupervised and
simulates hundreds of steps per image, and the table says what that costs.
"""

import tempfile
from collections import Counter
from pathlib import Path

import deepspike as ds

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial9_"))
digits = ["data.name=digits", "train.progress=false"]
wta = ds.train(None, work / "wta", [
    "method.name=wta_stdp", "model.name=diehl_cook", "model.args.neurons=40",
    "method.present_ms=100", "method.rate_max=500", "method.rate_step=250", "method.label_window=500",
    "train.epochs=1", "train.batch_size=100", *digits])
stbp = ds.train(None, work / "stbp", [
    "method.name=stbp", "method.timesteps=4", "method.loss=ce", "model.name=mlp", "model.args.hidden=[40]",
    "optim.lr=0.005", "train.epochs=6", *digits])
print(f"wta_stdp test accuracy {wta['test_accuracy']:.3f}, stbp {stbp['test_accuracy']:.3f}")

options = ds.AnalysisOptions(limit=360, bits=(32, 4), snrs=(), deletions=None, jitters=None, plots=False)
report = ds.analyze(work / "wta", work / "wta_report", options)
act, ops = report["activity"], report["operations"]
print(f"per test image: {act['timesteps']:.0f} simulated steps ({act['shows_per_sample']:.2f} shows), "
      f"{act['input_spikes_per_sample']:,.0f} input spikes")
for layer in act["layers"]:
    print(f"  {layer['name']:<11} {layer['spikes_per_sample']:6.1f} spikes, {100 * layer['sparsity']:.0f}% of "
          "the neurons fired")
print(f"synaptic accumulates {ops['snn_synops_per_sample']:,.0f} against {ops['ann_macs_per_sample']:,} MACs of "
      f"the ANN of its shape; neuron updates {act['update_macs_per_sample']:,.0f} MACs and "
      f"{act['update_acs_per_sample']:,.0f} ACs")
energy = report["energy"]["45nm_fp32"]
print(f"45 nm fp32: synapses and spikes {energy['snn_pj'] / 1000:.1f} nJ, with the neurons' updates "
      f"{energy['snn_with_updates_pj'] / 1000:.1f} nJ, the ANN {energy['ann_pj'] / 1000:.1f} nJ")
print("accuracy with 4-bit weights:", round(report["accuracy_4bit"], 3))

_, parts = ds.load_run(work / "wta", device="cpu")
net = parts.model  # the trained layer: its labels are the neurons' classes (-1: never fired)
print("neurons per label:", dict(sorted(Counter(net.assignments.tolist()).items())))
print(ds.compare([work / "wta_report" / "analysis.json", work / "stbp"], limit=360))
