"""How a run reports progress: a live bar on a terminal, plain lines anywhere else."""

import re
import sys

from gluon_inception.deploy.metrics import topk_label
from gluon_inception.training.logs import RunLog


def test_off_a_terminal_each_update_is_one_plain_line_with_step_figures_and_eta(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    log = RunLog(tmp_path, "run")
    try:
        bar = log.bar(10, "epoch 1/3")
        for _ in range(2):
            bar.set_postfix_str("loss 1.2345 top-1 40.0% lr 0.001 12 img/s")
            bar.update(5)
        bar.close()
    finally:
        log.close()
    captured = capsys.readouterr()
    assert "\r" not in captured.out + captured.err and captured.err == ""
    lines = captured.out.splitlines()
    assert len(lines) == 2
    expected = r"epoch 1/3  step 5/10 \(50%\)  loss 1\.2345 top-1 40\.0% lr 0\.001 12 img/s  ETA \d:\d\d:\d\d"
    assert re.fullmatch(expected, lines[0]), lines[0]
    assert lines[1].startswith("epoch 1/3  step 10/10 (100%)") and lines[1].endswith("ETA 0:00:00")
    assert (tmp_path / "run.log").read_text().count("step ") == 2, "the lines are in the human log too"


def test_on_a_terminal_it_is_a_tqdm_bar(tmp_path, monkeypatch):
    from tqdm import tqdm

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    log = RunLog(tmp_path, "run")
    bar = log.bar(3, "epoch 1/1")
    try:
        assert isinstance(bar, tqdm)
    finally:
        bar.close()
        log.close()


def test_topk_is_labelled_with_its_k():
    assert [topk_label(c) for c in (1000, 10, 5, 4, 2)] == ["top-5", "top-5", "top-5", "top-4", "top-2"]
