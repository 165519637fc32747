"Fixtures shared by the test modules."
import pytest
import torch


@pytest.fixture(scope='module')
def one_thread():
    "Tiny networks: on a shared 2-core box, intra-op threads only add spin-waiting (60 ms vs 0.7 ms per conv)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def isolated_data(monkeypatch, tmp_path):
    "No test sees the user's data cache, tarball folder or npm; bars are quiet (`pytestmark` of the data tests)."
    from stylespace_lab import benchmark
    monkeypatch.setenv('STYLESPACE_LAB_PATHS_DATA_CACHE', str(tmp_path/'default-cache'))
    monkeypatch.delenv('STYLESPACE_LAB_TARBALLS', raising=False)
    monkeypatch.setenv('STYLESPACE_LAB_QUIET', '1')
    monkeypatch.setattr(benchmark.shutil, 'which', lambda name, *a, **k: None)   # no npm, unless a test says otherwise
