"""What README.md and docs/ name exists as named: recipe keys, ``deepspike.*`` / ``ds.*`` names, files of the
repository, command-line options, the defaults the pages quote, and the lists of keys and files the guarantees
promise. (``test_doc_commands.py`` parses the pages' shell commands; this covers the prose around them.)"""

import argparse
import importlib
import inspect
import re
from pathlib import Path

from deepspike.api.catalog import dataset_names
from deepspike.cli import build_parser
from deepspike.config.reference import method_keys, section_keys
from deepspike.data.neuromorphic.shd import load_shd, load_ssc
from deepspike.methods.neuron_choice import NEURONS
from deepspike.neurons.surrogate import _SURROGATES, BUILT_IN
from deepspike.training.run_open import RESUMABLE_KEYS
from deepspike.training.runs import OUTPUT_NAMES

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *(p for p in sorted((ROOT / "docs").rglob("*.md")) if "generated" not in p.parts)]
README = ROOT / "README.md"
SECTIONS = "method|model|data|optim|schedule|train|expected"
SECTION_KEY = re.compile(rf"(?<![\w./-])((?:{SECTIONS})\.[a-z_][a-z0-9_.]*[a-z0-9_])")
FILE_SUFFIXES = ("nir", "onnx", "md", "yaml", "json")  # model.nir, data.md: files, not keys
PYTHON_NAME = re.compile(r"(?<![\w.])(deepspike(?:\.\w+)+|ds\.\w+)")
NOT_PYTHON_NAMES = {"deepspike.states"}  # the ONNX file's metadata key (docs/deployment.md)
REPO_PATH = re.compile(r"(?<![\w./-])((?:configs|benchmarks|tests|src|docs)/[\w./-]*\w)(?:::(\w+))?")
OPTION = re.compile(r"(?<![\w-])(--[A-Za-z][\w-]*)")
OTHER_TOOLS = {"--made-from": "benchmarks/make_zoo.py", "--replace": "benchmarks/make_zoo.py",
               "--dry-run": "benchmarks/gpu_check.sh", "--markdown": "benchmarks/bench_eprop.py",
               "--standalone": "tests/torchrun.py", "--nproc_per_node": "tests/torchrun.py"}  # torchrun's own
DEFAULT = re.compile(r"`([a-z_]+)`[^`(]{0,30}\(default:? (-?[0-9][0-9.e-]*|true|false|null)[),;:\s]")


def _prose(page: Path) -> list[tuple[int, str]]:
    """(line number, line) of the page outside its fenced code blocks."""
    lines, fenced = [], False
    for number, line in enumerate(page.read_text().splitlines(), 1):
        fenced = fenced != line.lstrip().startswith("```")
        if not fenced and not line.lstrip().startswith("```"):
            lines.append((number, line))
    return lines


def _all_lines(page: Path) -> list[tuple[int, str]]:
    return list(enumerate(page.read_text().splitlines(), 1))


def _recipe_defaults() -> dict[str, list]:
    """``{key's last name: [its default in each section or method that has it]}``."""
    found: dict[str, list] = {}
    for keys in [*section_keys().values(), *method_keys().values()]:
        for k in keys:
            found.setdefault(k.key.rsplit(".", 1)[1], []).append(k.default)
    return found


def test_every_recipe_key_the_pages_name_exists():
    known = {k.key for keys in [*section_keys().values(), *method_keys().values()] for k in keys}
    known |= {"method.name", *section_keys(), "method"}
    free = ("data.args.", "model.args.", "method.surrogate_args")  # the loader's / factory's own options
    wrong = [f"{page.name}:{n}: {key}" for page in PAGES for n, line in _all_lines(page)
             for key in SECTION_KEY.findall(line)
             if key not in known and not key.startswith(free) and key.rsplit(".", 1)[1] not in FILE_SUFFIXES]
    assert not wrong, wrong


def _resolve(dotted: str):
    """The object ``dotted`` names, read attribute by attribute from its top module, importing a submodule only
    where no attribute of that name exists: importing a submodule that shares a name with a function (as the zoo's
    folder ``deepspike/pretrained/`` did) would bind it over the function for every later test of the process."""
    parts = dotted.split(".")
    found = importlib.import_module(parts[0])
    for n, name in enumerate(parts[1:], start=2):
        found = getattr(found, name) if hasattr(found, name) else importlib.import_module(".".join(parts[:n]))
    return found


