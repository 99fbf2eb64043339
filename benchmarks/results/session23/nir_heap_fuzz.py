"""Fuzz the HDF5 structures of a NIR file: does reading it hang libhdf5, and does deepspike refuse it first?

Writes a NIR file of the scnn_digits STBP net, then for each trial overwrites 1-8 bytes (90% within the first
``--span`` bytes after a structure's signature, ``--near`` GCOL (global heaps, the default), TREE (B-trees), HEAP
(local heaps) or SNOD (symbol table nodes), 10% anywhere) and reads the result:

* ``check``: deepspike.core.hdf5_heaps.damaged_global_heap refuses it (counted as "refused", not read);
* otherwise h5py reads every dataset in a child process with a time limit: "read", "error" or "hang".

With ``--no-check`` every file goes to h5py, to count the hangs the check prevents. Usage:
    OMP_NUM_THREADS=1 python nir_heap_fuzz.py --seed 6 --trials 300 --span 4096 [--near TREE,HEAP] [--no-check]
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path

READ_ALL = """
import sys, h5py
def walk(group):
    for item in group.values():
        walk(item) if isinstance(item, h5py.Group) else item[()]
with h5py.File(sys.argv[1], "r") as f:
    walk(f)
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=6)
    p.add_argument("--trials", type=int, default=300)
    p.add_argument("--span", type=int, default=4096)
    p.add_argument("--limit", type=float, default=5.0, help="seconds before a read counts as a hang")
    p.add_argument("--near", default="GCOL", help="comma-separated signatures whose structures are damaged")
    p.add_argument("--no-check", action="store_true")
    a = p.parse_args()
    import torch

    import deepspike as ds
    from deepspike.core.hdf5_heaps import damaged_global_heap
    from deepspike.deploy import to_nir, write_nir

    work = Path(tempfile.mkdtemp())
    torch.manual_seed(0)  # the same weights, so the same file, in every run
    write_nir(to_nir(ds.create_model("scnn_digits", method="stbp"), (1, 8, 8)), work / "good.nir")
    data = (work / "good.nir").read_bytes()
    heaps = [m.start() for sig in a.near.split(",") for m in re.finditer(re.escape(sig.encode()), data)]
    rng, counts = random.Random(a.seed), {"refused": 0, "read": 0, "error": 0, "hang": 0}
    for _ in range(a.trials):
        b = bytearray(data)
        for _ in range(rng.choice([1, 2, 4, 8])):
            at = rng.choice(heaps) + rng.randrange(a.span) if rng.random() < 0.9 else rng.randrange(len(b))
            b[min(at, len(b) - 1)] = rng.randrange(256) if rng.random() < 0.7 else rng.choice([0, 255])
        (work / "cur.nir").write_bytes(bytes(b))
        if not a.no_check and damaged_global_heap(str(work / "cur.nir")):
            counts["refused"] += 1
            continue
        try:
            done = subprocess.run([sys.executable, "-c", READ_ALL, str(work / "cur.nir")], capture_output=True,
                                  timeout=a.limit)
            counts["read" if done.returncode == 0 else "error"] += 1
        except subprocess.TimeoutExpired:
            counts["hang"] += 1
    print(f"seed {a.seed}, {a.trials} trials near {a.near} ({len(heaps)} found), span {a.span}, "
          f"check {'off' if a.no_check else 'on'}: {counts}")


if __name__ == "__main__":
    main()
