"""``target_report``: which runs the chip reports take, refused in one line before any chip tool is needed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from deepspike.core.errors import ConfigError
from deepspike.deploy import targets


@pytest.mark.parametrize("target", ["speck", "xylo"])
def test_an_ann_run_is_refused_as_an_ann_run(monkeypatch, tmp_path, target):
    """``export ANN_RUN --target xylo`` said "xylo: NIR export supports rate-coded networks (with .body); got
    Sequential: wrap a net of your own as RateNetwork(...)", advice for a net of one's own, naming another export."""
    config = SimpleNamespace(method=SimpleNamespace(name="ann"))
    monkeypatch.setattr(targets, "load_run", lambda *a, **k: (config, None, None))
    with pytest.raises(ConfigError, match=rf"^--target {target}: .* is an ANN run: convert it to a spiking net first "
                                          r"\(deepspike convert .* --to rate\) and check the converted run$"):
        targets.target_report(tmp_path, target)
