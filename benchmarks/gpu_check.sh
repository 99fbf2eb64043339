#!/usr/bin/env bash
# One GPU check of deepspike (issue 26), under 10 minutes on one H200-class GPU, written to one Markdown file:
#   0. the machine (nvidia-smi, python and library versions)
#   1. the CUDA tests of every kernel against the CPU references (fused LIF and learnable LIF Triton kernels,
#      the TTFS Triton backend, lee2020's neuron on CUDA): pytest's pass/fail counts
#   2. our Triton LIF against SpikingJelly 2.0's Triton / native-CUDA / torch LIF, fp16 and fp32,
#      [T, B, N] = [32, 64, 65536], forward + backward (benchmarks/gpu/lif_vs_sj.py). SpikingJelly 2.0 has no
#      CuPy backend any more; its native CUDA kernels exist only in a source build (SJ_BUILD_NATIVE_CUDA=1), so
#      with the PyPI wheel that row shows why it could not run; a failed deepspike row fails the section
#   3. the Open Neuromorphic benchmark at 16,384 neurons (benchmarks/bench_on.py)
#   4. a TTFS conv layer on CUDA (Triton) against the CPU backends (benchmarks/gpu/ttfs_conv.py)
# Each section has its own time limit (SECTION_LIMITS below: 535 s, ~9 minutes in all); a section that fails
# or runs out of time is marked so in the file and the script goes on. The exit status is 0 when every section
# ran or was skipped, 1 when any failed.
#
#   bash benchmarks/gpu_check.sh [--out FILE] [--python PY] [--wheels DIR] [--dry-run]
#
# --out: default $OUT/gpu_check.md where $OUT is set (the device tool), else benchmarks/results/gpu/gpu_check.md;
#   checked before any section runs, and written atomically (a temporary file renamed over it: a failed write
#   leaves the old report). A bad argument is one error line and exit status 2.
# --wheels: the folder of wheels from benchmarks/gpu_wheels.sh (default .gpu-wheels), installed with --no-index
#   --no-deps into a --target folder on PYTHONPATH, so the machine's own CUDA torch, Triton, CuPy and JAX are used.
# --dry-run: tiny sizes, CPU tensors (CUDA hidden), Triton in its interpreter (TRITON_INTERPRET=1); what is not
#   installed is skipped and said so; no wheels are installed. Runs in well under a minute; tests/test_gpu_check.py
#   runs it in CI.
#
# On the lent GPU machine (the `run` device tool; it has no network): first, here,
#   bash benchmarks/gpu_wheels.sh            # -> .gpu-wheels/ (about 8 MB; ignored by git)
# then call the tool `run` with carry [".gpu-wheels"], timeout_s 600 and the command
#   bash benchmarks/gpu_check.sh
# The Markdown comes back under files_at (written to $OUT/gpu_check.md there).
set -u
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY=0
PY="python3"
WHEELS="$ROOT/.gpu-wheels"
MD=""
USAGE="usage: bash benchmarks/gpu_check.sh [--out FILE] [--python PY] [--wheels DIR] [--dry-run]"
error() { echo "gpu_check.sh: error: $1 ($USAGE)" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY=1 ;;
    --out|--python|--wheels)
      [ $# -ge 2 ] && [ -n "$2" ] || error "$1 needs a value"
      case "$1" in --out) MD="$2" ;; --python) PY="$2" ;; --wheels) WHEELS="$2" ;; esac
      shift ;;
    *) error "unknown argument: $1" ;;
  esac
  shift
done
if [ -z "$MD" ]; then
  if [ -n "${OUT:-}" ]; then MD="$OUT/gpu_check.md"; else MD="$ROOT/benchmarks/results/gpu/gpu_check.md"; fi
