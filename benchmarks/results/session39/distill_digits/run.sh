set -e
D=/work/main/.venv/bin/deepspike
export OMP_NUM_THREADS=1
$D train teacher.yaml --out teacher > teacher.log 2>&1
for s in 0 1 2; do
  $D train student.yaml train.seed=$s --out plain$s > plain$s.log 2>&1
  $D train student.yaml train.seed=$s train.distill_from=teacher --out kd$s > kd$s.log 2>&1
done
echo done > finished
