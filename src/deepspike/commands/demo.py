"""``deepspike demo``: what ``make demo`` runs: train a small spiking conv net on scikit-learn's digits and report
its spikes.

The recipe is ``deepspike/recipes/demo.yaml`` (shipped inside the package, so the demo also runs from an
installed wheel): STBP on the 8x8 digits, well under a minute (session 22: 11 s on two cores).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from deepspike import api
from deepspike.config import load_config
from deepspike.core.atomic import check_output_dir
from deepspike.core.errors import ConfigError, UserError

NAME = "demo"
HELP = "train a small spiking conv net on digits (under a minute) and print its spikes"
DEMO_RECIPE = Path(api.__file__).parents[1] / "recipes" / "demo.yaml"
DEMO_MARKER = ".demo"
RATE_CODED_METHODS = ("stbp", "spikebp", "wta_stdp")  # nets whose spikes the demo counts (api.spike_activity)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="runs/demo", help="run directory (default runs/demo)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the demo recipe")


def run(args: argparse.Namespace) -> int:
    run_demo(args.out, list(args.overrides))
    return 0


def run_demo(out: str | Path, overrides: list[str]) -> dict:
    """Train the demo recipe into ``out`` and print its results. ``out`` must be new, empty or an earlier demo run
    (marked by ``.demo``): no other folder is written into. An earlier demo is replaced only once the new one has
    trained and been measured: the new one trains in a hidden folder beside it, so a refused override (a model
    argument, a data set that is not there) or an interrupted run leaves the earlier demo as it was; a refused
    first demo leaves ``out`` as it was (absent, or empty). A method whose net is not rate-coded (``ann``, the TTFS
    methods) is refused before it trains."""
    out = check_output_dir(out, "--out")
    config = load_config(DEMO_RECIPE, overrides)
    if config.method.name not in RATE_CODED_METHODS:  # else trained first, then refused by the spike count
        raise ConfigError(f"deepspike demo counts the spikes of a rate-coded net: method.name={config.method.name} "
                          f"has none (valid: {', '.join(RATE_CODED_METHODS)}); train it with deepspike train")
    earlier = (out / DEMO_MARKER).is_file()
    place = out.resolve() if earlier else out  # through a symbolic link: the earlier demo is replaced where it is
    if not earlier and out.is_dir() and any(out.iterdir()):
        raise ConfigError(f"{out} is not empty and holds no earlier demo; pick another --out")
    folder = Path(tempfile.mkdtemp(prefix=f".{place.name}.new-demo-", dir=place.parent)) if earlier else out
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / DEMO_MARKER).touch()
        summary = api.train(config, folder)
        activity = api.spike_activity(folder)
        if earlier:
            _replace(place, folder)
    except UserError:
        if not earlier:  # a refused first demo leaves --out as it found it: absent, or empty
            _undo_new_demo(folder, created)
        raise
    finally:
        if earlier and folder.exists():
            shutil.rmtree(folder)  # the new demo failed: the earlier one stays
    _report(summary, activity, config, out)
    return summary


def _undo_new_demo(folder: Path, created: bool) -> None:
    """Take away what a refused demo wrote into ``folder``, new (``created``: the folder too) or empty before."""
    if created:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for item in folder.iterdir():
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def _replace(out: Path, new: Path) -> None:
    """Put the finished demo ``new`` in place of the earlier demo ``out`` (both in the same folder)."""
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-demo-", dir=out.parent))
    held = old / out.name
    out.rename(held)
    try:
        new.rename(out)
    except OSError:
        held.rename(out)  # the earlier demo back in place
        raise
    finally:
        shutil.rmtree(old)


def _report(summary: dict, activity, config, out: Path) -> None:
    """Print the demo's accuracy, time steps and spikes."""
    print(f"\ndeepspike demo: {summary['method']} / {summary['model']} on {summary['dataset']}")
    print(
        f"  test accuracy       {summary['test_accuracy']:.4f}   ({summary['epochs']} "
        f"epoch{'' if summary['epochs'] == 1 else 's'}, "
        f"{summary['train_seconds']:.1f} s training)"
    )
    print(f"  time steps          {config.method.options.timesteps}")
    print(f"  spikes / inference  {activity.spikes_per_sample:,.1f}   (hidden + output layers)")
    print(f"  firing rate         {activity.mean_rate:.4f} spikes per neuron per step")
    print("  per layer:          " + ", ".join(f"{layer.name} {layer.rate:.3f}" for layer in activity.layers))
    print(f"  outputs in          {out}/ (config.yaml, metrics.jsonl, checkpoint.pt, summary.json)")
