"""``deepspike analyze``'s sweep lists: an entry that is no number is a usage error that names it."""
import pytest

from deepspike.cli import main


@pytest.mark.parametrize("option, text, message", [
    ("--bits", "8.5", "argument --bits: '8.5' is not a whole number; give comma-separated whole numbers, e.g. 8,4,2"),
    ("--qat", "8,four", "argument --qat: 'four' is not a whole number"),
    ("--snr", "40,abc", "argument --snr: 'abc' is not a number; give comma-separated numbers"),
    ("--deletion", "0.1,x", "argument --deletion: 'x' is not a number"),
])
def test_a_sweep_entry_that_is_no_number_is_named(tmp_path, capsys, option, text, message):
    """It read "argument --bits: invalid parse value: '8.5'" (argparse names the parser function, ``parse``)."""
    with pytest.raises(SystemExit) as stop:  # argparse's usage error, before the run is read
        main(["analyze", str(tmp_path / "run"), option, text])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and "invalid parse value" not in err
