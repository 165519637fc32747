"The StyleSpace explorer: bounded controls, the reference row, the strength in the caption, errors in the widget."
import io

import pytest
import torch
from PIL import Image

from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.stylespace import EXPLORER_MAX_SEED, explore, style_statistics

pytest.importorskip('ipywidgets')
pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


@pytest.fixture(scope='module')
def G(one_thread):
    torch.manual_seed(0)
    return Generator(GeneratorConfig(resolution=16, style_dim=16, n_mlp=1, channel_base=128, channel_max=16)).eval()


def parts(box):
    (layer, channel), (strength, seed) = box.children[0].children, box.children[1].children
    info, image = box.children[2:]
    return layer, channel, strength, seed, info, image


def test_reference_row_and_strength_in_the_caption(G):
    box = explore(G, style_statistics(G, n=64), n=3, scale=1)
    layer, channel, strength, seed, info, image = parts(box)
    strength.value = 7.
    assert Image.open(io.BytesIO(image.value)).size == (3 * 17 + 1, 2 * 17 + 1)   # two rows: unedited, edited
    assert 'top: unedited' in info.value and '+7σ' in info.value and '1σ =' in info.value


def test_every_control_is_bounded(G):
    box = explore(G, n=2, scale=1, max_strength=5.)
    layer, channel, strength, seed, info, image = parts(box)
    seed.value = 2 ** 64                                        # the value that overflowed before
    strength.value = 1e9
    channel.value = 10 ** 6
    assert (seed.value, strength.value, channel.value) == (EXPLORER_MAX_SEED, 5., channel.max)
    assert 'error' not in info.value and image.value[:4] == b'\x89PNG'
    bad_arguments = (dict(n=0), dict(n=100), dict(scale=0), dict(seed=-1), dict(seed=2 ** 64), dict(max_strength=1e999))
    for bad in bad_arguments:
        with pytest.raises(ValueError, match='must be'): explore(G, **bad)


def test_an_error_shows_in_the_widget_not_the_old_picture(G, monkeypatch):
    from stylespace_lab import stylespace
    box = explore(G, n=2, scale=1)
    layer, channel, strength, seed, info, image = parts(box)
    monkeypatch.setattr(stylespace, 'manipulate', lambda *a, **k: (_ for _ in ()).throw(RuntimeError('out of memory')))
    seed.value = 5
    assert image.value == b'' and 'error: out of memory' in info.value
    monkeypatch.undo()
    seed.value = 6
    assert image.value[:4] == b'\x89PNG' and 'seed 6' in info.value
