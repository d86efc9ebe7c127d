"""The tinypix command as a user meets it: one-line errors with exit statuses and nothing left
behind, help for every option, and runs that stop on Ctrl-C or SIGTERM and resume bit for bit."""
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import tinypix
from tinypix import cli

# A run of a few seconds: 4 batches of 4 images of 16 x 16 pixels per epoch.
TINY = ["--train-scenes", "16", "--val-scenes", "4", "--size", "16", "--base-channels", "4", "--depth", "2",
        "--batch-size", "4", "-q"]


def run(argv, capsys):
    """(exit status, stdout, stderr) of ``tinypix ARGV`` run in this process."""
    status = cli.main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_text("not a checkpoint\n")
    (tmp_path / "taken").write_text("a file where a folder is asked for\n")
    return tmp_path


CUPY = subprocess.run([sys.executable, "-c", "import cupy"], capture_output=True).returncode == 0
MISTAKES = [
    (["eval", "--checkpoint", "missing.npz"], 2, "--checkpoint missing.npz: no such file"),
    (["eval", "--checkpoint", "notes.txt"], 1, "--checkpoint notes.txt: cannot be read"),
    (["train", "--epochs", "0"], 2, "argument -e/--epochs: must be at least 1, got 0"),
    (["train", "--epochs", "-1"], 2, "argument -e/--epochs: must be at least 1, got -1"),
    (["train", "--epochs", "two"], 2, "argument -e/--epochs: expected a whole number, got 'two'"),
    (["train", "--batch-size", "0"], 2, "argument -b/--batch-size: must be at least 1, got 0"),
    (["train", "--lr", "nan"], 2, "argument --lr: must be a number above 0"),
    (["train", "--out", "taken"], 2, "--out taken: is a file; name a folder"),
    (["train", "--device", "gpu"], 2, "unknown device 'gpu' (the GPU is called cuda): use cpu or cuda"),
    pytest.param(["train", "--device", "cuda"], 1, "--device cuda: device 'cuda' needs CuPy",
                 marks=pytest.mark.skipif(CUPY, reason="CuPy is installed here")),
    (["train", "--data", "/nonexistent"], 2, "--data /nonexistent: does not exist; give a folder"),
    (["train", "--resume", "-o", "nothing-here"], 2, "--resume: no checkpoint at nothing-here"),
    (["train", *TINY, "--train-scenes", "3"], 2, "--batch-size 4: larger than the 3 training images"),
    (["predict", "nope.png", "--checkpoint", "notes.txt"], 2, "nope.png: no such file"),
    (["predict", "notes.txt", "--checkpoint", "missing.npz"], 2, "--checkpoint missing.npz: no such file"),
    (["trian"], 2, "invalid choice: 'trian' (choose from 'train', 'eval', 'predict')"),
]


@pytest.mark.parametrize("argv, status, message", MISTAKES,
                         ids=[" ".join(m.values[0] if hasattr(m, "values") else m[0]) for m in MISTAKES])
def test_a_mistake_gets_one_line_a_status_and_leaves_nothing(argv, status, message, in_tmp, capsys):
    before = sorted(os.listdir(in_tmp))
    got, out, err = run(argv, capsys)
    command = argv[0] if argv[0] in ("train", "eval", "predict") else None
    assert got == status, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"tinypix {command}: " if command else "tinypix: ")
    assert message in err
    assert sorted(os.listdir(in_tmp)) == before  # no run folder, no predictions folder


def test_debug_shows_the_traceback(in_tmp):
    with pytest.raises(cli.CommandError, match="does not exist"):
        cli.main(["train", "--data", "/nonexistent", "--debug"])


def subcommands():
    top = cli.parser()
    action = next(a for a in top._actions if a.dest == "command")
    return top, action.choices


def test_every_option_has_help_and_shows_its_default():
    top, commands = subcommands()
    assert set(commands) == {"train", "eval", "predict"}
    for name, sub in commands.items():
        text = sub.format_help()
        for action in sub._actions:
            if action.dest == "help":
                continue
            assert action.help, f"tinypix {name} {action.option_strings}: no help text"
            if action.option_strings and action.default not in (None, False):
                shown = " ".join(sub._get_formatter()._format_action(action).split())  # unwrapped
                assert f"(default: {action.default})" in shown, \
                    f"tinypix {name} {action.option_strings[-1]}: default not shown"
        assert "--debug" in text and "-d DEVICE, --device DEVICE" in text
    train_help = commands["train"].format_help()
    assert "examples:" in train_help and "tinypix train -o runs/depth --resume" in train_help
    for short in ("-t TASK", "-m MODEL", "-e EPOCHS", "-b BATCH_SIZE", "-o FOLDER", "-q", "-r"):
        assert short in train_help


def test_version(capsys):
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"tinypix {tinypix.__version__}"


# -- stopping and resuming ---------------------------------------------------------------------
def weights(folder):
    state = tinypix.load(os.path.join(folder, "checkpoint.npz"))
    return state, {k: v.numpy() for k, v in state["model"].items()}


def assert_same_run(a, b):
    (sa, wa), (sb, wb) = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    assert sa["epoch"] == sb["epoch"]
    for ha, hb in zip(sa["history"], sb["history"]):
        assert {k: v for k, v in ha.items() if k != "seconds"} == {k: v for k, v in hb.items() if k != "seconds"}


