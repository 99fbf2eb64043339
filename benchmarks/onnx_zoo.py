"""The pretrained rate-coded zoo nets exported to ONNX and run by onnxruntime: same spikes, same answers, time.

For each entry: the shipped net (``training.pretrained.load_pretrained``), its graph (``deploy.to_nir``) written as
an ONNX "sequence" model (``deploy.nir_to_onnx``, float32) and opened in onnxruntime (CPU). The first ``--samples``
Fashion-MNIST test images, preprocessed as the card says, are encoded ONCE by the net's own encoder (a Poisson
encoder with the evaluation seed) and the same input ``[T, B, ...]`` goes to both: deepspike's output neurons
or, for a membrane readout, its integrator's membrane (``deploy.nir_export.graph_outputs``) and the ONNX model.
Reported: output entries that differ (a membrane: the largest difference), the class by output spike count (summed
per class group for a vote readout; a membrane: by its last value; argmax, ties to the lower class) of both, its
accuracy, deepspike's own accuracy with its readout on the same encoded input, the time of each for the whole
input in batches of ``--batch`` (fastest of ``--repeats`` runs after a warm-up, ``--threads`` threads each;
onnxruntime's intra-op threads set to the same number), and the time of one streamed step of one sample: deepspike's
``Stream.step`` (which encodes the step itself) against the ONNX "step" model fed the encoded step and its states.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/onnx_zoo.py --out benchmarks/results/session35/onnx_zoo
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import numpy as np
import onnxruntime
import torch
from bench_ttfs_layers import fastest_time

from deepspike.core.atomic import atomic_write_text
from deepspike.core.errors import ConfigError
from deepspike.deploy import nir_to_onnx, to_nir
from deepspike.deploy.nir_export import chain_modules, graph_outputs
from deepspike.deploy.onnx_files import agreement
from deepspike.layers.voting import vote
from deepspike.methods.streaming import Stream
from deepspike.training.evaluate import EVAL_SEED
from deepspike.training.pretrained import load_pretrained, zoo_card
from deepspike.training.run_setup import load_data, make_batches

NAMES = ("stbp_fmnist", "spikebp_fmnist", "converted_qcfs_vgg_fmnist", "stbp_fmnist_vgg_tet_plif")


def _test_images(config, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    batches = make_batches(config, load_data(config), "test", torch.device("cpu"), training=False)
    xs, ys, n = [], [], 0
    for x, y in batches:
        xs.append(x)
        ys.append(y)
        n += len(y)
        if n >= samples:
            break
    return torch.cat(xs)[:samples], torch.cat(ys)[:samples]


def measure(name: str, samples: int, batch: int, repeats: int, threads: int) -> dict:
    config, _, model = load_pretrained(name)
    card = zoo_card(name)
    images, labels = _test_images(config, samples)
    torch.manual_seed(EVAL_SEED)
    with torch.no_grad():
        x = model.encoder(images, model.eval_timesteps)  # [T, N, ...], drawn once for both
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        graph = to_nir(model, tuple(card["input_shape"]), low_latency=True)
        onnx_model = nir_to_onnx(graph, form="sequence")
    except ConfigError as e:  # a net NIR cannot say: recorded, not measured
        return {"name": name, "refused": str(e)}
    session = onnxruntime.InferenceSession(onnx_model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    chunks = [x[:, i:i + batch].contiguous() for i in range(0, x.shape[1], batch)]

    def ours():
        return torch.cat([graph_outputs(model, c)[0] for c in chunks], dim=1)

    def theirs():
        return torch.cat([torch.from_numpy(session.run(None, {"input": c.numpy()})[0]) for c in chunks], dim=1)

    a, b = ours(), theirs()
    spiking = graph_outputs(model, chunks[0][:, :1])[1]
    with torch.no_grad():
        if callable(model.readout):
            readout = torch.cat([model.readout(model.body(c)) for c in chunks])
        else:  # a converted net (its readout a mode; direct input, so its own forward sees the same input)
            readout = torch.cat([model(images[i:i + batch]) for i in range(0, len(images), batch)])
    info = chain_modules(model)[1]

    def scores(out):  # per class: spike counts (summed per class group for a vote readout) or the last membrane
        if not spiking:
            return out[-1]
        return vote(out.sum(0), info["num_classes"]) if info["decode"] == "vote" else out.sum(0)

    pred_a, pred_b = scores(a).argmax(1), scores(b).argmax(1)
    step_ours, step_theirs = _streaming_step(model, graph, images[:1], x[:, :1], repeats, threads)
    return {"name": name, "timesteps": int(x.shape[0]), "samples": samples, "entries": a.numel(), "spiking": spiking,
            "decode": info["decode"], **agreement(a, b, spiking), "stream_step_deepspike_s": step_ours,
            "stream_step_onnxruntime_s": step_theirs,
            "same_class": float((pred_a == pred_b).float().mean()),
            "accuracy_by_count_deepspike": float((pred_a == labels).float().mean()),
            "accuracy_by_count_onnx": float((pred_b == labels).float().mean()),
            "accuracy_readout_deepspike": float((readout.argmax(1) == labels).float().mean()),
            "deepspike_s": fastest_time(ours, repeats), "onnxruntime_s": fastest_time(theirs, repeats),
            "onnx_bytes": onnx_model.ByteSize()}


def _streaming_step(model, graph, image: torch.Tensor, encoded: torch.Tensor, repeats: int,
                    threads: int) -> tuple[float | None, float]:
    """Seconds per time step of one sample streamed through T steps: ``ds.Stream(model).step(image)`` (encodes the
    step itself) and the ONNX "step" model fed the encoded step and its states (fastest of ``repeats``)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(nir_to_onnx(graph, form="step").SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    steps = encoded.shape[0]

    def ours():
        stream = Stream(model)
        for _ in range(steps):
            stream.step(image)

    def theirs():
        feeds = {i.name: np.zeros((1, *i.shape[1:]), np.float32) for i in session.get_inputs()[1:]}
        for t in range(steps):
            result = dict(zip(names, session.run(None, {"input": encoded[t].numpy(), **feeds})))
            feeds = {k: result["next." + k[len("state."):]] for k in feeds}

    try:
        Stream(model)
    except ConfigError:  # a neuron that cannot carry its state step by step: deepspike cannot stream this net
        return None, fastest_time(theirs, repeats) / steps
    return fastest_time(ours, repeats) / steps, fastest_time(theirs, repeats) / steps


def _us(seconds: float | None) -> str:
    return "cannot stream" if seconds is None else f"{seconds * 1e6:,.0f} us"


def markdown(rows: list[dict], header: str) -> str:
    lines = [header, "", "| net | T | differing output entries (membrane: largest difference) | same class | "
             "accuracy by count (deepspike / ONNX) | deepspike's readout | deepspike time | onnxruntime time | "
             "one streamed step, batch 1 (deepspike Stream / onnxruntime step model) |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {r['name']} | not exported: {r['refused']} ||||||||")
            continue
        agree = (f"{r['differing']:,} of {r['entries']:,}" if r["spiking"] else
                 f"{r['max_abs_difference']:.2g} (values up to {r['max_abs_value']:.3g})")
        lines.append(f"| {r['name']} | {r['timesteps']} | {agree} | {r['same_class']:.2%} | "
                     f"{r['accuracy_by_count_deepspike']:.2%} / "
                     f"{r['accuracy_by_count_onnx']:.2%} | {r['accuracy_readout_deepspike']:.2%} | "
                     f"{r['deepspike_s'] * 1e3:,.0f} ms | {r['onnxruntime_s'] * 1e3:,.0f} ms | "
                     f"{_us(r['stream_step_deepspike_s'])} / {_us(r['stream_step_onnxruntime_s'])} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--names", default=",".join(NAMES))
    p.add_argument("--samples", type=int, default=1000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(n, args.samples, args.batch, args.repeats, args.threads) for n in args.names.split(",")]
    header = (f"ONNX export of the zoo nets, {args.samples} Fashion-MNIST test images, batch {args.batch}, "
              f"{args.threads} threads, fastest of {args.repeats}; {platform.processor() or platform.machine()}, "
              f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    atomic_write_text(args.out.with_suffix(".json"), json.dumps({"header": header, "rows": rows}, indent=1))
    atomic_write_text(args.out.with_suffix(".md"), markdown(rows, header))
    print(markdown(rows, header))


if __name__ == "__main__":
    main()
