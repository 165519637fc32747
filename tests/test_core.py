"Settings precedence, profiles, and the repository's settings.ini staying in step with the package defaults."
import configparser
from pathlib import Path

import pytest
import torch

from stylespace_lab.core import DEFAULT_SETTINGS, get_path, get_profile, image_grid, load_settings, save_grid

REPO = Path(__file__).resolve().parents[1]


def test_repo_settings_match_package_defaults():
    repo, pkg = configparser.ConfigParser(inline_comment_prefixes=('#',)), configparser.ConfigParser(inline_comment_prefixes=('#',))
    repo.read(REPO/'settings.ini'); pkg.read_string(DEFAULT_SETTINGS)
    assert {s: dict(repo[s]) for s in repo.sections()} == {s: dict(pkg[s]) for s in pkg.sections()}


def test_every_profile_has_the_same_keys():
    keys = [set(get_profile(p).values) for p in ('smoke', 'cpu', 'gpu')]
    assert keys[0] == keys[1] == keys[2]


def test_precedence(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('STYLESPACE_LAB_SETTINGS', raising=False)
    monkeypatch.delenv('STYLESPACE_LAB_PROFILE', raising=False)
    assert get_profile().name == 'cpu'                                 # package default
    (tmp_path/'settings.ini').write_text('[lab]\ndefault_profile = smoke\n[cpu]\nbatch_size = 5\n')
    assert get_profile().name == 'smoke'                               # working-directory file
    assert get_profile('cpu').batch_size == 5
    other = tmp_path/'other.ini'; other.write_text('[cpu]\nbatch_size = 6\n')
    monkeypatch.setenv('STYLESPACE_LAB_SETTINGS', str(other))
    assert get_profile('cpu').batch_size == 6                          # named file beats ./settings.ini
    monkeypatch.setenv('STYLESPACE_LAB_CPU_BATCH_SIZE', '7')
    assert get_profile('cpu').batch_size == 7                          # environment beats files
    assert get_profile('cpu', batch_size=8).batch_size == 8            # argument beats everything
    monkeypatch.setenv('STYLESPACE_LAB_PROFILE', 'gpu')
    assert get_profile().name == 'gpu'
    monkeypatch.setenv('STYLESPACE_LAB_PATHS_FIGURES', str(tmp_path/'figs'))
    assert get_path('figures') == tmp_path/'figs'


def test_bad_settings(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match='valid profiles: smoke, cpu, gpu'): get_profile('fast')
    monkeypatch.setenv('STYLESPACE_LAB_SETTINGS', str(tmp_path/'missing.ini'))
    with pytest.raises(FileNotFoundError, match='missing.ini'): load_settings()
    bad = tmp_path/'bad.ini'; bad.write_text('no section header\n')
    with pytest.raises(ValueError, match='could not parse'): load_settings(bad)


def test_grid_writes_png(tmp_path):
    p = save_grid(torch.rand(6, 3, 8, 8) * 2 - 1, tmp_path/'sub'/'g.png', nrow=3)
    assert p.exists()
    assert image_grid(torch.zeros(6, 3, 8, 8), nrow=3, pad=2).size == (3 * 10 + 2, 2 * 10 + 2)


def test_settings_found_from_a_subfolder_and_paths_relative_to_it(tmp_path, monkeypatch):
    monkeypatch.delenv('STYLESPACE_LAB_SETTINGS', raising=False)
    (tmp_path/'settings.ini').write_text('[paths]\nfigures = figs\n')
    (tmp_path/'nbs').mkdir()
    monkeypatch.chdir(tmp_path/'nbs')
    assert get_path('figures') == (tmp_path/'figs').resolve()


def test_foreign_settings_ini_is_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv('STYLESPACE_LAB_SETTINGS', raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path/'settings.ini').write_text('[DEFAULT]\nlib_name = other_project\n')
    assert get_profile('cpu').batch_size == 16
    assert 'lib_name' not in get_profile('cpu').values


def test_smoke_figures_go_to_a_temporary_folder():
    from stylespace_lab.core import figures_dir
    assert figures_dir('smoke') != get_path('figures')
