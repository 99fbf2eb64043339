"""``deepspike convert``'s options: an option no chosen norm reads is refused, not ignored."""
import pytest

from deepspike.cli import main


@pytest.mark.parametrize("options, message", [
    (["--norm", "max", "--percentile", "99"], "--norm max does not use --percentile (--norm percentile)"),
    (["--norm", "channel,max", "--seed", "3", "--calib-timesteps", "9"],
     "--norm channel,max does not use --calib-timesteps (--norm spike), --seed (--norm spike)"),
    (["--percentile", "99.9"], "--norm spike does not use --percentile (--norm percentile)"),
])
def test_an_option_of_a_norm_not_chosen_is_refused(tmp_path, capsys, options, message):
    """They were accepted and ignored: ``--norm max --percentile 99`` converted with the largest activation."""
    out = tmp_path / "c"
    assert main(["convert", str(tmp_path / "run"), "--out", str(out), "--quiet", *options]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not out.exists()


def test_an_option_of_one_of_several_norms_is_accepted_up_to_loading_the_run(tmp_path, capsys):
    """``--norm spike,percentile --percentile 99 --seed 1``: each option is read by one of the norms, so the command
    gets as far as the (missing) run."""
    assert main(["convert", str(tmp_path / "run"), "--norm", "spike,percentile", "--percentile", "99", "--seed", "1",
                 "--out", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not use" not in err and "run" in err and err.count("\n") == 1


@pytest.mark.parametrize("norm", ["max", "percentile", "channel,qcfs"])
def test_the_options_of_one_norm_left_out_are_not_filled_in_as_given(tmp_path, capsys, norm):
    """``api.convert`` checks the norms' options (``api.conversion.NORM_ONLY``): the command passes them only when
    given, so ``--norm max`` alone is not refused for the default ``--percentile``/``--seed`` it did not give."""
    assert main(["convert", str(tmp_path / "run"), "--norm", norm, "--out", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "does not use" not in err and "run" in err and err.count("\n") == 1


@pytest.mark.parametrize("norm, message", [
    ("maxx", "'maxx': unknown norm 'maxx'; valid: spike, max, percentile, channel, qcfs"),
    ("max,", "'max,': unknown norm ''; valid: spike, max"),
    ("max,spike,max", "'max,spike,max': 'max' is listed twice; list each norm once"),
])
def test_a_bad_norm_list_says_what_is_wrong_with_it(tmp_path, capsys, norm, message):
    """A misspelt norm was answered "list each of spike, max, percentile, channel, qcfs at most once", as if a norm
    had been listed twice: the error names the unknown norm, or the one listed twice."""
    with pytest.raises(SystemExit) as stop:  # argparse's usage error
        main(["convert", str(tmp_path / "run"), "--norm", norm, "--out", str(tmp_path / "c"), "--quiet"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and message in err and "at most once" not in err and not (tmp_path / "c").exists()