def kill_self_on_call(monkeypatch, owner, name, call, signum=signal.SIGTERM):
    """Make the ``call``-th call of ``owner.name`` send ``signum`` to this process first."""
    original, calls = getattr(owner, name), []

    def wrapped(*args, **kwargs):
        calls.append(1)
        if len(calls) == call:
            os.kill(os.getpid(), signum)
        return original(*args, **kwargs)
    monkeypatch.setattr(owner, name, wrapped)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """Two epochs without a stop (the run every resumed one must equal)."""
    out = tmp_path_factory.mktemp("straight")
    assert cli.main(["train", *TINY, "--epochs", "2", "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_epoch_saves_and_resume_continues_bit_for_bit(signum, straight, tmp_path, monkeypatch,
                                                                   capsys):
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    out = str(tmp_path / "run")
    with monkeypatch.context() as m:
        kill_self_on_call(m, tinypix.optim.AdamW, "step", call=6, signum=signum)  # epoch 2, batch 2
        status, printed, _ = run(["train", *TINY, "--epochs", "2", "-o", out], capsys)
    assert status == 128 + signum
    assert "stopped in epoch 2 after batch 2 of 4; checkpoint saved" in printed
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    saved = tinypix.load(os.path.join(out, "checkpoint.npz"))
    assert (saved["epoch"], saved["batches_done"], len(saved["epoch_losses"])) == (1, 2, 2)
    status, printed, _ = run(["train", *TINY, "--epochs", "2", "-o", out, "--resume"], capsys)
    assert status == 0 and "resuming" in printed and "at epoch 2, batch 3" in printed
    assert_same_run(out, straight)


def test_resume_continues_the_global_random_draws(tmp_path, monkeypatch, capsys):
    """Draws from tinypix's generator during training (dropout masks, noise) continue on resume as
    in a run that never stopped: here each step's loss is scaled by a random factor."""
    original = tinypix.training.compute_loss

    def noisy_loss(*args):
        return original(*args) * (1 + tinypix.rand(1).item())
    monkeypatch.setattr(tinypix.training, "compute_loss", noisy_loss)
    argv = ["train", *TINY, "--epochs", "2", "-o"]
    assert run([*argv, str(tmp_path / "straight")], capsys)[0] == 0
    with monkeypatch.context() as m:
        kill_self_on_call(m, tinypix.optim.AdamW, "step", call=3)
        assert run([*argv, str(tmp_path / "run")], capsys)[0] == 128 + signal.SIGTERM
    assert run([*argv, str(tmp_path / "run"), "--resume"], capsys)[0] == 0
    assert_same_run(tmp_path / "run", tmp_path / "straight")


def test_one_epoch_then_resume_then_one_more_equals_two_straight(straight, tmp_path, monkeypatch, capsys):
    out = str(tmp_path / "run")
    with monkeypatch.context() as m:
        kill_self_on_call(m, tinypix.training, "evaluate", call=1)  # during epoch 1's evaluation
        status, printed, _ = run(["train", *TINY, "--epochs", "2", "-o", out], capsys)
    assert status == 128 + signal.SIGTERM and "SIGTERM: stopped after epoch 1;" in printed
    assert tinypix.load(os.path.join(out, "checkpoint.npz"))["epoch"] == 1
    assert run(["train", *TINY, "--epochs", "2", "-o", out, "--resume"], capsys)[0] == 0
    assert_same_run(out, straight)
    status, _, err = run(["train", *TINY, "--epochs", "2", "-o", out, "--resume"], capsys)
    assert status == 2 and "already has 2 epochs; ask for more with --epochs" in err


def test_kill_term_from_outside_then_resume_equals_a_straight_run(tmp_path):
    """The real thing: the command in its own process, SIGTERM from another, as a scheduler sends."""
    args = [*TINY, "--train-scenes", "48", "--epochs", "2"]
    command = [sys.executable, "-m", "tinypix.cli", "train", *[a for a in args if a != "-q"]]

    def train(out, *extra):
        return subprocess.run([*command, "-o", out, *extra], capture_output=True, text=True, timeout=300)

    out = str(tmp_path / "stopped")
    proc = subprocess.Popen([*command, "-o", out], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: proc.stderr.read(1), "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 240
    while "loss=" not in "".join(seen) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the progress bar shows a finished batch: training, with the handlers set
    proc.send_signal(signal.SIGTERM)
    printed, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, "".join(seen)
    assert "SIGTERM: stopped" in printed and "continue with --resume" in printed
    resumed = train(out, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    whole = train(str(tmp_path / "straight"))
    assert whole.returncode == 0, whole.stderr
    assert_same_run(out, str(tmp_path / "straight"))


# -- eval and predict ----------------------------------------------------------------------------
def test_eval_prints_the_held_out_metrics(straight, capsys):
    status, printed, _ = run(["eval", "-c", os.path.join(straight, "checkpoint.npz")], capsys)
    assert status == 0 and "held-out loss" in printed and "miou" in printed


def test_predict_keeps_inputs_with_one_name_apart(straight, in_tmp, capsys):
    from PIL import Image
    for folder, colour in (("a", 40), ("b", 200)):
        os.makedirs(folder)
        Image.fromarray(np.full((16, 16, 3), colour, np.uint8)).save(os.path.join(folder, "photo.png"))
    status, printed, _ = run(["predict", "a/photo.png", "b/photo.png", "-c",
                              os.path.join(straight, "checkpoint.npz"), "-o", "out"], capsys)
    assert status == 0, printed
    assert sorted(os.listdir("out")) == ["a_photo_segmentation.png", "b_photo_segmentation.png"]
    status, _, err = run(["predict", "notes.txt", "-c", os.path.join(straight, "checkpoint.npz")], capsys)
    assert status == 1 and "notes.txt: cannot be read as an image" in err and not os.path.exists("predictions")


def test_output_names():
    assert cli.output_names(["x/a.png", "y/b.jpg"], "depth") == ["a_depth.png", "b_depth.png"]
    assert cli.output_names(["p/q/a.png", "r/q/a.jpg"], "s") == ["p_q_a_s.png", "r_q_a_s.png"]
