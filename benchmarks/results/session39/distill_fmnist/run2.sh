set -e
D=/work/main/.venv/bin/deepspike
export OMP_NUM_THREADS=1
$D train teacher2.yaml --out teacher2 > teacher2.log 2>&1
for s in 0 1 2; do
  $D train student.yaml train.epochs=20 train.seed=$s --out e20plain$s > /dev/null 2>&1
  $D train student.yaml train.epochs=20 train.seed=$s train.distill_from=teacher2 --out e20kd4_$s > /dev/null 2>&1
  $D train student.yaml train.epochs=20 train.seed=$s train.distill_from=teacher2 train.distill_temperature=2 --out e20kd2_$s > /dev/null 2>&1
done
echo done > finished2
