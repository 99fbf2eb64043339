"""``benchmarks/gpu_check.sh --dry-run`` (tiny sizes, CPU tensors, Triton's interpreter where triton is installed)
runs here and writes every section of the GPU report, so the script that only a lent GPU runs in full cannot rot
unnoticed. A section that fails or times out fails this test; one whose tools are missing must say it skipped."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("0. Machine", "1. CUDA kernel tests against the CPU references", "2. LIF layer: deepspike against "
            "SpikingJelly", "3. Open Neuromorphic benchmark", "4. TTFS conv layer: CUDA (Triton) against the CPU "
            "backends")


def test_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu_check.md"
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run", "--python", sys.executable,
                          "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    umask = os.umask(0o022)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # the usual mode, not the temporary file's 0600
    md = out.read_text()
    assert md.startswith("# deepspike GPU check (dry run")
    for title in SECTIONS:
        row = re.search(rf"^\| {re.escape(title)} \| (ok|skipped: [^|]+)(: [^|]*)? \|", md, re.M)
        assert row, f"summary row of {title!r} missing or not ok/skipped"
        body = re.search(rf"^## {re.escape(title)}\n\n(.*?)(?=^## |\Z)", md, re.M | re.S)
        assert body and "Status: **" in body.group(1), title
        if row.group(1).startswith("ok"):
            assert "```\n" in body.group(1) and "Command (limit" in body.group(1), title
    assert re.search(r"^\| 1\. [^|]*\| ok: [^|]*\d+ (passed|skipped)", md, re.M)  # pytest's counts in the summary
    assert f"torch {__import__('torch').__version__}" in md  # the machine section read the versions
    assert "| deepspike | fp32 |" in md  # the LIF table has deepspike's row
    # every LIF case the dry run starts can run here (a peer that is not installed is left out and said so)
    assert re.search(r"^\| 2\. [^|]*\| ok: 0 of \d+ cases failed \|", md, re.M), md[:2000]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA, where deepspike's case fails")
def test_lif_check_fails_when_deepspikes_case_fails():
    """``gpu/lif_vs_sj.py`` exited 0 even when deepspike's own row failed, so section 2 read 'ok' and the GPU check
    passed with our kernel broken; now such a run exits 1 (a SpikingJelly row may fail: it is the reference)."""
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu" / "lif_vs_sj.py"), "--device", "cuda",
                          "--cases", "deepspike", "--dtypes", "fp32", "--T", "2", "--batch", "1", "--neurons", "4",
                          "--steps", "1", "--warmup", "0"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stdout.strip().splitlines()[-1] == "1 of 1 cases failed: deepspike fp32"


@pytest.mark.parametrize(("args", "message"), [
    (["--out"], "--out needs a value"),
    (["--dry-run", "--python"], "--python needs a value"),
    (["--out", ""], "--out needs a value"),
    (["--wheel", "x"], "unknown argument: --wheel"),
    (["--out", "."], "is a folder; give the name of a file to write"),
])
def test_a_bad_argument_is_one_error_line_with_status_2_before_any_section_runs(args, message, tmp_path):
    """``--out`` with no value stopped on 'line 39: $2: unbound variable' with exit status 1; ``--out .`` ran every
    section (minutes of a lent GPU) and then could not write the report."""
    res = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), *args], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    assert res.returncode == 2 and not res.stdout
    assert res.stderr.startswith("gpu_check.sh: error: ") and res.stderr.count("\n") == 1
    assert message in res.stderr and "usage: bash benchmarks/gpu_check.sh [--out FILE]" in res.stderr


def test_a_report_write_that_fails_leaves_the_old_report(tmp_path):
    """The report was written with ``> "$MD"``, which truncates first: with writes failing past 1 KiB (ulimit -f 1,
    SIGXFSZ ignored: a full disk) the old report was replaced by the first 1,024 bytes of the new one and the
    script said 'report: ...' (exit status 1). Now it goes to a temporary file renamed over the report: the old one
    stays and the error is one line, exit status 2. (``--python false``: every section fails at once.)"""
    report = tmp_path / "gpu_check.md"
    report.write_text("old report\n" * 300)
    script = f"trap '' XFSZ; ulimit -f 1; exec bash {ROOT / 'benchmarks' / 'gpu_check.sh'} --dry-run --python false " \
             f"--out {report}"
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
    assert report.read_text() == "old report\n" * 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.md"]
    assert res.stderr.splitlines()[-1] == f"gpu_check.sh: error: cannot write {report} (the previous report, if " \
                                          "any, is unchanged)"