fi
case "$MD" in /*) ;; *) MD="$PWD/$MD" ;; esac
[ -d "$MD" ] && error "--out $MD is a folder; give the name of a file to write"
mkdir -p "$(dirname "$MD")" 2>/dev/null && [ -w "$(dirname "$MD")" ] || error "--out $MD: cannot write in its folder"
cd "$ROOT" || exit 2
# seconds per section: machine, tests, LIF, Open Neuromorphic, TTFS conv (535 s, + ~15 s wheel install).
# The dry run's are generous for a loaded CPU; it takes about half a minute on an idle one.
LIMITS="15 140 140 160 80"
[ $DRY -eq 1 ] && LIMITS="60 120 120 120 120"
read -r -a SECTION_LIMITS <<< "${GPU_CHECK_LIMITS:-$LIMITS}"
WORK="$(mktemp -d)"
BODY="$WORK/body.md"
SUMMARY=()
SECTION_NOTE=""  # a line printed under the next section's status (what the dry run left out)
FAILED=0
: > "$BODY"

has() { "$PY" -c "import $1" >/dev/null 2>&1; }

# section TITLE LIMIT CMD...: run CMD under LIMIT seconds, append its command, status and output to the report.
section() {
  local title="$1" limit="$2"; shift 2
  local log="$WORK/log" start=$SECONDS rc status note
  echo ">>> $title (limit ${limit}s): $*"
  timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
  rc=$?
  if [ $rc -eq 0 ]; then status="ok"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then status="TIMED OUT after ${limit}s"; FAILED=1
  else status="FAILED (exit $rc)"; FAILED=1
  fi
  cat "$log"
  # the counts in the summary: pytest's last line, lif_vs_sj's failed cases
  note=$(grep -E '[0-9]+ (passed|failed|skipped|errors?)( |,|$)|cases failed' "$log" | tail -1 | tr -d '=|' |
         sed 's/^ *//; s/ *$//')
  {
    printf '## %s\n\nCommand (limit %ss): `%s`\n\nStatus: **%s**, %ss\n\n' "$title" "$limit" "$*" "$status" \
      "$((SECONDS - start))"
    [ -n "$SECTION_NOTE" ] && printf '%s\n\n' "$SECTION_NOTE"
    printf '```\n'
    tail -c 30000 "$log"
    printf '```\n\n'
  } >> "$BODY"
  SUMMARY+=("| $title | $status${note:+: $note} | $((SECONDS - start)) s |")
  SECTION_NOTE=""
}

# skip TITLE REASON: a section that cannot run here, said so in the report.
skip() {
  echo ">>> $1: skipped: $2"
  printf '## %s\n\nStatus: **skipped**: %s\n\n' "$1" "$2" >> "$BODY"
  [ -n "$SECTION_NOTE" ] && printf '%s\n\n' "$SECTION_NOTE" >> "$BODY"
  SUMMARY+=("| $1 | skipped: $2 | |")
  SECTION_NOTE=""
}

SETUP="no wheels installed (dry run: the environment's own packages)"
if [ $DRY -eq 1 ]; then
  export CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=1
  if has triton; then export TRITON_INTERPRET=1; fi
  DEVICE=cpu
else
  DEVICE=cuda
  export TRITON_INTERPRET=0
  if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
    SITE="$WORK/site"
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$WHEELS"/*.whl \
        > "$WORK/pip.log" 2>&1; then
      SETUP="installed $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS into $SITE (PYTHONPATH)"
      export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    else
      SETUP="wheel install FAILED: $(tail -3 "$WORK/pip.log" | tr '\n' ' ')"; FAILED=1
    fi
  else
    SETUP="no wheels in $WHEELS (run benchmarks/gpu_wheels.sh here and carry the folder)"
  fi
fi
export PYTHONPATH="$ROOT/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
echo "setup: $SETUP"

section "0. Machine" "${SECTION_LIMITS[0]}" "$PY" benchmarks/gpu/versions.py

# 1. kernel tests. Dry run: one case per kernel family (the full set takes minutes in Triton's interpreter).
TESTS=(tests/neurons/test_fused_triton.py tests/neurons/test_fused_learnable_triton.py tests/ttfs/test_backend_triton.py
       tests/neurons/test_spikebp_kernels.py)
PYTEST=("$PY" -m pytest -q -p no:cacheprovider -rfEs "${TESTS[@]}")
if [ $DRY -eq 0 ] && has xdist; then
  PYTEST+=(-n 8)  # ~100 Triton specialisations of the backward kernel compile in parallel
fi
if [ $DRY -eq 1 ]; then
  PYTEST+=(-k "test_forward_kernel_equals_numba and 0-False or test_kernels_equal_numba and 0-False-False-False or \
test_dense_equals_reference and dtype0-exp or test_cuda_equals_cpu_kernel")
fi
if has pytest; then section "1. CUDA kernel tests against the CPU references" "${SECTION_LIMITS[1]}" "${PYTEST[@]}"
else skip "1. CUDA kernel tests against the CPU references" "pytest is not installed"; fi

