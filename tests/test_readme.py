"""The README's Python API examples run as written (on digits: x [B, 64] in [0, 1]) and learn."""

import re
from pathlib import Path

import torch
from sklearn.datasets import load_digits

README = Path(__file__).resolve().parents[1] / "README.md"


def _api_examples() -> list[str]:
    text = README.read_text()
    section = text[text.index("## Python API"):text.index("## Architecture")]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


class RecordingBatches:
    """Digits batches, three passes; after each step it reads the example's ``loss`` variable."""

    def __init__(self, scope: dict, n_batches: int = 12, size: int = 64):
        digits = load_digits()
        x = torch.tensor(digits.data, dtype=torch.float32) / 16.0  # [1797, 64] in [0, 1]
        y = torch.tensor(digits.target)
        self.batches = [(x[i * size:(i + 1) * size], y[i * size:(i + 1) * size]) for i in range(n_batches)] * 3
        self.scope, self.losses = scope, []

    def __iter__(self):
        for batch in self.batches:
            yield batch
            self.losses.append(self.scope["loss"].item())


def test_readme_examples_run_and_reduce_the_loss():
    examples = _api_examples()
    assert len(examples) == 2
    scope: dict = {}
    for code in examples:
        torch.manual_seed(0)
        scope["batches"] = batches = RecordingBatches(scope)
        exec(compile(code, "README.md", "exec"), scope)
        losses = torch.tensor(batches.losses)
        assert len(losses) == 36 and torch.isfinite(losses).all()
        assert losses[-12:].mean() < 0.97 * losses[:12].mean()  # the third pass below the first
