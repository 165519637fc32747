"The emoji benchmark (on the offline fixture and fake tarballs), user image folders, few-shot splits and DiffAugment; no network."
import hashlib
import io
import json
import tarfile
import time
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from PIL import Image

from stylespace_lab import data
from stylespace_lab.data import (SETS, TARBALLS, EmojiDataset, EmojiSet, ImageFolder, build_benchmark, diff_augment,
                                 domain_distance_table, few_shot, fetch_tarball, fixture_package, line_art, load_images,
                                 load_set, normalize_codepoints, paired_index, render_svg, wrap_svg)

FIXTURES = ['fixture-a', 'fixture-b', 'fixture-c']


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    "No test sees the user's cache, tarball folder or npm; bars are quiet."
    monkeypatch.setenv('STYLESPACE_LAB_PATHS_DATA_CACHE', str(tmp_path/'default-cache'))
    monkeypatch.delenv('STYLESPACE_LAB_TARBALLS', raising=False)
    monkeypatch.setenv('STYLESPACE_LAB_QUIET', '1')
    monkeypatch.setattr(data.shutil, 'which', lambda name, *a, **k: None)   # npm is "missing" unless a test says otherwise


@pytest.fixture(scope='module')
def cache(tmp_path_factory):
    "One fixture build shared by the read-only tests."
    c = tmp_path_factory.mktemp('emoji-cache')
    build_benchmark(FIXTURES, cache=c)
    return c


def _tgz(path, files):
    with tarfile.open(path, 'w:gz') as tf:
        for name, obj in files.items():
            b = json.dumps(obj).encode(); ti = tarfile.TarInfo(f'package/{name}'); ti.size = len(b); tf.addfile(ti, io.BytesIO(b))
    return path


def _pin_fake_set(monkeypatch, tarball, name='fake-emoji', version='0.0.1'):
    "Register a set whose pinned tarball is `tarball` (sha256 as observed), as SETS/TARBALLS do for real sets."
    package = '@iconify-json/fake'
    monkeypatch.setitem(SETS, name, dict(kind='similar', package=package, version=version, licence='CC0-1.0', codepoints='chars', attribution='test'))
    monkeypatch.setitem(TARBALLS, f'{package}@{version}', (hashlib.sha256(tarball.read_bytes()).hexdigest(), tarball.stat().st_size))
    return data.tarball_name(package, version)


# --- rendering and codepoints -------------------------------------------------------------------

def test_render_tiny_svg():
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4" viewBox="0 0 4 4"><rect width="2" height="4" fill="#00f"/></svg>'
    img = render_svg(svg, size=4)
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    assert img[:, :2].tolist() == [[[0, 0, 255]] * 2] * 4            # the rect
    assert (img[:, 2:] == 255).all()                                   # transparent -> white
    assert (render_svg(svg, 4, vflip=True) == img).all() and (render_svg(svg, 4, hflip=True)[:, 2:] == [0, 0, 255]).all()
    wide = render_svg(wrap_svg('<rect width="20" height="10"/>', width=20, height=10, size=16), 16)
    assert (wide[:, 8, 0] < 128).sum() == 8                            # non-square viewBox centred, aspect kept
    with pytest.raises(ValueError, match='could not render SVG'): render_svg('<svg><g></svg>')


def test_normalize_codepoints():
    assert normalize_codepoints('1F600') == normalize_codepoints('U+1F600') == normalize_codepoints('😀') == '1f600'
    assert normalize_codepoints('2764-FE0F') == normalize_codepoints('❤️') == normalize_codepoints([0x2764, 0xFE0F]) == '2764'
    assert normalize_codepoints('1f468_200d_1f469') == '1f468-200d-1f469'
    assert normalize_codepoints('23 fe0f 20e3') == '0023-20e3'
    with pytest.raises(ValueError, match='outside Unicode'): normalize_codepoints('fffffff')
    with pytest.raises(TypeError): normalize_codepoints(3.0)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 0x10FFFF), min_size=1, max_size=6))
def test_normalize_codepoints_is_idempotent(cps):
    n = normalize_codepoints(cps)
    assert normalize_codepoints(n) == n and 'fe0f' not in n.split('-') and n == n.lower()


