export OMP_NUM_THREADS=1
R=/work/main/src/deepspike/recipes/demo.yaml
PY=/work/main/.venv/bin/python
for tree in ${OLD:-/tmp/old_resume/src} /work/main/src; do
  D=/tmp/f1runs; rm -rf $D
  PYTHONPATH=$tree $PY -m deepspike train $R train.epochs=3 --out $D --no-progress > /tmp/f1a.log 2>&1 &
  sleep 0.5
  PYTHONPATH=$tree $PY -m deepspike train $R train.epochs=3 method.encoder=poisson --out $D --no-progress > /tmp/f1b.log 2>&1
  b=$?
  wait %1; a=$?
  echo "$tree: exit codes $a $b; second: $(tail -1 /tmp/f1b.log | cut -c1-160)"
  $PY -c "import json;print('  metrics.jsonl epochs', [json.loads(l)['epoch'] for l in open('$D/metrics.jsonl')])"
done
