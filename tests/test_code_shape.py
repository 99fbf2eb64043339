"""The code's shape rules (issue 18), checked on the source tree with ``ast``:

- no function longer than ``MAX_LINES`` lines except the compute kernels listed in ``KERNELS``;
- no ``deepspike`` import inside a function outside ``commands/``, except the kernel modules in ``LAZY_KERNELS``
  that are compiled by numba/Triton and loaded on first use (numba costs over a second to import).
The layering itself is import-linter's contract in pyproject.toml (``lint-imports``, run by ``make test``).
"""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "deepspike"
MAX_LINES = 60
KERNELS = {  # numba kernels: one loop nest each, split only at the cost of speed
    ("ttfs/kernels_numba.py", "forward_kernel"),
    ("ttfs/kernels_numba.py", "backward_kernel"),
}
LAZY_KERNELS = {
    ("layers/batchnorm_neuron_onepass.py", "deepspike.layers.batchnorm_neuron_kernels"),
    ("layers/spike_storage.py", "deepspike.layers.spike_codes_kernels"),
    ("neurons/fused.py", "deepspike.neurons.fused_kernels"),
    ("neurons/fused.py", "deepspike.neurons.fused_triton"),
    ("neurons/fused_learnable.py", "deepspike.neurons.fused_learnable_kernels"),
    ("neurons/fused_learnable.py", "deepspike.neurons.fused_learnable_triton"),
    ("neurons/fused_psn.py", "deepspike.neurons.psn_kernels"),
    ("neurons/spikebp_lif.py", "deepspike.neurons.spikebp_kernels"),
    ("training/eprop.py", "deepspike.training.eprop_kernels"),
}


def _functions(tree):
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def _sources():
    return sorted(SRC.rglob("*.py"))


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        package = node.module in ("deepspike.neurons", "deepspike.layers", "deepspike.training")  # "from package
        # import kernel_module"
        return [f"{node.module}.{a.name}" if package else node.module for a in node.names]
    return []


def test_no_long_functions():
    long = []
    for path in _sources():
        rel = path.relative_to(SRC).as_posix()
        for fn in _functions(ast.parse(path.read_text())):
            lines = fn.end_lineno - fn.lineno + 1
            if lines > MAX_LINES and (rel, fn.name) not in KERNELS:
                long.append(f"{rel}:{fn.lineno} {fn.name} ({lines} lines)")
    assert long == []


def test_no_deepspike_imports_inside_functions():
    local = []
    for path in _sources():
        rel = path.relative_to(SRC).as_posix()
        if rel.startswith("commands/"):
            continue
        for fn in _functions(ast.parse(path.read_text())):
            for node in ast.walk(fn):
                for name in _imported(node):
                    if name.startswith("deepspike") and (rel, name) not in LAZY_KERNELS:
                        local.append(f"{rel}:{node.lineno} {name}")
    assert local == []


@pytest.mark.parametrize("rule", ["long", "import"])
def test_the_checks_catch_a_violation(tmp_path, monkeypatch, rule):
    """The checks are not vacuous: a planted violation is found."""
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_LINES)) if rule == "long" else (
        "    from deepspike.models import spec\n    return spec")
    (tmp_path / "planted.py").write_text(f"def planted():\n{body}\n")
    monkeypatch.setitem(globals(), "SRC", tmp_path)
    check = test_no_long_functions if rule == "long" else test_no_deepspike_imports_inside_functions
    with pytest.raises(AssertionError):
        check()
