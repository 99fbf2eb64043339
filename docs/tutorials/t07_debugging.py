"""Tutorial 7: why a spiking net does not learn, seen in its spikes and membranes.

A surrogate-gradient net learns only through neurons whose membrane comes near the threshold: the rectangular
surrogate (wu2019, deepspike's default) passes a gradient only where ``|u - th| < a / 2`` (``a = 1``). A layer whose
membranes never get there neither spikes nor learns, and the loss stays at ``ln 10 = 2.3026`` for ten classes. The
per-layer spike counts say *that* a layer is silent; its membrane traces say *why*, and by how much.

``ds.analyze`` records, for the first test sample, a spike raster (``report["raster"]``) and the membrane traces of
a few neurons per spiking layer (``report["traces"]``: about half that fired and half silent, each with the membrane
after every step's reset and the threshold its charge met). Here the same ``stbp`` net is trained twice on the 8x8
digits: with a threshold of 6 (nothing fires; the traces show the hidden membranes peaking far below it) and with
0.5. For a net of one's own, ``ds.record_traces(model, x)`` and ``ds.plot_traces(traces, path)`` do the same on any
time-stepped module; ``deepspike analyze RUN --traces N`` writes ``traces.png`` and a table in ``report.md``.
"""

import tempfile
from pathlib import Path

import torch

import deepspike as ds

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial7_"))
recipe = ["method.name=stbp", "method.timesteps=6", "method.loss=ce", "model.name=mlp", "model.args.hidden=[64]",
          "data.name=digits", "optim.lr=0.005", "train.epochs=4", "train.progress=false"]
options = ds.AnalysisOptions(limit=100, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)

for threshold in (6.0, 0.5):
    run = work / f"threshold_{threshold:g}"
    summary = ds.train(None, run, [*recipe, f"method.threshold={threshold}"])
    report = ds.analyze(run, None, options)
    print(f"threshold {threshold:g}: test accuracy {summary['test_accuracy']:.3f}")
    for layer in report["activity"]["layers"]:
        print(f"  {layer['name']:<16} fraction of neurons that fired {layer['sparsity']:.3f}")
    for trace in report["traces"]:
        peak = max(max(row) for row in trace["membrane"])  # the highest membrane of the traced neurons
        print(f"  {trace['layer']:<16} traced {trace['shown']}: fired {sum(trace['fired'])}, highest membrane "
              f"{peak:.2f} against threshold {trace['threshold'][0][0]:.2f}")

# A net of one's own: any time-stepped module with spiking layers (class attribute is_spiking_neuron) will do.
torch.manual_seed(0)
net = ds.create_model("mlp", method="stbp", input_shape=(1, 8, 8), model_args={"hidden": [32]}, timesteps=8,
                      threshold=0.5).eval()
traces = ds.record_traces(net, torch.rand(1, 1, 8, 8), max_neurons=4)
print("own net:", [(t["layer"], t["shown"]) for t in traces])
print("plot:", ds.plot_traces(traces, work / "traces.png"))
