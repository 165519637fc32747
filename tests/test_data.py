"Serving the benchmark (offline fixture): sets, pairs, distances, few-shot splits, user image folders; no network."
import io
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from stylespace_lab.benchmark import build_benchmark
from stylespace_lab.data import (EmojiDataset, EmojiSet, ImageFolder, domain_distance_table, few_shot, load_images,
                                 load_set, nested_splits, paired_index)

FIXTURES = ['fixture-a', 'fixture-b', 'fixture-c']
pytestmark = pytest.mark.usefixtures('isolated_data')


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    "One fixture build shared by the read-only tests."
    c = tmp_path_factory.mktemp('emoji-cache')
    build_benchmark(FIXTURES, cache=c)
    return c


# --- sets -------------------------------------------------------------------------------------

def test_default_cache_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv('STYLESPACE_LAB_PATHS_DATA_CACHE', str(tmp_path/'env-cache'))
    s = load_set('fixture-b', 16)
    assert (tmp_path/'env-cache'/'sets'/'fixture-b'/'images_16.npz').is_file()
    assert s.images.shape == (29, 16, 16, 3) and s.tensor().shape == (29, 3, 16, 16)
    assert -1 <= s.tensor().min() and s.tensor().max() <= 1


def test_emoji_set_meta(cache):
    s = load_set('fixture-a', 32, cache=cache)
    assert isinstance(s, EmojiSet) and len(s) == 33 and s.name == 'fixture-a'
    assert list(s.meta.columns) == ['set', 'icon', 'codepoints', 'base', 'category', 'licence']
    row = s.meta.set_index('icon').loc['sun']
    assert row.codepoints == '2600' and row.category == 'Travel & Places' and row.licence == 'CC0-1.0'
    assert s.meta.set_index('icon').loc['right-arrow', 'codepoints'] == '27a1'     # the hFlip alias is its own glyph
    left, right = s.images[s.index_of(['2b05', '27a1'])]
    assert np.abs(left[:, ::-1].astype(int) - right).mean() < 1
    s64 = load_set('fixture-a', 64, cache=cache).images
    assert np.abs(s64.reshape(33, 32, 2, 32, 2, 3).mean((2, 4)) - s.images).max() <= 0.5   # 32 = 2x2 average of 64


def test_corrupt_cached_images_are_rebuilt(tmp_path):
    build_benchmark(['fixture-c'], cache=tmp_path)
    f = tmp_path/'sets'/'fixture-c'/'images_32.npz'
    f.write_bytes(f.read_bytes()[:500])
    with pytest.warns(UserWarning, match='corrupt.*rebuilding'):
        s = load_set('fixture-c', 32, cache=tmp_path)
    assert s.images.shape == (31, 32, 32, 3)


# --- pairs, distances, datasets ---------------------------------------------------------------

def test_paired_index(cache):
    a, b = load_set('fixture-a', 32, cache=cache), load_set('fixture-b', 32, cache=cache)
    p = paired_index(a, b)
    assert len(p) == 29 and list(p.columns) == ['codepoints', 'icon_a', 'icon_b', 'idx_a', 'idx_b', 'category']
    assert (a.meta.codepoints.to_numpy()[p.idx_a] == b.meta.codepoints.to_numpy()[p.idx_b]).all()
    assert 'neutral-face' not in set(p.icon_a) and p.idx_a.is_monotonic_increasing
    assert len(paired_index('fixture-a', 'fixture-c', cache=cache)) == 31


def test_domain_distance_table(cache):
    sets = [load_set(n, 32, cache=cache) for n in FIXTURES]
    d = domain_distance_table(sets, features=lambda x: x.flatten(1)[:, :10])
    assert list(d.columns) == ['set_a', 'set_b', 'kind_b', 'n_pairs', 'pixel_l1', 'pixel_l1_unpaired', 'feature_dist']
    assert d.n_pairs.tolist() == [29, 31, 27] and (d.pixel_l1 < d.pixel_l1_unpaired).all()
    same = domain_distance_table([sets[0], sets[0].subset(slice(None))])
    assert same.pixel_l1[0] == 0


