"""Bytes of activations autograd saves for backward in one forward pass of the benchmark nets (deterministic,
unlike peak RSS): every framework's ``peers/nets.py`` net, batch 32, counted through saved-tensor hooks (each
storage once). Peers need the benchmark venv. Run: ``.bench-venv/bin/python benchmarks/saved_tensors.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))
from nets import NETS, build  # noqa: E402

CASES = (("vgg", 4), ("lenet", 25))


def saved_mb(framework: str, net: str, timesteps: int) -> tuple[float, int]:
    """(MB saved, storages) by autograd during one forward of ``net`` in ``framework``."""
    torch.manual_seed(0)
    model = build(framework, net, timesteps)
    storages: dict[int, int] = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(torch.rand(32, *NETS[net]))
    return sum(storages.values()) / 2**20, len(storages)


def main() -> None:
    for net, t in CASES:
        for fw in ("ann", "deepspike", "snntorch", "spikingjelly"):
            try:
                mb, n = saved_mb(fw, net, t)
            except ImportError as e:
                print(f"{net} T={t} {fw}: skipped ({e})")
                continue
            print(f"{net} T={t} {fw:12s} saved {mb:7.1f} MB in {n} storages")


if __name__ == "__main__":
    main()
