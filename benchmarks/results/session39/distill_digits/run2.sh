set -e
D=/work/main/.venv/bin/deepspike
export OMP_NUM_THREADS=1
for s in 0 1 2; do
  $D train student.yaml train.seed=$s train.epochs=40 --out e40plain$s > /dev/null 2>&1
  $D train student.yaml train.seed=$s train.epochs=40 train.distill_from=teacher --out e40kd4_$s > /dev/null 2>&1
  $D train student.yaml train.seed=$s train.epochs=40 train.distill_from=teacher train.distill_temperature=1 --out e40kd1_$s > /dev/null 2>&1
done
echo done > finished2
