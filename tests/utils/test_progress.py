"""Stage progress: one line per finished stage on non-interactive output, nothing when disabled."""

from verl.utils.progress import ProgressCounter, Stage


def test_counter_counts_per_kind():
    counter = ProgressCounter()
    counter.add("episodes", 1, 1)
    counter.add("episodes", 2, 0)
    counter.add("steps")
    assert counter.read("episodes") == (3, 1) and counter.read("steps") == (1, 0)
    counter.reset("episodes")
    assert counter.read("episodes") == (0, 0) and counter.read("never") == (0, 0)


def test_non_interactive_stage_prints_one_line_at_the_end(capsys):
    stage = Stage("validation at step 0", 4, "episodes")
    stage.update(2, 1)
    assert capsys.readouterr().err == ""  # nothing while it runs (stderr is not a terminal here)
    stage.update(4, 2)
    stage.close("0.500 success")
    err = capsys.readouterr().err
    assert err.startswith("[validation at step 0] 4/4 episodes in ") and err.endswith("; 0.500 success\n")
    assert err.count("\n") == 1


def test_resumed_stage_counts_from_its_start_and_disabled_stage_is_silent(capsys):
    stage = Stage("SFT steps", 100, "steps", initial=40)
    stage.update(10)
    stage.close()
    assert "[SFT steps] 50/100 steps in " in capsys.readouterr().err
    quiet = Stage("checkpoint step 1", None, "", enabled=False)
    quiet.close("written")
    assert capsys.readouterr().err == ""
