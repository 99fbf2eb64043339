"""Which registered models map to Speck and Xylo, found by running the mappers on each (untrained weights:
fit depends on the architecture only; Xylo's accuracy cost needs a trained run, see ``export --target``).

Each model is built for Fashion-MNIST inputs ``(1, 28, 28)`` (digits ``(1, 8, 8)`` for ``scnn_digits``) as an
``stbp`` rate net with IF neurons (``decay = 1``, for Speck) and with LIF neurons (``decay = 0.5``, for Xylo);
``vgg`` and ``resnet`` without batch-norm (``batch_norm=False``), which stbp cannot build.

    make .nir-venv/.ok && OMP_NUM_THREADS=1 .nir-venv/bin/python benchmarks/nir/chip_fit_table.py
writes benchmarks/results/nir/chip_fit_table.md (atomically).
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from pathlib import Path

from deepspike.core.errors import ConfigError
from deepspike.deploy.speck import speck_report
from deepspike.deploy.xylo import xylo_report
from deepspike.methods import get_method
from deepspike.models import create_architecture

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cli_checks import write_result  # noqa: E402

OUT = Path(__file__).resolve().parents[1] / "results" / "nir"
MODELS = ["mlp", "scnn_digits", "lenet", "stbp_mnist", "zhang2021_conv", "zhou2021_mnist", "vgg", "resnet",
          "lee2020_vgg7", "lee2020_resnet7", "sengupta_vgg_small"]


def _build(name: str, decay: float):
    shape = (1, 8, 8) if name == "scnn_digits" else (1, 28, 28)
    args = {"batch_norm": False} if name in ("vgg", "resnet") else {}  # stbp builds no batch-norm
    arch = create_architecture(name, num_classes=10, input_shape=shape, width=1.0, **args)
    method = get_method("stbp", {"timesteps": 2, "decay": decay, "threshold": 1.0, "encoder": "direct",
                                 "readout": "rate"})
    return method.build(arch).eval(), shape


def _cell(fn) -> str:
    try:
        report = fn()
    except ConfigError as e:
        return f"no: {str(e).split(': ', 1)[-1]}"
    except Exception as e:  # noqa: BLE001 - a model the builder or mapper cannot take is the answer
        return f"no: {type(e).__name__}: {str(e).splitlines()[0][:100]}"
    return "yes" if report["fits"] else f"no: {report['reason']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    rows = ["| model | Speck (IF) | Xylo (LIF) |", "|---|---|---|"]
    for name in MODELS:
        speck = _cell(lambda name=name: speck_report(*_build(name, 1.0)))
        xylo = _cell(lambda name=name: xylo_report(_build(name, 0.5)[0]))
        rows.append(f"| {name} | {speck} | {xylo} |")
        print(rows[-1], flush=True)
    write_result(parser, OUT / "chip_fit_table.md", "\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
