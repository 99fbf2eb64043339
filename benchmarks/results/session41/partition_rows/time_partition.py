"""Session 41: best-of-5 CPU time (process_time, one thread) of ``data.splits.partition_rows`` on 60,000 labels,
60000 x 2 x 34 x 34 uint8 frames and 600 x 2 x 2 x 128 x 128 float32 (0.1 held out by ``split_indices``), with a
digest of the result and a check against the two-copies reference ``cat(x[keep], x[held])``.

    bash benchmarks/results/session41/partition_rows/run.sh   # ddb9e35 (copies), ab8e3dc (cycle walk), HEAD
"""
import hashlib
import time

import torch

from deepspike.data.splits import partition_rows, split_indices

torch.set_num_threads(1)
labels = torch.randint(0, 10, (60000,), generator=torch.Generator().manual_seed(0))
keep, held = split_indices(labels, 0.1, 0)
for name, make in [("labels 60000", lambda: labels.clone()),
                   ("60000x2x34x34 uint8", lambda: torch.randint(0, 255, (60000, 2, 34, 34), dtype=torch.uint8,
                                                                  generator=torch.Generator().manual_seed(1))),
                   ("600x2x2x128x128 float32 (78 MiB)", lambda: torch.rand(600, 2, 2, 128, 128,
                                                                          generator=torch.Generator().manual_seed(2)))]:
    base = make()
    n = len(base)
    k, h = (keep, held) if n == 60000 else split_indices(torch.arange(n) % 10, 0.1, 0)
    best = float("inf")
    for _ in range(5):
        x = base.clone()
        t = time.process_time()
        partition_rows(x, k, h)
        best = min(best, time.process_time() - t)
    ok = torch.equal(x, torch.cat([base[k], base[h]]))
    print(f"{name}: {best * 1000:.0f} ms, sha1 {hashlib.sha1(x.numpy().tobytes()).hexdigest()[:12]}, equal {ok}")
