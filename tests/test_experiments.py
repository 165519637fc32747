"The results store and grid runner (a Dask local cluster gives the rows the in-process run gives), and evaluation on cases with known answers."
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from stylespace_lab.data import few_shot, load_set, paired_index
from stylespace_lab.experiments import (GridIncomplete, ResultsStore, cell_bootstrap, evaluate, hierarchical_bootstrap, make_grid,
                                       run_grid, verdict, verdict_with_stability)
from stylespace_lab.features import RandomCNNFeatures, train_emoji_encoder


def grid():
    return make_grid(['fixture-b'], ['stylespace', 'affine_plus'], shots=(5,), source='smoke', n_eval=32, steps=2,
                     batch_size=4, seeds=(0, 1))


def store(root: Path) -> ResultsStore:
    return ResultsStore(root, large_deltas=root/'large')


def test_dask_cluster_equals_local(tmp_path, one_thread):
    distributed = pytest.importorskip('distributed')
    ext = RandomCNNFeatures(seed=0)
    local = run_grid(grid(), store(tmp_path/'local'), extractor=ext, show_progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        remote = run_grid(grid(), store(tmp_path/'dask'), extractor=ext, show_progress=False, executor=client.get_executor())
    assert list(remote.status) == ['ok'] * 4
    assert remote.key.tolist() == local.key.tolist()
    assert remote.fid.tolist() == pytest.approx(local.fid.tolist(), rel=1e-6)   # other processes: equal to float rounding
    assert all(store(tmp_path/'dask').delta_path(k).exists() for k in remote.key)   # the driver wrote the workers' deltas


def test_recompute_runs_everything_again(tmp_path, one_thread, monkeypatch):
    ext = RandomCNNFeatures(seed=0)
    first = run_grid(grid()[:1], store(tmp_path), extractor=ext, show_progress=False)
    again = run_grid(grid()[:1], store(tmp_path), extractor=ext, show_progress=False)
    assert again.created.tolist() == first.created.tolist()
    monkeypatch.setenv('STYLESPACE_LAB_RECOMPUTE', '1')
    redone = run_grid(grid()[:1], store(tmp_path), extractor=ext, show_progress=False)
    assert redone.created.tolist() != first.created.tolist() and redone.fid.tolist() == first.fid.tolist()


class ImagesAsGenerator(torch.nn.Module):
    "A stand-in generator that draws given images (latent i -> image i mod N): evaluation cases with known answers."
    style_layout = ()
    def __init__(self, images: torch.Tensor):
        super().__init__()
        self.images, self.resolution = images, images.shape[-1]
    def sample_z(self, n, seed=0, device=None): return torch.arange(n, dtype=torch.float32)[:, None]
    def forward(self, z, psi=1., noise=None): return self.images[z[:, 0].long() % len(self.images)]


@pytest.fixture(scope='module')
def fixture_encoder():
    torch.manual_seed(0)
    enc, _ = train_emoji_encoder(['fixture-a', 'fixture-b'], epochs=60, batch_size=16, lr=1e-2, show_progress=False)
    return enc.eval()


def test_three_views_on_cases_with_known_answers(fixture_encoder, one_thread):
    "Source draws fixture-a; target fixture-b draws the same glyphs in another style."
    a, b = load_set('fixture-a'), load_set('fixture-b')
    pairs = paired_index(a, b)
    src = ImagesAsGenerator(a.tensor(pairs.idx_a.to_numpy()))
    swapped = ImagesAsGenerator(b.tensor(pairs.idx_b.to_numpy()))   # the same glyphs, latent for latent, in b's style
    cps = dict(source_codepoints=list(a.meta.codepoints), target_codepoints=list(b.meta.codepoints))
    shots, heldout = few_shot('fixture-b', 5, seed=0)
    run = lambda G: evaluate(src, G, shots, heldout, fixture_encoder, n=len(pairs), n_correspondence=len(pairs),
                             target_set='fixture-b', **cps)
    same, style_swap = run(src), run(swapped)
    # identical to the source: no gap closed on fit or style, all content kept
    assert same['fit_gap_closed'] == 0 and same['style_gap_closed'] == 0 and same['content_gap_closed'] == 1
    # a style-swapped copy: the target's style, most of the gap closed, the content kept better than by chance
    assert style_swap['style_prob'] > 0.5 > same['style_prob']
    assert (same['style_top'], style_swap['style_top']) == ('fixture-a', 'fixture-b')
    assert style_swap['style_gap_closed'] > 0.5 and style_swap['fit_gap_closed'] > 0.5
    assert style_swap['correspondence_top1'] > style_swap['correspondence_shuffled_top1']
    # the target's images, but each latent draws another glyph than the source did: style kept, content lost
    other = run(ImagesAsGenerator(b.tensor(np.roll(pairs.idx_b.to_numpy(), 7))))
    assert other['style_gap_closed'] > 0.5 and other['content_gap_closed'] < 0.3 < style_swap['content_gap_closed']


def test_hierarchical_bootstrap_bad_input_and_seeded():
    df = pd.DataFrame(dict(target=['a', 'a', 'b', 'b'], p=['x', 'y', 'x', 'y'], v=[1., 2., 3., 5.]))
    with pytest.raises(ValueError, match='no target has rows of both'):
        hierarchical_bootstrap(df, 'v', 'p', 'x', 'z')
    with pytest.raises(ValueError, match='level'): hierarchical_bootstrap(df, 'v', 'p', 'y', 'x', level=1.5)
    r = hierarchical_bootstrap(df, 'v', 'p', 'y', 'x')
    assert r == hierarchical_bootstrap(df, 'v', 'p', 'y', 'x') and r['diff'] == 1.5   # seeded; mean of (1, 2)
    with pytest.raises(ValueError, match='margin'): verdict(0., 1., margin=0)


def test_verdict_with_stability_skips_units_that_empty_an_arm_and_flags_a_flip():
    # the baseline has seeds 0-2, the treatment only seed 0: leaving seed 0 out leaves nothing to compare
    df = pd.DataFrame(dict(target='a', p=['x'] * 3 + ['y'], seed=[0, 1, 2, 0], v=[0., 0., 0., 0.05]))
    r = verdict_with_stability(df, 'v', 'p', 'y', 'x', margin=0.1)
    assert (r['verdict'], r['stable'], r['n_left_out']) == ('as good as', True, 2)
    # two seeds that disagree: "inconclusive" with both, "as good as" or "better" with either one left out
    two = pd.DataFrame(dict(target='a', p=['x', 'x', 'y', 'y'], seed=[0, 1, 0, 1], v=[0., 0., 0.05, 0.5]))
    flip = verdict_with_stability(two, 'v', 'p', 'y', 'x', margin=0.1)
    assert flip['verdict'] == 'inconclusive' and not flip['stable']
    with pytest.raises(ValueError, match='margin'): verdict_with_stability(df, 'v', 'p', 'y', 'x', margin=0)


def test_grid_time_limit_keeps_finished_runs_and_continues(tmp_path, one_thread, monkeypatch):
    ext = RandomCNNFeatures(seed=0)
    with pytest.raises(GridIncomplete, match='2 of 2 runs are not in the store') as e:
        run_grid(grid()[:2], store(tmp_path), extractor=ext, show_progress=False, max_minutes=0)
    assert (e.value.left, e.value.total) == (2, 2) and store(tmp_path).keys() == []
    monkeypatch.setenv('STYLESPACE_LAB_GRID_MINUTES', '60')
    full = run_grid(grid()[:2], store(tmp_path), extractor=ext, show_progress=False)
    assert list(full.status) == ['ok', 'ok']
    monkeypatch.setenv('STYLESPACE_LAB_GRID_MINUTES', 'soon')
    with pytest.raises(ValueError, match='number of minutes'):
        run_grid(grid()[:2], store(tmp_path), extractor=ext, show_progress=False)


def test_keep_deltas_moves_them_beside_the_rows_and_recomputes_lost_ones(tmp_path, one_thread):
    ext = RandomCNNFeatures(seed=0)
    st = ResultsStore(tmp_path/'store', max_delta_bytes=1, large_deltas=tmp_path/'large')   # every delta is "large"
    first = run_grid(grid()[:1], st, extractor=ext, show_progress=False)
    key = first.key.iloc[0]
    assert (tmp_path/'large'/f'{key}.delta.pt').exists() and not (tmp_path/'store'/'deltas').exists()
    kept = run_grid(grid()[:1], st, extractor=ext, show_progress=False, keep_deltas=True)
    assert kept.created.tolist() == first.created.tolist()                  # moved, not recomputed
    assert (tmp_path/'store'/'deltas'/f'{key}.delta.pt').exists() and not (tmp_path/'large'/f'{key}.delta.pt').exists()
    (tmp_path/'store'/'deltas'/f'{key}.delta.pt').unlink()                  # a clone without the delta
    again = run_grid(grid()[:1], st, extractor=ext, show_progress=False, keep_deltas=True)
    assert again.created.iloc[0] != first.created.iloc[0] and st.delta_path(key).exists()
    assert again.fid.iloc[0] == pytest.approx(first.fid.iloc[0], rel=1e-6)


def test_fixed_test_runs_of_several_sizes_share_the_test_images(tmp_path, one_thread):
    ext = RandomCNNFeatures(seed=0)
    sizes = lambda **kw: make_grid(['fixture-b'], ['stylespace'], shots=(2, 5), source='smoke', n_eval=16, steps=1,
                                   batch_size=2, **kw)
    fixed, own = sizes(fixed_test=5), sizes()
    assert 'fixed_test' not in own[0].to_dict() and fixed[0].to_dict()['fixed_test'] == 5   # older keys unchanged
    df = run_grid(fixed + own, store(tmp_path), extractor=ext, show_progress=False)
    assert list(df.status) == ['ok'] * 4
    # the source's KID against the test images depends on the test images only: one value for the fixed split
    assert df.kid_source.iloc[:2].nunique() == 1 and df.kid_source.iloc[2:].nunique() == 2


def test_cell_bootstrap_bad_input_seeded_and_drops_undefined_resamples():
    df = pd.DataFrame(dict(c=[0, 0, 1, 1, 2, 2], v=[1., 2., 3., 4., 5., 6.]))
    mean = lambda m: m.mean()
    with pytest.raises(ValueError, match='outer'): cell_bootstrap(df, ['c'], 'v', mean, outer='seed')
    with pytest.raises(ValueError, match='level'): cell_bootstrap(df, ['c'], 'v', mean, level=1.)
    with pytest.raises(ValueError, match="no rows with a 'v'"): cell_bootstrap(df.assign(v=np.nan), ['c'], 'v', mean)
    a, b = (cell_bootstrap(df, ['c'], 'v', mean, outer='c', n_boot=200, seed=3) for _ in range(2))
    assert a == b and a['value'] == 3.5 and a['lo'] < 3.5 < a['hi']
    # a statistic undefined on some resamples (a candidate drawn for every slot): those are dropped, not NaN
    distinct = lambda m: m.mean() if m.index.get_level_values('c').nunique() > 1 else float('nan')
    assert np.isfinite(list(cell_bootstrap(df, ['c'], 'v', distinct, outer='c', n_boot=200).values())).all()


def test_sweep_goes_one_step_beyond_a_best_rate_at_an_end():
    from stylespace_lab.experiments import chosen_learning_rates, extension_runs, protocol, sweep_lr
    rows = lambda p, gaps: [dict(status='ok', parameterization=p, lr=sweep_lr(p, f), target=t, val_kid_start=1.,
                                 val_kid_best=1 - g) for f, g in zip(protocol('smoke')['lr_factors'], gaps)
                            for t in ('fixture-b', 'fixture-c')]
    sweep = pd.DataFrame(rows('full', [0.1, 0.5, 0.3]) + rows('stylespace', [0.1, 0.2, 0.3])
                         + rows('affine_plus', [0.4, 0.2, 0.1]))
    chosen = chosen_learning_rates(sweep)
    assert chosen.edge.to_dict() == {'affine_plus': 'low', 'full': '', 'stylespace': 'high'}
    assert (chosen.n_rates == 3).all() and chosen.loc['full', 'val_gap_closed'] == pytest.approx(0.5)
    more = extension_runs(chosen, 'smoke', source='smoke')
    step = protocol('smoke')['lr_factors'][-1] / protocol('smoke')['lr_factors'][-2]
    assert sorted((r.adapt.parameterization, r.adapt.lr, r.target) for r in more) == sorted(
        [('stylespace', sweep_lr('stylespace', 2 * step), t) for t in ('fixture-b', 'fixture-c')]
        + [('affine_plus', sweep_lr('affine_plus', 0.5 / step), t) for t in ('fixture-b', 'fixture-c')])


def test_grid_device_and_workers_come_from_the_settings(tmp_path, one_thread, monkeypatch):
    ext = RandomCNNFeatures(seed=0)
    monkeypatch.setenv('STYLESPACE_LAB_GRID_DEVICE', 'cpu')
    monkeypatch.setenv('STYLESPACE_LAB_GRID_WORKERS', '1')
    df = run_grid(grid()[:1], store(tmp_path), extractor=ext, show_progress=False, workers=8)
    assert list(df.device) == ['cpu'] and list(df.status) == ['ok']
    monkeypatch.setenv('STYLESPACE_LAB_GRID_WORKERS', 'many')
    with pytest.raises(ValueError, match='GRID_WORKERS must be an integer'):
        run_grid(grid()[1:2], store(tmp_path), extractor=ext, show_progress=False)