def test_every_python_name_the_pages_give_resolves():
    names = {(page.name, n, m) for page in PAGES for n, line in _all_lines(page) for m in PYTHON_NAME.findall(line)}
    assert len(names) > 60
    wrong = []
    for page, n, name in sorted(names):
        dotted = "deepspike." + name[3:] if name.startswith("ds.") else name
        if dotted not in NOT_PYTHON_NAMES:
            try:
                _resolve(dotted)
            except (ImportError, AttributeError) as error:
                wrong.append(f"{page}:{n}: {name} ({error})")
    assert not wrong, wrong


def test_every_repository_file_the_pages_name_exists():
    wrong = []
    for page in PAGES:
        for n, line in _all_lines(page):
            for path, function in REPO_PATH.findall(line):
                if "RECIPE" in path or "generated" in path:
                    continue  # a placeholder; docs/generated is made by `make docs`
                target = ROOT / path
                if not target.exists() or (function and f"def {function}" not in target.read_text()):
                    wrong.append(f"{page.name}:{n}: {path}{'::' + function if function else ''}")
    assert not wrong, wrong


def _cli_options() -> set[str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {s for sub in commands.choices.values() for a in sub._actions for s in a.option_strings}


def test_every_option_the_pages_name_in_prose_exists():
    """Shell blocks are parsed command by command in test_doc_commands; the prose names options too."""
    options = _cli_options()
    wrong = []
    for page in PAGES:
        for n, line in _prose(page):
            for option in OPTION.findall(line):
                tool = OTHER_TOOLS.get(option)
                if option not in options and not (tool and option in (ROOT / tool).read_text()):
                    wrong.append(f"{page.name}:{n}: {option}")
    assert not wrong, wrong


def test_the_defaults_the_pages_quote_are_the_codes():
    defaults, compared, wrong = _recipe_defaults(), 0, []
    for page in PAGES:
        prose = "\n".join(line for _, line in _prose(page))  # a key and its default may be a line apart
        for key, shown in DEFAULT.findall(prose):
            if key not in defaults:
                continue
            value = {"true": True, "false": False, "null": None}.get(shown)
            value = float(shown.rstrip(".")) if value is None and shown != "null" else value
            compared += 1
            if not any(d == value and type(d) is not bool or d is value for d in defaults[key]):
                wrong.append(f"{page.name}: {key} (default {shown}); the code's: {defaults[key]}")
    assert compared >= 10 and not wrong, (compared, wrong)


def _table(page: Path, header: str) -> dict[str, str]:
    """``{first cell: second cell}`` of the Markdown table under the header row that starts with ``header``."""
    text = page.read_text()
    rows = text[text.index(header):].split("\n\n")[0].splitlines()[2:]
    return {row.split("|")[1].strip().strip("`"): row.split("|")[2].strip() for row in rows}


def test_the_shd_options_table_gives_the_loaders_defaults():
    table = _table(ROOT / "docs" / "data.md", "| `data.args` | default |")
    for loader in (load_shd, load_ssc):
        own = {name: p.default for name, p in inspect.signature(loader).parameters.items()
               if name not in ("data_dir", "val_fraction", "seed", "download")}
        assert set(table) == set(own)
        for name, default in own.items():
            shown = table[name].lower()
            assert shown == str(default).lower() or float(shown) == default, (name, shown, default)


def test_the_distillation_table_gives_the_recipe_defaults():
    table = _table(ROOT / "docs" / "methods" / "distillation.md", "| key | default |")
    listed = {k.key: k.default for k in section_keys()["train"] if k.key.startswith("train.distill_")}
    assert set(table) == set(listed)
    for key, default in listed.items():
        assert table[key] == ("null" if default is None else str(default)), key


def _readme_keys(after: str) -> set[str]:
    text = README.read_text()
    start = text.index(after)
    return set(re.findall(r"`([a-z]+\.[a-z_.*]+)`", text[start:text.index("(others would be", start)]))


def test_the_readme_lists_the_keys_a_resume_may_change():
    expanded = {k for k in RESUMABLE_KEYS if not k.startswith("expected.")} | {"expected.*"}
    assert _readme_keys("`--resume`\n  refuses overrides except") == expanded


def test_the_readme_lists_the_files_a_new_run_refuses_to_write_over():
    text = README.read_text()
    start = text.index("`train --out DIR` refuses a folder holding")
    listed = re.findall(r"`([\w.]+)`", text[start:text.index("unless it is a run", start)])
    assert set(listed) == set(OUTPUT_NAMES)


def test_every_environment_variable_the_code_reads_is_documented():
    """DEEPSPIKE_CACHE (where the native TTFS kernels are built) and DEEPSPIKE_FUSED_BACKEND were read by the code
    and named on no page; a user met the first only in an error message."""
    read = {name for path in (ROOT / "src").rglob("*.py") for name in re.findall(r'"(DEEPSPIKE_[A-Z_]+)"',
                                                                                   path.read_text())}
    pages = "".join(page.read_text() for page in PAGES)
    assert len(read) >= 7 and not [name for name in sorted(read) if name not in pages]


def test_the_method_pages_energies_are_the_stored_comparisons():
    """docs/methods/index.md quoted Diehl & Cook's net at 2,216 / 18,430 nJ, session 34's first measurement, after
    RESULTS and benchmarks/results/session34/compare_costs.md had the re-measured 2,206 / 18,357 nJ."""
    table = (ROOT / "benchmarks" / "results" / "session34" / "compare_costs.md").read_text()
    rows = {row.split("|")[1].strip(): row.split("|") for row in table.splitlines()[2:]}
    page = (ROOT / "docs" / "methods" / "index.md").read_text().replace("\n", " ")
    psn = re.search(r"PSN row net costs ([\d.,]+) nJ by its synapses and ([\d.,]+) nJ with its updates", page)
    wta = re.search(r"400-neuron net ([\d,]+) nJ and ([\d,]+) nJ", page)
    for found, run in ((psn, "runs/s31_fmrows_psn_seed0"), (wta, "runs/wta_fmnist_400")):
        stored = [float(rows[run][c].replace(",", "")) for c in (9, 10)]  # energy, + updates (nJ)
        quoted = [float(v.replace(",", "")) for v in found.groups()]
        assert quoted == [round(v) for v in stored], (run, quoted, stored)


def _deepspike_steps(results: str, section: str) -> list[float]:
    """deepspike's train step (ms) in each net's table of the generated RESULTS section ``section``."""
    body = results.split(f"<!-- bench:{section}:start -->")[1].split(f"<!-- bench:{section}:end -->")[0]
    return [float(row.split("|")[2]) for row in body.splitlines() if row.startswith("| deepspike |")]


def test_the_readme_bf16_speedup_is_the_stored_tables():
    """README quoted bfloat16 autocast steps 1.47-1.65x faster than float32 citing only "session 21's tables"; it
    now names the tables, and the range is read from them (float32 step / bfloat16 step, four nets)."""
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()
    fp32, bf16 = _deepspike_steps(results, "rate_deep"), _deepspike_steps(results, "rate_deep_bf16")
    assert len(fp32) == len(bf16) == 4
    ratios = [a / b for a, b in zip(fp32, bf16)]
    text = README.read_text().replace("\n", " ")
    quoted = re.search(r"train\.precision=bf16` \(autocast\) the deep-net training steps ran ([\d.]+)-([\d.]+)x", text)
    assert [float(v) for v in quoted.groups()] == [round(min(ratios), 2), round(max(ratios), 2)], ratios


def test_the_pages_give_make_demo_the_same_time():
    """README said `make demo` takes "~2 minutes" (with the venv's creation), docs/getting-started.md "under a
    minute"; both now quote the demo's measured wall time (README's "What `make demo` prints") and say the first run
    creates the venv too."""
    measured = re.search(r"\((\d+) s wall time\s+in all", README.read_text()).group(1)
    for page in (README, ROOT / "docs" / "getting-started.md"):
        text = page.read_text()
        comment = text[text.index("make demo "):].split("make test")[0]
        assert f"({measured} s wall time" in comment and ".venv" in comment, page.name


def test_the_block_width_gain_is_the_stored_runs():
    """docs/performance.md's "13-17%" for the wide blocks at T = 4 cited nothing; it is the time saved per value
    by the means of session 21's two alternated runs of each kernel, which this reads from the stored log."""
    log = (ROOT / "benchmarks" / "results" / "speed2" / "session21_block_width_kernels_ab.txt").read_text()
    runs = {"old": [], "new": []}
    for line in log.splitlines():
        if line.startswith("T=4 "):
            runs[line.split()[1]].append([float(v) for v in re.findall(r"(?:fwd|bwd|input_grad) ([\d.]+)", line)])
    old, new = ([sum(col) / len(col) for col in zip(*runs[k])] for k in ("old", "new"))
    saved = [round(100 * (1 - n / o)) for o, n in zip(old, new)]
    text = (ROOT / "docs" / "performance.md").read_text().replace("\n", " ")
    quoted = re.search(r"kernels take (\d+)-(\d+)% less time per value", text).groups()
    assert [int(v) for v in quoted] == [min(saved), max(saved)], saved


def test_the_channels_last_gain_names_the_net_measured():
    """docs/performance.md gave session 14's channels-last gain (10%) to SEW-ResNet-18 PLIF; session 14 timed the
    LIF net (`--case FRAMEWORK:sew_resnet18:4`, 1,484 -> 1,330 ms), session 16 the PLIF one (1,275 -> 1,198 ms)."""
    row = next(line for line in (ROOT / "benchmarks" / "results" / "speed2" / "session14_scripts" / "README.md")
               .read_text().splitlines() if "contiguous vs channels-last" in line)
    assert ":sew_resnet18:4 " in row
    before, after = re.search(r"deepspike ([\d,]+) / ([\d,]+) ms", row).groups()
    text = (ROOT / "docs" / "performance.md").read_text().replace("\n", " ")
    quoted = re.search(r"the LIF net's training step (\d+)% shorter in session 14's measurement, ([\d,]+) against "
                       r"([\d,]+) ms", text).groups()
    assert quoted == (str(round(100 * (1 - int(after.replace(",", "")) / int(before.replace(",", ""))))), after, before)


def test_the_state_quant_figures_are_the_stored_table():
    """docs/methods/stbp.md said snnTorch's estimator 'left digits at 35-37% where float membranes reach 97-99%':
    35-37% is RESULTS' 8-bit column only (2-6 bits: 20.56-42.50%) and the float runs were 97.78-99.17%; the page now
    quotes the table's ranges to one decimal."""
    results = (ROOT / "benchmarks" / "RESULTS.md").read_text()

    def cells(row_start: str) -> list[list[float]]:
        row = next(line for line in results.splitlines() if line.startswith(row_start))
        return [[float(v) for v in c.split(" / ")] for c in row.split("|")[2:-1] if c.strip() != "(as left)"]

    clipped, plain = cells("| clipped straight-through gradient"), cells("| plain straight-through gradient")
    eight, fewer = plain[0], [v for col in plain[1:] for v in col]
    stored = [f"{f(col):.1f}" for col in (eight, fewer, clipped[0]) for f in (min, max)]
    text = (ROOT / "docs" / "methods" / "stbp.md").read_text().replace("\n", " ")
    quoted = re.search(r"left digits at\s+([\d.]+)-([\d.]+)% with 8-bit membranes and ([\d.]+)-([\d.]+)% with 2-6 "
                       r"bits, seeds 0-2, where float membranes reach\s+([\d.]+)-([\d.]+)%", text)
    assert list(quoted.groups()) == stored, stored


def test_the_data_page_lists_every_data_set_and_no_other():
    """docs/data.md's table, first column: each row's names in backticks."""
    rows = (ROOT / "docs" / "data.md").read_text().split("| name | what |")[1].split("\n\n")[0].splitlines()[2:]
    listed = [name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])]
    assert sorted(listed) == sorted(dataset_names())


def test_the_architecture_page_lists_the_built_in_neurons():
    text = (ROOT / "docs" / "architecture.md").read_text()
    sentence = text[text.index("The\nbuilt-in choices are"):].split(".")[0]
    assert set(re.findall(r"`(\w+)`", sentence)) == set(NEURONS)


def test_the_stbp_page_gives_each_surrogates_own_constants():
    """docs/methods/stbp.md: "`name` formula (..., $p = v$)" for each built-in surrogate, in the code's order."""
    text = (ROOT / "docs" / "methods" / "stbp.md").read_text()
    text = text[text.index("`rectangular` $"):text.index("integrate to 1")]
    starts = [re.search(rf"`{name}`\s", text).start() for name in BUILT_IN]
    for name, start, end in zip(BUILT_IN, starts, [*starts[1:], len(text)]):
        quoted = re.findall(r"\$\\?(\w+) = ([0-9.]+)\$", text[start:end])
        assert [(k, float(v)) for k, v in quoted] == list(_SURROGATES[name][1].items()), name
