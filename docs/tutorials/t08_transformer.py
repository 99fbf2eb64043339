"""Tutorial 8: a spiking transformer, and what its attention costs.

Spikformer (Zhou et al., ICLR 2023) replaces a convolutional net's later layers with spiking self-attention: the
positions of a feature map are tokens, and each head mixes them as ``SN(0.125 Q K^T V)`` with spike-valued queries,
keys and values and no softmax. Without the softmax the product is associative, so deepspike forms ``Q (K^T V)``:
its cost grows with the number of tokens, not with its square. ``model.name=spikformer`` is the paper's layout; its
size is set by ``model.args`` (``dim``, ``depth``, ``heads``, ``mlp_ratio``, ``pools``).

Here a small Spikformer learns the 8x8 digits with ``stbp``, and ``ds.analyze`` shows what its spikes cost: every
projection and every attention product is a synaptic layer of its own in ``report["activity"]["synapses"]``, the
products counted from the actual spikes (``sum_l |k_l| |v_l|`` additions for ``K^T V``, a ``d``-row per query spike
for ``Q (K^T V)``). ``Attention`` is also a layer spec for nets of one's own (last part).

The Spike-driven Transformer (Yao et al., NeurIPS 2023; ``model.name=sdt``) goes further: its attention (SDSA) masks
each token's queries with a neuron on the per-channel count of key-value coincidences (masks and additions only),
and its residuals are membrane shortcuts, ``x + f(SN(x))``: the stream between blocks carries currents, every
convolution reads spikes. It is trained on the same data below, and its column sums counted the same way.
"""

import tempfile
from pathlib import Path

import torch

import deepspike as ds
from deepspike.models.spec import Attention, Conv, Flatten, Linear, Pool, Residual

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial8_"))
recipe = ["method.name=stbp", "method.timesteps=4", "method.norm=bn", "method.decay=0.5", "method.threshold=1.0",
          "method.detach_reset=true", "method.surrogate=sigmoid", "method.readout=membrane", "method.loss=ce",
          "model.name=spikformer", "model.args={dim: 32, depth: 1, heads: 4}", "data.name=digits",
          "optim.name=adamw", "optim.lr=0.002", "train.epochs=8", "train.progress=false"]
summary = ds.train(None, work / "spikformer", recipe)
print(f"spikformer on digits: test accuracy {summary['test_accuracy']:.3f}, {summary['parameters']:,} weights")

options = ds.AnalysisOptions(limit=200, bits=(), snrs=(), deletions=(), jitters=(), timesteps=False, plots=False)
report = ds.analyze(work / "spikformer", None, options)
activity = report["activity"]
ann_macs = report["operations"]["ann_macs_per_sample"]
print(f"spikes per sample {activity['spikes_per_sample']:.0f}, synaptic operations per sample "
      f"{activity['synops_per_sample']:.0f} (ANN of the same shape: {ann_macs:.0f} MACs)")
for synapse in activity["synapses"]:
    if any(part in synapse["name"] for part in (".query.", ".key.", ".value.", ".product", ".output.")):
        ops = synapse["acs_per_sample"] + synapse["macs_per_sample"]
        print(f"  {synapse['name']:<32} {synapse['type']:<17} input events {synapse['events_per_sample']:7.1f}, "
              f"operations {ops:8.0f}")


sdt_recipe = [*recipe[:9], "model.name=sdt", "model.args={dim: 32, depth: 1, heads: 4}", *recipe[11:]]
summary = ds.train(None, work / "sdt", sdt_recipe)
print(f"sdt on digits: test accuracy {summary['test_accuracy']:.3f}, {summary['parameters']:,} weights")
report = ds.analyze(work / "sdt", None, options)
for synapse in report["activity"]["synapses"]:
    if ".token_sum" in synapse["name"]:
        print(f"  {synapse['name']:<32} input events {synapse['events_per_sample']:7.1f}, additions "
              f"{synapse['acs_per_sample']:8.0f}")


# A net of one's own: attention after a conv stem, each in a SEW residual (out = x + f(x)).
@ds.register_model("tiny_attention", default_input_shape=(1, 8, 8))
def tiny_attention(num_classes, input_shape, width):
    """Conv stem to 16 channels at 4x4, one attention block, mean over the 16 tokens, classifier."""
    return (Conv(16, 3, padding=1, norm=True), Pool("max", 2), Residual((Attention(heads=2),), connect="add"),
            Pool("avg", 4), Flatten(), Linear(num_classes, act=False))


net = ds.create_model("tiny_attention", method="stbp", timesteps=4, norm="bn", readout="membrane")
blocks = [type(m).__name__ for m in net.modules() if type(m).__name__ in ("SewBlock", "SpikingSelfAttention")]
print("own net:", tuple(net(torch.rand(2, 1, 8, 8)).shape), blocks)