def test_line_art_keeps_black_only():
    out = line_art('<circle r="3" fill="#fcea2b"/><path d="M0 0h4" fill="none" stroke="#000"/><path d="M1 1h1"/>'
                   '<g fill="#abc"><rect width="1" height="1"/></g><path d="M0 0h1" fill="#f00" stroke="#000"/>')
    assert 'fcea2b' not in out and '<rect' not in out and '#abc' not in out
    assert out.count('<path') == 3 and 'fill="none" stroke="#000"' in out


# --- building, caching, bad packages ---------------------------------------------------------------

def test_fixture_build_is_cached(tmp_path, monkeypatch):
    s1 = build_benchmark(FIXTURES, cache=tmp_path)
    assert s1.status.tolist() == ['built'] * 3 and s1.n_images.tolist() == [33, 29, 31]
    assert (tmp_path/'sets'/'fixture-a'/'manifest.json').is_file() and not list(tmp_path.rglob('*.tmp'))
    a = load_set('fixture-a', 32, cache=tmp_path).images.copy()
    monkeypatch.setattr(data, '_build_set', lambda *a, **k: pytest.fail('rebuilt a cached set'))
    t0 = time.time(); s2 = build_benchmark(FIXTURES, cache=tmp_path)
    assert time.time() - t0 < 2 and s2.status.tolist() == ['cached'] * 3
    assert (load_set('fixture-a', 32, cache=tmp_path).images == a).all()


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


def test_unknown_set_lists_valid_ones(tmp_path):
    for call in (lambda: load_set('noto-v3', cache=tmp_path), lambda: build_benchmark(['twemojii'], cache=tmp_path)):
        with pytest.raises(ValueError, match=r"unknown emoji set .*valid sets: noto, fluent-emoji-flat"): call()
    with pytest.raises(ValueError, match='power of two'): build_benchmark(['fixture-a'], resolutions=(32, 48), cache=tmp_path)


def test_npm_missing_says_how_to_proceed(tmp_path):
    with pytest.raises(FileNotFoundError, match='npm') as e: build_benchmark(['circle-flags'], cache=tmp_path)
    msg = str(e.value)
    assert 'tarballs=' in msg and 'STYLESPACE_LAB_TARBALLS' in msg and 'iconify-json-circle-flags-1.2.11.tgz' in msg
    assert not (tmp_path/'sets'/'circle-flags'/'manifest.json').exists()


def test_checksum_mismatch_discards_entry(tmp_path):
    local = tmp_path/'downloads'; local.mkdir()
    (local/'iconify-json-twemoji-1.2.5.tgz').write_bytes(b'\x1f\x8b truncated')
    with pytest.raises(ValueError, match='does not match the pinned .*cache entry was discarded'):
        fetch_tarball('@iconify-json/twemoji', '1.2.5', cache=tmp_path/'c', tarballs=local)
    assert list((tmp_path/'c'/'tarballs').iterdir()) == []
    with pytest.raises(FileNotFoundError, match='not a folder'):
        fetch_tarball('@iconify-json/twemoji', '1.2.5', cache=tmp_path/'c', tarballs=tmp_path/'nowhere')


def test_corrupt_cached_tarball_is_discarded_and_refetched(tmp_path):
    (tmp_path/'tarballs').mkdir()
    bad = tmp_path/'tarballs'/'iconify-json-noto-1.2.9.tgz'; bad.write_bytes(b'junk')
    with pytest.warns(UserWarning, match='failed its sha256 check.*discarded'), pytest.raises(FileNotFoundError, match='npm'):
        fetch_tarball('@iconify-json/noto', '1.2.9', cache=tmp_path)
    assert not bad.exists()


