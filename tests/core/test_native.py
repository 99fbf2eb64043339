"""core.native: compiled libraries are loaded only from a cache folder no one else may write."""

import os
import shutil
import stat
import subprocess

import pytest

from deepspike.core import native
from deepspike.core.errors import ConfigError

pytestmark = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")

GOOD = "int answer(void) { return 42; }\n"
PLANTED = "int answer(void) { return 666; }\n"


@pytest.fixture
def cache(monkeypatch, tmp_path):
    """An empty cache under ``tmp_path``, nothing loaded yet in this process; the C source ``good.c``."""
    monkeypatch.setenv("DEEPSPIKE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "cc")
    monkeypatch.setattr(native, "_loaded", {})
    monkeypatch.setattr(native, "_reasons", {})
    source = tmp_path / "good.c"
    source.write_text(GOOD)
    return source


def _plant(library, tmp_path):
    """Replace the cached ``library`` by one that answers 666, as another user could."""
    planted = tmp_path / "planted.c"
    planted.write_text(PLANTED)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(library), str(planted)], check=True)


def _built(source):
    assert native.load(source).answer() == 42
    (library,) = native.cache_dir().glob("good-*.so")
    native._loaded.clear()  # as a later process
    return library


def test_a_library_planted_in_a_cache_others_may_write_is_not_loaded(cache, tmp_path):
    """A cache folder left writable by everyone (a shared DEEPSPIKE_CACHE): the library found under the expected
    name was loaded, whoever put it there (here it answered 666). Now it is refused, with the reason."""
    library = _built(cache)
    native.cache_dir().chmod(0o777)
    _plant(library, tmp_path)
    assert native.load(cache) is None
    reason = native.unavailable_reason(cache)
    assert f"{native.cache_dir()} is writable by other users (mode 777): not loaded" in reason and "\n" not in reason
    library.unlink()  # not even a fresh build goes there: another user could swap it before it is loaded
    assert native.load(cache) is None and not library.exists()


def test_a_library_others_may_write_is_built_again(cache, tmp_path):
    """A library in a trusted folder that others may write (or that belongs to another user, next test) was loaded
    as found; it is built again over now."""
    library = _built(cache)
    _plant(library, tmp_path)
    library.chmod(0o757)
    assert native.load(cache).answer() == 42
    assert stat.S_IMODE(library.stat().st_mode) == 0o755


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_library_of_another_user_is_built_again(cache, tmp_path):
    library = _built(cache)
    _plant(library, tmp_path)
    os.chown(library, 12345, 12345)
    assert native.load(cache).answer() == 42
    assert library.stat().st_uid == 0


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_cache_folder_of_another_user_is_not_used(cache, tmp_path):
    library = _built(cache)
    _plant(library, tmp_path)
    os.chown(native.cache_dir(), 12345, 12345)
    assert native.load(cache) is None
    assert f"{native.cache_dir()} belongs to another user (uid 12345)" in native.unavailable_reason(cache)


def test_a_cache_built_under_a_permissive_umask_is_trusted_again(cache):
    """Under umask 0 the folder and the library would be made writable by everyone (and then refused by the next
    process): both are made 0755 whatever the umask."""
    old = os.umask(0)
    try:
        library = _built(cache)
    finally:
        os.umask(old)
    assert stat.S_IMODE(native.cache_dir().stat().st_mode) == 0o755 and stat.S_IMODE(library.stat().st_mode) == 0o755
    assert native.load(cache).answer() == 42 and native.unavailable_reason(cache) == ""


@pytest.mark.parametrize("value", ["false", "off", " 0", "", "2"])
def test_a_native_switch_that_is_neither_0_nor_1_is_a_one_line_error(cache, monkeypatch, value):
    """DEEPSPIKE_NATIVE was off only when exactly "0": "false", "off" or " 0" silently left the C kernels on (and
    compiled them). Now a value that is not 0 or 1 is refused."""
    monkeypatch.setenv("DEEPSPIKE_NATIVE", value)
    with pytest.raises(ConfigError, match=rf"^DEEPSPIKE_NATIVE must be one of 0, 1, got {value!r}$"):
        native.load(cache)
    assert not native.cache_dir().exists()
    monkeypatch.setenv("DEEPSPIKE_NATIVE", "0")
    assert native.load(cache) is None and native.unavailable_reason(cache) == "disabled by DEEPSPIKE_NATIVE=0"


def test_a_tilde_in_the_cache_variable_is_the_home_folder(monkeypatch, tmp_path):
    """``DEEPSPIKE_CACHE='~/x'`` is ``$HOME/x`` as in a shell (it made a folder literally named ``~`` in the
    working folder); ``~nosuchuser/x`` is a one-line ConfigError."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEEPSPIKE_CACHE", "~/x")
    assert native.cache_dir() == tmp_path / "home" / "x" / "native"
    monkeypatch.setenv("DEEPSPIKE_CACHE", "~nosuchuser_deepspike/x")
    with pytest.raises(ConfigError, match=r"^DEEPSPIKE_CACHE '~nosuchuser_deepspike/x': cannot expand its '~' \("):
        native.cache_dir()
    monkeypatch.delenv("DEEPSPIKE_CACHE")
    assert native.cache_dir() == tmp_path / "home" / ".cache" / "deepspike" / "native"
