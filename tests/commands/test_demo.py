"""``deepspike demo``: an earlier demo is replaced only by a demo that finished."""

from deepspike.cli import main

QUICK = ["train.epochs=1", "train.max_steps_per_epoch=1", "train.progress=false"]


def _files(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_a_refused_demo_keeps_the_earlier_demo(tmp_path, capsys):
    """A bad override found once training sets up (a model argument, a data set that is not there) deleted the
    earlier demo before it was refused: ``--out`` was left holding only ``.demo``. Now the earlier demo stays, byte
    for byte, and nothing else is left beside it."""
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *QUICK]) == 0
    before = _files(out)
    assert "checkpoint.pt" in before and "summary.json" in before
    for bad in ("model.args.foo=1", "model.name=vgg16", "method.name=ann"):
        capsys.readouterr()
        assert main(["demo", "--out", str(out), *QUICK, bad]) == 2
        # method.name=ann first notes the demo recipe's stbp options it leaves out (config.load), then is refused
        # before it trains (no 'epoch 1/1' line)
        err = "".join(line for line in capsys.readouterr().err.splitlines(keepends=True)
                      if not line.startswith("deepspike: note: "))
        assert err.startswith("deepspike: error: ") and err.count("\n") == 1, bad
        assert _files(out) == before, bad
        assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], bad
    assert main(["demo", "--out", str(out), *QUICK, "train.seed=1"]) == 0  # a demo that finishes replaces it
    assert "seed: 1" in (out / "config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_an_earlier_demo_behind_a_link_is_replaced_where_it_is(tmp_path):
    """``--out`` a symbolic link to an earlier demo: the new demo goes to the link's folder and the link stays."""
    real, link = tmp_path / "real", tmp_path / "link"
    assert main(["demo", "--out", str(real), *QUICK]) == 0
    link.symlink_to(real, target_is_directory=True)
    assert main(["demo", "--out", str(link), *QUICK, "train.seed=2"]) == 0
    assert link.is_symlink() and "seed: 2" in (real / "config.yaml").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]


def test_a_refused_first_demo_leaves_nothing_behind(tmp_path, capsys):
    """A bad override found once training sets up (an unknown data set) left a new --out holding only ``.demo``
    (and an empty folder given as --out holding it), though bad input writes nothing."""
    new, empty = tmp_path / "new", tmp_path / "empty"
    empty.mkdir()
    for out in (new, empty):
        assert main(["demo", "--out", str(out), *QUICK, "data.name=nope"]) == 2
        assert capsys.readouterr().err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"] and not any(empty.iterdir())


def test_the_report_says_epoch_for_one_epoch(tmp_path, capsys):
    """A one-epoch demo printed "(1 epochs, ...)"; it now says "(1 epoch, ...)", and "epochs" for more."""
    assert main(["demo", "--out", str(tmp_path / "one"), *QUICK]) == 0
    assert "(1 epoch, " in capsys.readouterr().out
    assert main(["demo", "--out", str(tmp_path / "two"), *QUICK, "train.epochs=2"]) == 0
    assert "(2 epochs, " in capsys.readouterr().out