# 2. LIF against SpikingJelly
LIF=("$PY" benchmarks/gpu/lif_vs_sj.py --device "$DEVICE")
if [ $DRY -eq 1 ]; then  # deepspike through its Triton kernels (interpreted; the reference loop without triton)
  LIF_CASES=deepspike
  if has spikingjelly; then LIF_CASES+=",spikingjelly-triton"
  else SECTION_NOTE="spikingjelly is not installed here: left out of the dry run."; fi
  LIF=(env DEEPSPIKE_FUSED_BACKEND=triton "${LIF[@]}" --T 4 --batch 2 --neurons 256 --steps 1 --warmup 1
       --dtypes fp32 --cases "$LIF_CASES")
fi
section "2. LIF layer: deepspike against SpikingJelly" "${SECTION_LIMITS[2]}" "${LIF[@]}"

# 3. Open Neuromorphic benchmark (frameworks that do not import are left out in the dry run, and said so)
ON_TITLE="3. Open Neuromorphic benchmark"
FRAMEWORKS=deepspike,snntorch,spikingjelly,norse,norse_compile,spyx
ON=("$PY" benchmarks/bench_on.py --device "$DEVICE" --neurons 16384 --timesteps 500 --batch 16 --markdown)
if [ $DRY -eq 1 ]; then
  FRAMEWORKS=deepspike
  for m in snntorch spikingjelly norse spyx; do
    if has $m; then FRAMEWORKS+=",$m"; [ $m = norse ] && FRAMEWORKS+=",norse_compile"
    else SECTION_NOTE+="$m is not installed here: left out of the dry run. "; fi
  done
  ON=("$PY" benchmarks/bench_on.py --device cpu --neurons 64 --timesteps 10 --batch 2 --markdown)
fi
if [ -f benchmarks/bench_on.py ]; then section "$ON_TITLE" "${SECTION_LIMITS[3]}" "${ON[@]}" --frameworks "$FRAMEWORKS"
elif [ $DRY -eq 1 ]; then skip "$ON_TITLE" "benchmarks/bench_on.py is not in this checkout"
else section "$ON_TITLE" 5 test -f benchmarks/bench_on.py; fi

# 4. TTFS conv layer
TTFS=("$PY" benchmarks/gpu/ttfs_conv.py --gpu-device "$DEVICE")
if [ $DRY -eq 1 ]; then
  TTFS+=(--batch 1 --channels 2 --size 3 --steps 1 --cpu-steps 1 --cpu-backends torch)
fi
TTFS_TITLE="4. TTFS conv layer: CUDA (Triton) against the CPU backends"
if has triton; then section "$TTFS_TITLE" "${SECTION_LIMITS[4]}" "${TTFS[@]}"
else skip "$TTFS_TITLE" "triton is not installed"; fi

# the report: written to a temporary file beside $MD, then renamed over it (a reader sees the old or the new one)
TMP_MD="$(mktemp --suffix=.tmp "$(dirname "$MD")/.$(basename "$MD").XXXXXXXX")" || error "cannot write $MD"
chmod "$(printf '%o' $((0666 & ~0$(umask))))" "$TMP_MD"  # mktemp's 0600 would make the report private
if ! {
  printf '# deepspike GPU check%s\n\n' "$([ $DRY -eq 1 ] && echo ' (dry run: tiny sizes, CPU, Triton interpreter)')"
  printf 'Written by `benchmarks/gpu_check.sh%s` on %s.\n\nSetup: %s\n\n' "$([ $DRY -eq 1 ] && echo ' --dry-run')" \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SETUP"
  printf '| section | status | time |\n|---|---|---|\n'
  printf '%s\n' "${SUMMARY[@]}"
  echo
  cat "$BODY"
} > "$TMP_MD" || ! mv -f "$TMP_MD" "$MD"; then
  rm -f "$TMP_MD"
  rm -rf "$WORK"
  echo "gpu_check.sh: error: cannot write $MD (the previous report, if any, is unchanged)" >&2
  exit 2
fi
rm -rf "$WORK"
echo "report: $MD"
exit $FAILED
