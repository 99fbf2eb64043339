"""Tutorial 6: a recurrent spiking net on a sequence, and its NIR graph.

A sequence arrives one feature vector per time step, ``[B, T, F]``. Here each 8x8 digit is read one row per step
(``data.name=digits_rows``: T = 8 steps of 8 pixel values), so the net must remember the rows it has seen to name the
digit. A recurrent layer (``model.name=rsnn``; in a spec, ``Linear(M, recurrent=True)``) feeds its neurons' spikes of
the step before back through a weight ``V``: ``I_t = W x_t + V s_{t-1}``. The same net without that feedback
(``model.args.recurrent=false``) only has its neurons' membranes to remember with. Both train for a few epochs from
the same seed. A third way to remember: learnable synaptic delays (``model.name=dsnn``; ``Linear(M, delays=D)``), where
every synapse learns when a row's spikes arrive, ``I_t = sum_n w_mn x_{t - d_mn}`` (no feedback; NIR export only with
each delay rounded to a whole step, ``export --round-delays``). Then the recurrent run is exported to NIR, where ``V``
sits on a cycle ``lif -> rec -> lif``, and read back: the file alone gives the trained net's spikes.
"""

import tempfile
from pathlib import Path

import nir
import torch

import deepspike as ds
from deepspike.deploy import from_nir

work = Path(tempfile.mkdtemp(prefix="deepspike_tutorial6_"))
recipe = ["method.name=stbp", "method.timesteps=8", "method.encoder=frames", "method.readout=membrane",
          "method.loss=ce", "method.decay=0.9", "method.threshold=1.0", "method.reset=subtract",
          "method.surrogate=fast_sigmoid", "model.name=rsnn", "model.args.hidden=[64]", "data.name=digits_rows",
          "data.normalize=false", "optim.lr=0.002", "train.epochs=8", "train.progress=false", "train.seed=0"]
for recurrent in ("true", "false"):
    summary = ds.train(None, work / f"rec_{recurrent}", [*recipe, f"model.args.recurrent={recurrent}"])
    print(f"recurrent={recurrent}: test accuracy {summary['test_accuracy']:.3f}")
summary = ds.train(None, work / "delays", [*recipe, "model.name=dsnn", "model.args.delays=8"])  # delays 0-7 rows
print(f"learnable delays: test accuracy {summary['test_accuracy']:.3f}")

written = ds.export(work / "rec_true", work / "rsnn.nir")
graph = nir.read(str(work / "rsnn.nir"))
print("edges:", graph.edges)  # the feedback: ('1_lif', '2_rec') and ('2_rec', '1_lif')

_, parts = ds.load_run(work / "rec_true")
model = parts.model.eval()
rows = parts.data.test.x[:64].transpose(0, 1)  # [B, T, F] -> [T, B, F], what the body receives
with torch.no_grad():
    ours = model.readout(model.body(rows))  # class scores of the trained net [B, 10]
    membrane = from_nir(work / "rsnn.nir")(rows)  # the readout's integrator trace from the file alone [T, B, 10]
# the readout scores the mean output current over T; the file's integrator holds their sum after the last step
print("the NIR file's scores equal the trained net's:", torch.allclose(membrane[-1] / 8, ours, atol=1e-5))