def test_offline_build_from_local_tarball(tmp_path, monkeypatch):
    "The full real-set path (verify, read, codepoints, render, cache) on a fake package given as a local tarball."
    pkg = fixture_package('b')
    local = tmp_path/'downloads'; local.mkdir()
    tgz = _tgz(tmp_path/'x.tgz', {'icons.json': pkg['icons'], 'chars.json': pkg['chars'], 'metadata.json': pkg['metadata']})
    fname = _pin_fake_set(monkeypatch, tgz)
    (local/fname).write_bytes(tgz.read_bytes())
    monkeypatch.setenv('STYLESPACE_LAB_TARBALLS', str(local))
    s = build_benchmark(['fake-emoji', 'fixture-a'], cache=tmp_path/'c')
    row = s.set_index('set').loc['fake-emoji']
    assert (row.status, row.n_images, row.n_codepoints) == ('built', 29, 29) and np.isnan(row.paired_with_source)   # noto is not built here
    assert (tmp_path/'c'/'tarballs'/fname).is_file()
    fake, b = load_set('fake-emoji', 32, cache=tmp_path/'c'), load_set('fixture-b', 32, cache=tmp_path/'c')
    assert (fake.images == b.images).all() and (fake.meta.codepoints == b.meta.codepoints).all()


def test_truncated_tarball_with_valid_checksum_is_discarded(tmp_path, monkeypatch):
    tgz = _tgz(tmp_path/'x.tgz', {'icons.json': fixture_package('a')['icons']})
    tgz.write_bytes(tgz.read_bytes()[:100])                             # truncated, and pinned as such
    local = tmp_path/'downloads'; local.mkdir()
    fname = _pin_fake_set(monkeypatch, tgz)
    (local/fname).write_bytes(tgz.read_bytes())
    with pytest.raises(ValueError, match='corrupt or truncated.*cache entry .* was discarded'):
        build_benchmark(['fake-emoji'], cache=tmp_path/'c', tarballs=local)
    assert not (tmp_path/'c'/'tarballs'/fname).exists() and not (tmp_path/'c'/'sets'/'fake-emoji'/'manifest.json').exists()


def test_not_an_iconify_package(tmp_path, monkeypatch):
    tgz = _tgz(tmp_path/'x.tgz', {'package.json': {'name': 'x'}})
    fname = _pin_fake_set(monkeypatch, tgz)
    local = tmp_path/'downloads'; local.mkdir(); (local/fname).write_bytes(tgz.read_bytes())
    with pytest.raises(ValueError, match='no package/icons.json'): build_benchmark(['fake-emoji'], cache=tmp_path/'c', tarballs=local)


def test_corrupt_cached_images_are_rebuilt(tmp_path):
    build_benchmark(['fixture-c'], cache=tmp_path)
    f = tmp_path/'sets'/'fixture-c'/'images_32.npz'
    f.write_bytes(f.read_bytes()[:500])
    with pytest.warns(UserWarning, match='corrupt.*rebuilding'):
        s = load_set('fixture-c', 32, cache=tmp_path)
    assert s.images.shape == (31, 32, 32, 3)


# --- pairs, distances, datasets -----------------------------------------------------------------

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


