#!/usr/bin/env bash
# Session 24: the QCFS VGG conversion's energy re-measured under the one pricing rule (convert = analyze), from the
# shipped pretrained ANN (deepspike/zoo_models/ann_qcfs_vgg_fmnist, made from configs/ann_fmnist_vgg_qcfs.yaml).
# Usage: bash benchmarks/results/session24/qcfs_energy_remeasure.sh OUT_DIR   (needs dataset-fashion-mnist)
set -euo pipefail
OUT=${1:?OUT_DIR}
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=1
mkdir -p "$OUT"
"$PY" - "$OUT/ann" <<'PYEOF'
import shutil, sys
from pathlib import Path
from deepspike.training.checkpoint_format import read_checkpoint_file
from deepspike.training.pretrained import ZOO_DIR
from deepspike.training.runs import save_checkpoint
run, entry = Path(sys.argv[1]), ZOO_DIR / "ann_qcfs_vgg_fmnist"
run.mkdir(parents=True, exist_ok=True)
shutil.copyfile(entry / "config.yaml", run / "config.yaml")
save_checkpoint(run / "checkpoint.pt", {"model": read_checkpoint_file(entry / "weights.pt")["model"], "epoch": 30})
PYEOF
"$PY" -m deepspike eval "$OUT/ann" | tee "$OUT/ann_eval.json"
/usr/bin/time -v "$PY" -m deepspike convert "$OUT/ann" --norm qcfs --timesteps 64 --out "$OUT/vgg_qcfs_snn" 2> "$OUT/convert_time.txt"
"$PY" -m deepspike compare "$OUT/vgg_qcfs_snn" --limit 10000 | tee "$OUT/compare.md"
