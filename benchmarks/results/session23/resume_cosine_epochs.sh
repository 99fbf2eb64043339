set -e
export OMP_NUM_THREADS=1 PYTHONPATH=${OLD:-/tmp/old_resume/src}
R=/work/main/src/deepspike/recipes/demo.yaml
D=/tmp/f2runs; rm -rf $D; mkdir -p $D
PY=/work/main/.venv/bin/python
grep -n "schedule\|epochs" $R
$PY -m deepspike train $R train.epochs=1 --out $D/split --no-progress 2>&1 | tail -1
$PY -m deepspike train --out $D/split --resume train.epochs=3 --no-progress 2>&1 | tail -1
$PY -m deepspike train $R train.epochs=3 --out $D/straight --no-progress 2>&1 | tail -1
$PY - <<'P'
import json
for n in ("split", "straight"):
    s = json.load(open(f"/tmp/f2runs/{n}/summary.json"))
    lr = [round(json.loads(l).get("lr", float("nan")), 6) for l in open(f"/tmp/f2runs/{n}/metrics.jsonl")]
    print(n, "test_accuracy", s["test_accuracy"], "lr per epoch", lr)
P
