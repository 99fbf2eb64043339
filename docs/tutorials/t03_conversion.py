"""Tutorial 3: ANN-to-SNN conversion and the accuracy-latency trade.

Train an ordinary ANN, then replace every ReLU by an integrate-and-fire neuron whose firing rate over T steps
approximates the activation. The thresholds decide the trade: too high and the neurons need many steps to say
anything, too low and they saturate. Two recipes side by side:

* ``max``: a ReLU ANN; each layer's threshold is its largest activation on calibration data;
* ``qcfs``: an ANN trained with the quantization-clip-floor-shift activation (Bu et al., ICLR 2022; L levels,
  a trainable clipping threshold lambda per layer); the IF neurons take lambda as threshold, start at half of
  it and reset by subtraction; one neuron on a constant input fires exactly the ANN's quantised value in T = L
  steps, while deeper layers see spike trains, so the whole net only comes close to the ANN.

``ds.train`` writes a run directory; ``ds.convert`` writes a converted run with the accuracy at every power of
two up to T. Runs in about half a minute on the 8x8 digits.
"""

import tempfile
from pathlib import Path

import deepspike as ds

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial3_"))
common = ["method.name=ann", "model.name=vgg", "model.args.blocks=[[8],[16]]", "model.args.hidden=[32]",
          "data.name=digits", "optim.lr=0.02", "train.epochs=4", "train.progress=false"]
relu = ds.train(None, work / "relu", common)
qcfs = ds.train(None, work / "qcfs", [*common, "method.activation=qcfs", "method.levels=4",
                                      "method.qcfs_threshold=1.0"])
print(f"ReLU ANN {relu['test_accuracy']:.3f}, QCFS ANN (L = 4) {qcfs['test_accuracy']:.3f}")

results = {
    "ReLU ANN, max-norm": ds.convert(work / "relu", work / "relu_max", norm="max", timesteps=32),
    "QCFS ANN, qcfs": ds.convert(work / "qcfs", work / "qcfs_snn", norm="qcfs", timesteps=32),
}
steps = ["1", "2", "4", "8", "16", "32"]
print(f"{'converted net':<20}" + "".join(f"{'T=' + t:>8}" for t in steps))
for name, summary in results.items():
    by_t = summary["accuracy_by_timesteps"]
    print(f"{name:<20}" + "".join(f"{by_t[t]:>8.3f}" for t in steps))
print("SNN/ANN energy at T = 4 (45 nm, fp32):",
      {name: round(s["energy_ratio_by_timesteps"]["45nm_fp32"]["4"], 3) for name, s in results.items()})
assert results["QCFS ANN, qcfs"]["accuracy_by_timesteps"]["4"] > 0.8
