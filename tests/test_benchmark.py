"Building the emoji benchmark (offline fixture, fake tarballs): codepoints, rendering, fetching, caching; no network."
import hashlib
import io
import json
import tarfile
import time

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from stylespace_lab import benchmark
from stylespace_lab.benchmark import (SETS, TARBALLS, build_benchmark, fetch_tarball, fixture_package, line_art,
                                      normalize_codepoints, render_svg, wrap_svg)
from stylespace_lab.data import load_set

FIXTURES = ['fixture-a', 'fixture-b', 'fixture-c']
pytestmark = pytest.mark.usefixtures('isolated_data')


def _tgz(path, files):
    with tarfile.open(path, 'w:gz') as tf:
        for name, obj in files.items():
            b = json.dumps(obj).encode(); ti = tarfile.TarInfo(f'package/{name}'); ti.size = len(b)
            tf.addfile(ti, io.BytesIO(b))
    return path


def _pin_fake_set(monkeypatch, tarball, name='fake-emoji', version='0.0.1'):
    "Register a set whose pinned tarball is `tarball` (sha256 as observed), as SETS/TARBALLS do for real sets."
    package = '@iconify-json/fake'
    monkeypatch.setitem(SETS, name, dict(kind='similar', package=package, version=version, licence='CC0-1.0',
                                         codepoints='chars', attribution='test'))
    monkeypatch.setitem(TARBALLS, f'{package}@{version}',
                        (hashlib.sha256(tarball.read_bytes()).hexdigest(), tarball.stat().st_size))
    return benchmark.tarball_name(package, version)


# --- rendering and codepoints -----------------------------------------------------------------

def test_render_tiny_svg():
    svg = ('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4" viewBox="0 0 4 4">'
           '<rect width="2" height="4" fill="#00f"/></svg>')
    img = render_svg(svg, size=4)
    assert img.shape == (4, 4, 3) and img.dtype == np.uint8
    assert img[:, :2].tolist() == [[[0, 0, 255]] * 2] * 4            # the rect
    assert (img[:, 2:] == 255).all()                                   # transparent -> white
    assert (render_svg(svg, 4, vflip=True) == img).all()
    assert (render_svg(svg, 4, hflip=True)[:, 2:] == [0, 0, 255]).all()
    wide = render_svg(wrap_svg('<rect width="20" height="10"/>', width=20, height=10, size=16), 16)
    assert (wide[:, 8, 0] < 128).sum() == 8                            # non-square viewBox centred, aspect kept
    with pytest.raises(ValueError, match='could not render SVG'): render_svg('<svg><g></svg>')


def test_normalize_codepoints():
    assert normalize_codepoints('1F600') == normalize_codepoints('U+1F600') == normalize_codepoints('😀') == '1f600'
    assert (normalize_codepoints('2764-FE0F') == normalize_codepoints('❤️') == normalize_codepoints([0x2764, 0xFE0F])
            == '2764')
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


# --- building, caching, bad packages ----------------------------------------------------------

def test_fixture_build_is_cached(tmp_path, monkeypatch):
    s1 = build_benchmark(FIXTURES, cache=tmp_path)
    assert s1.status.tolist() == ['built'] * 3 and s1.n_images.tolist() == [33, 29, 31]
    assert (tmp_path/'sets'/'fixture-a'/'manifest.json').is_file() and not list(tmp_path.rglob('*.tmp*'))
    a = load_set('fixture-a', 32, cache=tmp_path).images.copy()
    monkeypatch.setattr(benchmark, '_build_set', lambda *a, **k: pytest.fail('rebuilt a cached set'))
    t0 = time.time(); s2 = build_benchmark(FIXTURES, cache=tmp_path)
    assert time.time() - t0 < 2 and s2.status.tolist() == ['cached'] * 3
    assert (load_set('fixture-a', 32, cache=tmp_path).images == a).all()


def test_unknown_set_lists_valid_ones(tmp_path):
    for call in (lambda: load_set('noto-v3', cache=tmp_path), lambda: build_benchmark(['twemojii'], cache=tmp_path)):
        with pytest.raises(ValueError, match=r"unknown emoji set .*valid sets: noto, fluent-emoji-flat"): call()
    with pytest.raises(ValueError, match='power of two'):
        build_benchmark(['fixture-a'], resolutions=(32, 48), cache=tmp_path)


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
    with (pytest.warns(UserWarning, match='failed its sha256 check.*discarded'),
          pytest.raises(FileNotFoundError, match='npm')):
        fetch_tarball('@iconify-json/noto', '1.2.9', cache=tmp_path)
    assert not bad.exists()


def test_offline_build_from_local_tarball(tmp_path, monkeypatch):
    "The full real-set path (verify, read, codepoints, render, cache) on a fake package given as a local tarball."
    pkg = fixture_package('b')
    local = tmp_path/'downloads'; local.mkdir()
    tgz = _tgz(tmp_path/'x.tgz', {'icons.json': pkg['icons'], 'chars.json': pkg['chars'],
                                  'metadata.json': pkg['metadata']})
    fname = _pin_fake_set(monkeypatch, tgz)
    (local/fname).write_bytes(tgz.read_bytes())
    monkeypatch.setenv('STYLESPACE_LAB_TARBALLS', str(local))
    s = build_benchmark(['fake-emoji', 'fixture-a'], cache=tmp_path/'c')
    row = s.set_index('set').loc['fake-emoji']
    assert (row.status, row.n_images, row.n_codepoints) == ('built', 29, 29)
    assert np.isnan(row.paired_with_source)                                          # noto is not built here
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
    assert not (tmp_path/'c'/'tarballs'/fname).exists()
    assert not (tmp_path/'c'/'sets'/'fake-emoji'/'manifest.json').exists()


def test_not_an_iconify_package(tmp_path, monkeypatch):
    tgz = _tgz(tmp_path/'x.tgz', {'package.json': {'name': 'x'}})
    fname = _pin_fake_set(monkeypatch, tgz)
    local = tmp_path/'downloads'; local.mkdir(); (local/fname).write_bytes(tgz.read_bytes())
    with pytest.raises(ValueError, match='no package/icons.json'):
        build_benchmark(['fake-emoji'], cache=tmp_path/'c', tarballs=local)
