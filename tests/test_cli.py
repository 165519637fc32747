"The console entry point: every subcommand's --help shows an example; bad input exits 2 with a one-line reason."
import subprocess
import sys
from pathlib import Path

import pytest

from stylespace_lab.cli import EXAMPLES, main

COMMANDS = list(EXAMPLES)


@pytest.mark.parametrize('cmd', COMMANDS)
def test_help_shows_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e: main([cmd, '--help'])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert 'example:' in out and EXAMPLES[cmd] in out


def test_console_script_runs():
    script = Path(sys.executable).parent/'stylespace-lab'
    if not script.exists(): pytest.skip('package not installed with its console script (pip install -e .)')
    r = subprocess.run([str(script), '--help'], capture_output=True, text=True)
    assert r.returncode == 0 and 'build-data' in r.stdout
    r = subprocess.run([str(script), 'study', '--profile', 'laptop'], capture_output=True, text=True)
    assert r.returncode == 2 and 'valid profiles' in r.stderr


@pytest.mark.parametrize('argv,message', [
    (['sample', '--checkpoint', '/nonexistent/model.pt', '--out', 'x.png'], 'does not exist'),
    (['study', '--profile', 'laptop'], 'valid profiles'),
    (['build-data', '--sets', 'not-a-set'], 'not-a-set'),
    (['train', '--data', '/nonexistent/folder', '--profile', 'smoke', '--steps', '1'], 'nonexistent'),
])
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_unknown_command_is_an_argparse_error():
    with pytest.raises(SystemExit) as e: main(['frobnicate'])
    assert e.value.code == 2


def test_sample_writes_a_grid(tmp_path, capsys):
    import torch
    from stylespace_lab.checkpoints import save_checkpoint
    from stylespace_lab.generator import Generator
    torch.manual_seed(0)
    ck = save_checkpoint(tmp_path/'g.pt', G_ema=Generator.from_profile('smoke'))
    assert main(['sample', '--checkpoint', str(ck), '--out', str(tmp_path/'s.png'), '--n', '4', '--nrow', '2']) == 0
    assert (tmp_path/'s.png').exists()