def test_few_shot_reproducible(cache):
    s = load_set('fixture-a', 32, cache=cache)
    t1, h1 = few_shot(s, 10, seed=3)
    t2, _ = few_shot(s, 10, seed=3)
    assert (t1.indices == t2.indices).all() and len(h1) == 23 and not set(t1.indices) & set(h1.indices)
    assert set(few_shot(s, 5, seed=3)[0].indices) <= set(t1.indices)
    assert not (few_shot(s, 10, seed=4)[0].indices == t1.indices).all()
    assert [len(few_shot(s, n)[0]) for n in (1, 5, 10, 'all')] == [1, 5, 10, 33]
    assert (few_shot('fixture-a', 10, seed=3, cache=cache)[0].tensor() == t1.tensor()).all()
    assert (load_images(s, 32, n=10, seed=3) == t1.tensor()).all()
    with pytest.raises(ValueError, match='only 33 images'): few_shot(s, 100)
    with pytest.raises(ValueError, match="positive int or 'all'"): few_shot(s, -1)
    with pytest.raises(ValueError, match='only 20 images'): few_shot(s, 21, categories='Smileys & Emotion')



@pytest.mark.parametrize('seed', [0, 5])
def test_nested_splits_fix_the_test_images(cache, seed):
    s = load_set('fixture-a', 32, cache=cache)
    splits = {n: nested_splits(s, n, test_of=4, seed=seed) for n in (1, 4, 9, 16)}
    tests = {tuple(t.indices) for _, _, t in splits.values()}
    assert len(tests) == 1 and len(next(iter(tests))) == 15    # 29 held out: 14 join the pool, 15 are the test
    for a, b in ((1, 4), (4, 9), (9, 16)): assert set(splits[a][0].indices) < set(splits[b][0].indices)
    for n, (shots, val, test) in splits.items():
        assert len(shots) == n and len(shots) + len(val) + len(test) == 33
        assert not (set(shots.indices) | set(val.indices)) & set(test.indices)
    with pytest.raises(ValueError, match=r'1\.\.16'): nested_splits(s, 17, test_of=4)
    with pytest.raises(ValueError, match='must be an int'): nested_splits(s, 0, test_of=4)


def test_emoji_dataset_filters(cache):
    ds = EmojiDataset('fixture-a', 32, categories=['Flags', 'Travel & Places'], cache=cache)
    assert len(ds) == 3 and set(ds.meta.icon) == {'chequered-flag', 'star', 'sun'}
    x = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert len(EmojiDataset('fixture-a', 32, codepoints=['U+1F600', '2764-fe0f'], cache=cache)) == 2
    with pytest.raises(ValueError, match='no glyph for codepoints'):
        EmojiDataset('fixture-b', 32, codepoints=['1f610'], cache=cache)
    with pytest.raises(ValueError, match='unknown categories'):
        EmojiDataset('fixture-a', 32, categories='People', cache=cache)


# --- user image folders -----------------------------------------------------------------------

def _write_folder(folder):
    folder.mkdir()
    rgba = np.zeros((30, 30, 4), np.uint8); rgba[..., 1] = 200; rgba[:15, :, 3] = 255   # top opaque green, bottom clear
    Image.fromarray(rgba, 'RGBA').save(folder/'1_rgba.png')
    Image.fromarray(np.full((33, 33), 77, np.uint8), 'L').save(folder/'2_gray.png')
    pal = Image.fromarray(np.full((16, 16, 3), (255, 0, 0), np.uint8)).convert('P')
    pal.save(folder/'3_palette.png')
    pal_t = Image.new('P', (16, 16), 0); pal_t.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal_t.save(folder/'4_palette_transparent.png', transparency=0)                     # index 0 transparent -> white
    Image.fromarray(np.full((40, 40, 3), (10, 120, 250), np.uint8)).save(folder/'5.jpeg', quality=98)
    Image.fromarray(np.full((100, 100, 3), (250, 200, 10), np.uint8)).save(folder/'6.webp', lossless=True)
    wide = np.zeros((20, 60, 3), np.uint8); wide[:, 25:35] = 255                        # white centre, black sides
    Image.fromarray(wide).save(folder/'7_wide.png')
    return folder


