"""``core.numba_cache``: the import closure read from a package's import statements, its stamp, and, end to end in
fresh processes, a cached kernel that is recompiled when a helper module it imports changes (numba alone reruns the
stale helper: the control case). Every deepspike kernel is cached through the tracking locators."""

import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deepspike.core.numba_cache import closure_stamp, import_closure

nb = pytest.importorskip("numba")
from numba_kernels import kernel_modules, own_kernels  # noqa: E402 (tests/numba_kernels.py)


def _package(tmp_path: Path, name: str, files: dict[str, str]) -> Path:
    root = tmp_path / name
    root.mkdir()
    (root / "__init__.py").write_text("")
    for file, text in files.items():
        (root / file).write_text(textwrap.dedent(text))
    return root


def test_import_closure_follows_package_imports_only(tmp_path):
    root = _package(tmp_path, "pkg", {
        "a.py": "import os\nfrom pkg.b import f\n",
        "b.py": "import pkg.c\nfrom pkg import d\n",
        "c.py": "x = 1\n",
        "d.py": "from numpy import zeros\n",
        "unrelated.py": "y = 2\n",
    })
    names = lambda p: [f.name for f in import_closure(root / p, root)]  # noqa: E731
    assert names("a.py") == ["__init__.py", "a.py", "b.py", "c.py", "d.py"]  # "from pkg import d": pkg too
    assert names("c.py") == ["c.py"]
    before = closure_stamp(root / "a.py", root)
    (root / "unrelated.py").write_text("y = 3\n")
    assert closure_stamp(root / "a.py", root) == before
    (root / "c.py").write_text("x = 22\n")  # another size: the digests are memoised on (mtime, size), and two
    assert closure_stamp(root / "a.py", root) != before  # writes within one clock tick share an mtime


KERNEL = """
import numba
{install}
from {pkg}.helper import helper

@numba.njit(cache=True)
def kernel():
    return helper()

print(kernel())
"""


def _run(tmp_path: Path, pkg: str) -> str:
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "NUMBA_CACHE_DIR": str(tmp_path / "numba_cache")}
    done = subprocess.run([sys.executable, "-m", f"{pkg}.kernel"], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize("tracked", [True, False])
def test_cached_kernel_sees_an_edited_helper_only_when_tracked(tmp_path, tracked):
    pkg = "tracked_pkg" if tracked else "plain_pkg"
    install = ("from pathlib import Path\nfrom deepspike.core.numba_cache import track_imported_sources\n"
               "assert track_imported_sources(Path(__file__).resolve().parent)") if tracked else ""
    helper = "import numba\n\n@numba.njit(cache=True)\ndef helper():\n    return {}\n"
    kernel = KERNEL.format(install=install, pkg=pkg)
    root = _package(tmp_path, pkg, {"helper.py": helper.format(1), "kernel.py": kernel})
    assert _run(tmp_path, pkg) == "1"
    (root / "helper.py").write_text(helper.format(2))
    assert _run(tmp_path, pkg) == ("2" if tracked else "1")  # plain numba: the cached kernel keeps the old helper


@pytest.mark.parametrize("name", kernel_modules())
def test_every_deepspike_kernel_is_cached_through_a_tracking_locator(name):
    module = importlib.import_module(name)
    dispatchers = own_kernels(module)
    assert dispatchers
    for kernel in dispatchers:
        locator = kernel._cache._impl.locator
        assert type(locator).__name__.startswith("DependencyTracking"), (kernel.py_func.__name__, type(locator))
