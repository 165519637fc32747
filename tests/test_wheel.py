"""The installed wheel, used from a folder outside the repository: the committed models ship inside the package,
names like `noto32` resolve to them, and `sample` and `evaluate` run. The wheel is built from a copy of the working
tree (no build files in the checkout) and installed into a fresh venv that borrows this venv's dependencies (torch
and the rest: offline, and no CUDA build of torch)."""
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODELS = ('smileys32.pt', 'noto32.pt', 'emoji_encoder.pt')


def sha256(data: bytes) -> str: return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope='module')
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp/'src'
    # links are followed: the assets become the files they point at, as in a build from a checkout
    shutil.copytree(REPO/'stylespace_lab', src/'stylespace_lab', ignore=shutil.ignore_patterns('__pycache__'))
    for name in ('pyproject.toml', 'README.md'): shutil.copy(REPO/name, src/name)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation', '--no-index', '-q',
                    '-w', str(tmp/'dist'), str(src)], check=True, capture_output=True)
    return next((tmp/'dist').glob('stylespace_lab-*.whl'))


@pytest.fixture(scope='module')
def installed(wheel, tmp_path_factory):
    "`run(*args)`: the installed `stylespace-lab` run in a folder outside the repository."
    tmp = tmp_path_factory.mktemp('installed')
    env_dir = tmp/'venv'
    venv.create(env_dir, with_pip=True)
    bin_dir = env_dir/('Scripts' if os.name == 'nt' else 'bin')
    subprocess.run([str(bin_dir/'python'), '-m', 'pip', 'install', '--no-deps', '--no-index', '-q', str(wheel)],
                   check=True, capture_output=True)
    site = subprocess.run([str(bin_dir/'python'), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                          check=True, capture_output=True, text=True).stdout.strip()
    # this venv's packages, after the wheel's own (a plain path: its .pth files, the editable install, are not read)
    Path(site, 'borrowed_dependencies.pth').write_text(sysconfig.get_paths()['purelib'] + '\n')
    outside = tmp/'elsewhere'; outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith('STYLESPACE_LAB_')}
    env.update(HOME=str(tmp/'home'), STYLESPACE_LAB_QUIET='1', OMP_NUM_THREADS='1')
    def run(*args):
        return subprocess.run([str(bin_dir/args[0]), *map(str, args[1:])], cwd=outside, env=env, capture_output=True,
                              text=True, timeout=600)
    run.folder = outside
    return run


def test_the_wheel_ships_the_committed_models(wheel):
    with zipfile.ZipFile(wheel) as z:
        for name in MODELS:
            assert sha256(z.read(f'stylespace_lab/assets/{name}')) == sha256((REPO/'checkpoints'/name).read_bytes())


def test_the_installed_package_is_the_wheel(installed):
    r = installed('python', '-c', 'import stylespace_lab; print(stylespace_lab.__file__)')
    assert r.returncode == 0 and str(REPO) not in r.stdout and 'site-packages' in r.stdout, r.stderr


def test_sample_and_evaluate_by_name_from_outside_the_repository(installed):
    r = installed('stylespace-lab', 'sample', 'noto32', '--n', '4', '--nrow', '2', '--out', 'samples.png')
    assert r.returncode == 0 and (installed.folder/'samples.png').stat().st_size > 0, r.stderr
    import numpy as np
    from PIL import Image
    imgs = installed.folder/'imgs'; imgs.mkdir()
    for i in range(8):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(imgs/f'{i}.png')
    r = installed('stylespace-lab', 'evaluate', '--source', 'noto32', '--target', 'imgs', '--n', 16, '--json', 'm.json')
    assert r.returncode == 0 and 'fid' in r.stdout and 'emoji-encoder' in r.stdout, r.stderr
    r = installed('stylespace-lab', 'sample', 'noto64', '--out', 'x.png')
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'noto32' in r.stderr