def test_image_folder_conversions(tmp_path):
    f = ImageFolder(_write_folder(tmp_path/'imgs'), 8, cache=tmp_path/'c')
    assert len(f) == 7 and f.images.dtype == torch.uint8 and f.tensor().shape == (7, 3, 8, 8)
    u = f.images.permute(0, 2, 3, 1).numpy().astype(int)
    assert (np.abs(u[0, :3] - [0, 200, 0]) <= 2).all() and (u[0, -3:] >= 253).all()      # RGBA composited on white
    assert (np.abs(u[1] - 77) <= 1).all()                                                 # grayscale -> RGB, any size
    assert (u[2] == [255, 0, 0]).all() and (u[3] == 255).all()                            # palette; its transparency
    assert (np.abs(u[4] - [10, 120, 250]) <= 3).all() and (u[5] == [250, 200, 10]).all()  # JPEG, WebP
    assert (u[6, :, 3:5] > 200).all() and (u[6, :, 0] < 60).all() and (u[6, :, 7] < 60).all()   # centre of a wide one
    assert f.meta['mode'].tolist() == ['RGBA', 'L', 'P', 'P', 'RGB', 'RGB', 'RGB']
    assert f.meta[['width', 'height']].values.tolist()[-1] == [60, 20]
    assert -1 <= f[0].min() and f[0].max() <= 1


def test_image_folder_bad_input(tmp_path):
    folder = _write_folder(tmp_path/'imgs')
    with pytest.raises(ValueError, match=r'7_wide.png is not square \(60x20\)'):
        ImageFolder(folder, 8, center_crop=False, cache=False)
    (folder/'8_corrupt.png').write_bytes(b'\x89PNG\r\n\x1a\n garbage')
    truncated = io.BytesIO(); Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 9).save(truncated, 'PNG')
    (folder/'9_truncated.png').write_bytes(truncated.getvalue()[:60])
    with pytest.warns(UserWarning, match=r'skipped 2 unreadable.*8_corrupt.png.*9_truncated.png'):
        f = ImageFolder(folder, 8, cache=False)
    assert len(f) == 7 and len(f.skipped) == 2
    bad = tmp_path/'bad'; bad.mkdir(); (bad/'x.jpg').write_bytes(b'no'); (bad/'y.webp').write_bytes(b'')
    with pytest.raises(ValueError, match='none of the 2 image files'), warnings.catch_warnings():
        warnings.simplefilter('ignore'); ImageFolder(bad, 8, cache=False)
    empty = tmp_path/'empty'; empty.mkdir()
    with pytest.raises(ValueError, match='no images in .*empty'): ImageFolder(empty, 8)
    (empty/'readme.txt').write_text('x')
    with pytest.raises(ValueError, match='found 1 other file'): ImageFolder(empty, 8)
    with pytest.raises(FileNotFoundError, match='does not exist'): ImageFolder(tmp_path/'missing', 8)
    with pytest.raises(NotADirectoryError): ImageFolder(folder/'5.jpeg', 8)
    with pytest.raises(ValueError, match='power of two'): ImageFolder(folder, 12)
    with pytest.raises(ValueError, match='only 7 images'), warnings.catch_warnings():
        warnings.simplefilter('ignore'); load_images(folder, 8, n=10, cache=False)


def test_image_folder_cache(tmp_path):
    folder = _write_folder(tmp_path/'imgs')
    a = ImageFolder(folder, 8, cache=tmp_path/'c')
    b = ImageFolder(folder, 8, cache=tmp_path/'c')
    assert not a.from_cache and b.from_cache and torch.equal(a.images, b.images)
    assert len(list((tmp_path/'c'/'folders').glob('*.pt'))) == 1
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder/'0_new.png')        # a changed folder is re-read
    c = ImageFolder(folder, 8, cache=tmp_path/'c')
    assert not c.from_cache and len(c) == 8


def test_load_images_sources(tmp_path, cache):
    s = load_set('fixture-a', 32, cache=cache)
    assert load_images(s, 16).shape == (33, 3, 16, 16)
    assert load_images('fixture-a', 32, n=5, cache=cache).shape == (5, 3, 32, 32)
    assert torch.equal(load_images(s.images, 32), s.tensor())
    assert load_images(torch.zeros(3, 64, 64), 32).shape == (1, 3, 32, 32)
    assert load_images(torch.zeros(2, 1, 8, 8), 8).shape == (2, 3, 8, 8)
    assert load_images(_write_folder(tmp_path/'imgs'), 4, cache=False).shape == (7, 3, 4, 4)
    with pytest.raises(ValueError, match=r'expected values in \[-1, 1\]'):
        load_images(torch.full((1, 3, 8, 8), 255.), 8)
    with pytest.raises(ValueError, match='expected images'): load_images(torch.zeros(2, 4, 8, 8), 8)
    with pytest.raises(FileNotFoundError, match='neither an existing folder nor an emoji set'):
        load_images(tmp_path/'nope', 8)
    with pytest.raises(TypeError): load_images(42, 8)
