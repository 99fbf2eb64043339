set -e
D=/work/main/.venv/bin/deepspike
export OMP_NUM_THREADS=1
$D train teacher.yaml --out teacher > teacher.log 2>&1
$D train student.yaml --out plain > plain.log 2>&1
$D train student.yaml train.distill_from=teacher --out kd4 > kd4.log 2>&1
$D train student.yaml train.distill_from=teacher train.distill_temperature=1 --out kd1 > kd1.log 2>&1
echo done > finished
