"""``--precision float32|float16|bfloat16|int8``: one word for train, evaluate and export; each command refuses
what it cannot do with one ``error:`` line naming the option, and exit status 2, before any work."""
import argparse

import pytest

from gluon_inception import cli
from gluon_inception.deploy import PRECISIONS
from tests.cli.test_main import _one_error_line, _run
from tests.support import cpus


def _refusal(capsys, argv):
    """Run ``gluon-inception ARGV`` in this process; its one stderr line (status 2 asserted)."""
    assert cli.main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --precision "), lines
    return lines[0]


def _choices(command):
    action = next(a for a in cli.build_parser(only=command)._subparsers._group_actions[0].choices[command]._actions
                  if "--precision" in a.option_strings)  # fmt: skip
    return tuple(action.choices), action.default


@pytest.mark.parametrize("command", ["train", "evaluate", "export"])
def test_every_command_takes_the_same_four_words(command):
    # train's flags have no argparse default: the recipe, then TrainConfig's float32, fill it in; evaluate's
    # default depends on what it runs: float32 for weights, the file's own precision for an exported --model
    default = {"train": argparse.SUPPRESS, "evaluate": None, "export": "float32"}[command]
    assert _choices(command) == (PRECISIONS, default)


# -- train -----------------------------------------------------------------------------------------
def test_train_refuses_int8_and_says_how_to_get_an_int8_model(tmp_path, capsys):
    line = _refusal(capsys, ["train", "--demo", "--precision", "int8", "--checkpoints", str(tmp_path)])
    assert line.startswith("error: --precision int8 is for inference:") and "export --precision int8" in line
    assert not list(tmp_path.iterdir()), "refused before the run wrote anything"


def test_train_refuses_float16_on_the_cpu(tmp_path, capsys):
    line = _refusal(capsys, ["train", "--demo", "--precision", "float16", "--checkpoints", str(tmp_path)])
    assert line.startswith("error: --precision float16 needs a GPU") and "--precision float32" in line


# -- evaluate --------------------------------------------------------------------------------------
def test_evaluate_refuses_float16_on_the_cpu_before_loading_anything(tmp_path, capsys):
    missing = str(tmp_path / "nope-0001.params")  # never read: the refusal comes first
    line = _refusal(capsys, ["evaluate", "--checkpoint", missing, "--rec", str(tmp_path / "x.rec"),
                             "--precision", "float16"])  # fmt: skip
    assert line.startswith("error: --precision float16 needs a GPU") and "bfloat16" in line and "int8" in line


def test_evaluate_refuses_bfloat16_on_a_cpu_without_native_bfloat16(tmp_path, capsys, monkeypatch):
    cpus.simulate(monkeypatch, cpus.AVX2_ONLY)
    line = _refusal(capsys, ["evaluate", "--checkpoint", str(tmp_path / "c.params"), "--rec", str(tmp_path / "x.rec"),
                             "--precision", "bfloat16"])  # fmt: skip
    assert line.startswith("error: --precision bfloat16 needs a CPU with AVX-512 BF16 or AMX-BF16")


def test_evaluate_int8_without_calibration_images_names_both_ways_to_give_them(tmp_path, capsys):
    line = _refusal(capsys, ["evaluate", "--pretrained", "--rec", str(tmp_path / "x.rec"), "--precision", "int8"])
    assert "--calib-data REC" in line and "--data ROOT with a train split" in line


def test_console_script_refusal_is_one_line_and_exit_2(tmp_path):
    proc = _run("evaluate", "--pretrained", "--rec", str(tmp_path / "x.rec"), "--precision", "float16")
    assert _one_error_line(proc, 2).startswith("error: --precision float16 needs a GPU")


# -- export ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, why", [
    ("float16", "no float16 CPU kernels"),
    ("bfloat16", "does not load back"),
])  # fmt: skip
def test_export_refuses_float16_and_bfloat16_with_the_reason_and_what_to_do(tmp_path, capsys, name, why):
    line = _refusal(capsys, ["export", "--pretrained", "--precision", name, "-o", str(tmp_path / "m")])
    assert line.startswith("error: --precision %s: export writes float32 or int8 only" % name) and why in line
    assert "gluon_inception.deploy.convert(net, '%s'" % name in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("fmt,output", [("mxnet", "m"), ("onnx", "m.onnx"), ("openvino", "m.xml")])
def test_export_int8_needs_calibration_images_in_every_format(tmp_path, capsys, fmt, output):
    line = _refusal(capsys, ["export", "--pretrained", "--precision", "int8", "--format", fmt,
                             "-o", str(tmp_path / output)])  # fmt: skip
    assert line.startswith("error: --precision int8 needs --calib-data REC")
    assert not list(tmp_path.iterdir())


MINIMAL = {"train": ["--demo"], "evaluate": ["--pretrained", "x", "--rec", "x.rec"],
           "export": ["--pretrained", "x", "-o", "m"]}


@pytest.mark.parametrize("command", sorted(MINIMAL))
def test_the_old_words_are_gone(command, capsys):
    parser = cli.build_parser(only=command)
    parser.parse_args([command, *MINIMAL[command]])  # the minimal command line is valid
    for old in (["--dtype", "float16"], ["--int8"]):
        with pytest.raises(SystemExit) as caught:
            parser.parse_args([command, *MINIMAL[command], *old])
        assert caught.value.code == 2
        assert "unrecognized arguments: %s" % " ".join(old) in capsys.readouterr().err