def test_emoji_dataset_filters(cache):
    ds = EmojiDataset('fixture-a', 32, categories=['Flags', 'Travel & Places'], cache=cache)
    assert len(ds) == 3 and set(ds.meta.icon) == {'chequered-flag', 'star', 'sun'}
    x = ds[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    assert len(EmojiDataset('fixture-a', 32, codepoints=['U+1F600', '2764-fe0f'], cache=cache)) == 2
    with pytest.raises(ValueError, match='no glyph for codepoints'): EmojiDataset('fixture-b', 32, codepoints=['1f610'], cache=cache)
    with pytest.raises(ValueError, match='unknown categories'): EmojiDataset('fixture-a', 32, categories='People', cache=cache)


# --- user image folders ---------------------------------------------------------------------------

def _write_folder(folder):
    folder.mkdir()
    rgba = np.zeros((30, 30, 4), np.uint8); rgba[..., 1] = 200; rgba[:15, :, 3] = 255          # top opaque green, bottom transparent
    Image.fromarray(rgba, 'RGBA').save(folder/'1_rgba.png')
    Image.fromarray(np.full((33, 33), 77, np.uint8), 'L').save(folder/'2_gray.png')
    pal = Image.fromarray(np.full((16, 16, 3), (255, 0, 0), np.uint8)).convert('P')
    pal.save(folder/'3_palette.png')
    pal_t = Image.new('P', (16, 16), 0); pal_t.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal_t.save(folder/'4_palette_transparent.png', transparency=0)                            # index 0 transparent -> white
    Image.fromarray(np.full((40, 40, 3), (10, 120, 250), np.uint8)).save(folder/'5.jpeg', quality=98)
    Image.fromarray(np.full((100, 100, 3), (250, 200, 10), np.uint8)).save(folder/'6.webp', lossless=True)
    wide = np.zeros((20, 60, 3), np.uint8); wide[:, 25:35] = 255                               # white centre, black sides
    Image.fromarray(wide).save(folder/'7_wide.png')
    return folder


def test_image_folder_conversions(tmp_path):
    f = ImageFolder(_write_folder(tmp_path/'imgs'), 8, cache=tmp_path/'c')
    assert len(f) == 7 and f.images.dtype == torch.uint8 and f.tensor().shape == (7, 3, 8, 8)
    u = f.images.permute(0, 2, 3, 1).numpy().astype(int)
    assert (np.abs(u[0, :3] - [0, 200, 0]) <= 2).all() and (u[0, -3:] >= 253).all()      # RGBA composited on white
    assert (np.abs(u[1] - 77) <= 1).all()                                                  # grayscale -> RGB, mixed sizes
    assert (u[2] == [255, 0, 0]).all() and (u[3] == 255).all()                              # palette; palette transparency
    assert (np.abs(u[4] - [10, 120, 250]) <= 3).all() and (u[5] == [250, 200, 10]).all()  # JPEG, WebP
    assert (u[6, :, 3:5] > 200).all() and (u[6, :, 0] < 60).all() and (u[6, :, 7] < 60).all()   # centre crop of a wide image
    assert f.meta['mode'].tolist() == ['RGBA', 'L', 'P', 'P', 'RGB', 'RGB', 'RGB']
    assert f.meta[['width', 'height']].values.tolist()[-1] == [60, 20]
    assert -1 <= f[0].min() and f[0].max() <= 1


def test_image_folder_bad_input(tmp_path):
    folder = _write_folder(tmp_path/'imgs')
    with pytest.raises(ValueError, match=r'7_wide.png is not square \(60x20\)'): ImageFolder(folder, 8, center_crop=False, cache=False)
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
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder/'0_new.png')                 # a changed folder is re-read
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
    with pytest.raises(ValueError, match=r'expected values in \[-1, 1\]'): load_images(torch.full((1, 3, 8, 8), 255.), 8)
    with pytest.raises(ValueError, match='expected images'): load_images(torch.zeros(2, 4, 8, 8), 8)
    with pytest.raises(FileNotFoundError, match='neither an existing folder nor an emoji set'): load_images(tmp_path/'nope', 8)
    with pytest.raises(TypeError): load_images(42, 8)


# --- DiffAugment ----------------------------------------------------------------------------------

def test_diff_augment_shape_range_and_grad():
    x = (torch.rand(16, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    g = lambda s: torch.Generator().manual_seed(s)
    assert torch.equal(diff_augment(x, generator=g(0)), y)
    ones = torch.ones(32, 3, 16, 16)
    t = diff_augment(ones, 'translation', generator=g(1))
    assert set(t.unique().tolist()) == {0.0, 1.0} and (t == 0).any()                  # shifts with zero padding only
    c = diff_augment(ones, 'cutout', generator=g(2))
    frac = (c == 0).float().mean((1, 2, 3))
    assert ((frac > 0) & (frac <= 0.25 + 1e-6)).all()                                 # a square of at most half the side
    col = diff_augment(torch.zeros(64, 3, 4, 4), 'color', generator=g(3))
    assert col.abs().max() <= 0.5 * 2 * 1.5 + 1e-6                                     # brightness +-0.5, then x[0,2] sat, x[0.5,1.5] contrast
    assert diff_augment(x, p=0) is x
    some = diff_augment(ones, 'cutout', p=0.3, generator=g(4))
    assert 0 < (some == 0).flatten(1).any(1).float().mean() < 0.7
    with pytest.raises(ValueError, match='unknown DiffAugment policy'): diff_augment(x, 'colour')
    with pytest.raises(ValueError, match='p must be in'): diff_augment(x, p=1.5)
