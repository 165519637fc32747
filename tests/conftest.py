"Fixtures shared by the test modules."
import pytest
import torch


@pytest.fixture(scope='module')
def one_thread():
    "Tiny networks: on a shared 2-core box, intra-op threads only add spin-waiting (60 ms vs 0.7 ms per conv)."
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
