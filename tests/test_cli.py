import json
import subprocess
import sys


def test_console_script_info_lists_models():
    out = subprocess.run(
        [sys.executable, "-m", "gluon_inception.cli", "info", "--json"], capture_output=True, text=True, check=True
    ).stdout
    info = json.loads(out)
    assert info["mxnet"] == "1.9.1" and "googlenet" in info["models"]


def test_no_subcommand_prints_help_and_fails():
    proc = subprocess.run([sys.executable, "-m", "gluon_inception.cli"], capture_output=True, text=True)
    assert proc.returncode == 2 and "COMMAND" in proc.stdout
