"""Session 41: the resident memory that reading a distillation teacher (training.distill.load_teacher) adds, on digits,
on the source tree on PYTHONPATH (58f8365 built the teacher's net for the student's data instead of reading the
teacher's data set a second time; session 40 quoted 2.1-2.8 -> 1.4-1.5 MB of RSS growth).

    benchmarks/results/session41/teacher_rss/run.sh          # 58f8365^, 58f8365 and HEAD, three processes each
    benchmarks/results/session41/at_rev.sh REV benchmarks/results/session41/teacher_rss/teacher_rss.py

One process: trains an MLP ANN teacher (one hidden layer of 16, one epoch, digits, val_fraction 0.1) into a temporary
folder, builds a one-hidden-layer stbp student's data and net as training_setup does (run_setup.load_data,
build_run), then reads the teacher twice, each time measuring its peak RSS growth (peak_rss.peak_growth) and the RSS
it leaves (the Distillation kept), in MiB: the first read also pages in the code it runs; the second reads the same
files again (run.sh fixes glibc's mmap threshold, so buffers the first read freed are not simply reused)."""

import tempfile
from pathlib import Path

import torch
from peak_rss import _status_kib, peak_growth

from deepspike.config import load_config
from deepspike.training.distill import load_teacher
from deepspike.training.run_setup import build_run, load_data
from deepspike.training.trainer import Trainer

TEACHER = ["method.name=ann", "model.name=mlp", "model.args.hidden=[16]", "data.name=digits", "data.val_fraction=0.1",
           "train.epochs=1", "train.batch_size=128", "train.progress=false", "optim.lr=0.01"]
STUDENT = ["method.name=stbp", "method.timesteps=4", "model.name=mlp", "model.args.hidden=[16]", "data.name=digits",
           "data.val_fraction=0.1", "train.epochs=1", "train.batch_size=128", "train.progress=false"]


def main() -> None:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        teacher = Path(folder) / "teacher"
        Trainer(load_config(None, TEACHER), teacher).fit()
        config = load_config(None, [*STUDENT, f"train.distill_from={teacher}"])
        cpu = torch.device("cpu")
        parts = build_run(config, cpu, load_data(config))
        for read in ("first", "second"):
            before = _status_kib("VmRSS")
            kept, peak = peak_growth(lambda: load_teacher(config, parts, cpu))
            left = (_status_kib("VmRSS") - before) / 1024
            assert kept is not None
            print(f"load_teacher, {read} read: peak RSS growth {peak:.2f} MiB, RSS left {left:.2f} MiB", flush=True)
            del kept


if __name__ == "__main__":
    main()
