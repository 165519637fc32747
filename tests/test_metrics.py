"Metrics: FID/KID/PRDC against references and hand-computable cases, cached statistics, correspondence, bad input."
import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings, strategies as st

from stylespace_lab.features import EmojiEncoder, RandomCNNFeatures
from stylespace_lab.metrics import (KID, FIDInfinity, FeatureStats, correspondence, cross_domain_correspondence,
                                    memorisation, nearest_neighbours, pixel_modes,
                                    degrade, diversity, fid_from_features, fid_from_stats, fid_infinity,
                                    intra_cluster_diversity, kid, knn_radii, prdc, recall_of_target, sqrtm_psd)


def fid_scipy(a, b):
    "The usual pytorch-fid formula with scipy.linalg.sqrtm."
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


# ---------------------------------------------------------------- FID
@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('dim', [2, 16, 64])
def test_fid_matches_scipy(seed, dim):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(4 * dim + 50, dim)) @ rng.normal(size=(dim, dim))
    b = rng.normal(size=(3 * dim + 40, dim)) @ rng.normal(size=(dim, dim)) * 0.7 + rng.normal(size=dim)
    ref = fid_scipy(a, b)
    assert fid_from_features(a, b) == pytest.approx(ref, rel=1e-6, abs=1e-6)


def test_fid_closed_form_gaussians():
    # diagonal covariances: |mu1-mu2|^2 + sum (sqrt(a)-sqrt(b))^2
    mu1, mu2 = np.array([0., 1., 2., -1.]), np.array([1., 1., 0., 0.])
    a, b = np.array([1., 4., 9., 0.25]), np.array([4., 1., 1., 0.25])
    expect = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert fid_from_stats(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expect, abs=1e-12)
    # general covariances commuting through a shared rotation: same closed form in the eigenbasis
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(4, 4)))
    got = fid_from_stats(q @ mu1, q @ np.diag(a) @ q.T, q @ mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expect, abs=1e-9)


def test_fid_of_samples_converges_to_closed_form():
    rng = np.random.default_rng(1)
    n, d = 200_000, 3
    a = rng.normal(size=(n, d)) * np.sqrt([1., 4., 9.])
    b = rng.normal(size=(n, d)) * np.sqrt([4., 1., 1.]) + [1., 0., 0.]
    assert fid_from_features(a, b) == pytest.approx(1 + 1 + 1 + 4, rel=0.01)


def test_fid_singular_covariance_is_finite():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(10, 32)), rng.normal(size=(12, 32))    # fewer samples than dims: rank-deficient
    v = fid_from_features(a, b)
    assert np.isfinite(v) and v > 0
    assert fid_from_features(a, a) == pytest.approx(0, abs=1e-8)


def test_sqrtm_psd():
    rng = np.random.default_rng(0)
    m = rng.normal(size=(6, 6)); s = m @ m.T
    r = sqrtm_psd(s)
    np.testing.assert_allclose(r @ r, s, atol=1e-10)
    np.testing.assert_allclose(r, r.T)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8))
def test_fid_symmetric_nonnegative(seed, dim):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(20, dim)), rng.normal(size=(25, dim)) * 2 + 1
    f_ab, f_ba = fid_from_features(a, b), fid_from_features(b, a)
    assert f_ab >= 0 and f_ab == pytest.approx(f_ba, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------- FeatureStats
def test_feature_stats_roundtrip_and_refusal(tmp_path):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(40, 4)) + 1
    sa = FeatureStats.from_features(a, 'random-cnn:seed0')
    p = sa.save(tmp_path / 'a.npz')
    sl = FeatureStats.load(p, 'random-cnn:seed0')
    np.testing.assert_allclose(sl.sigma, sa.sigma); assert sl.n == 50
    assert sl.fid(FeatureStats.from_features(b, 'random-cnn:seed0')) == pytest.approx(fid_from_features(a, b))
    with pytest.raises(ValueError, match='computed with extractor'):
        FeatureStats.load(p, 'emoji-encoder:abc')
    with pytest.raises(ValueError, match='computed with extractor'):
        sl.fid(FeatureStats.from_features(b, 'inception-fid:xyz'))
    with pytest.raises(ValueError, match='computed with extractor'):
        FeatureStats.load(p, RandomCNNFeatures(seed=1))
    (tmp_path / 'junk.npz').write_bytes(b'junk')
    with pytest.raises(ValueError, match='not a FeatureStats file'):
        FeatureStats.load(tmp_path / 'junk.npz')


# ---------------------------------------------------------------- KID
def test_kid_hand_computed():
    # k(x,y) = (xy + 1)^3 in 1-D: within x: k(0,1)=1; within y: k(1,2)=27; cross: 1,1,8,27 -> 28 - 18.5
    r = kid([[0.], [1.]], [[1.], [2.]], n_subsets=4)
    assert isinstance(r, KID) and r.mean == pytest.approx(9.5) and r.std == pytest.approx(0)


def test_kid_matches_naive_and_is_seeded():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(30, 5)), rng.normal(size=(30, 5)) + 0.5

    def naive(x, y):
        m, d = len(x), x.shape[1]
        k = lambda u, v: (u @ v / d + 1) ** 3
        sxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
        syy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
        sxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
        return sxx / (m * (m - 1)) + syy / (m * (m - 1)) - 2 * sxy / m ** 2

    # subset_size == N: every subset is a permutation of the full sets, so the estimate is exact
    assert kid(a, b, n_subsets=3, subset_size=30).mean == pytest.approx(naive(a, b), rel=1e-10)
    assert kid(a, b, n_subsets=5, subset_size=10, seed=3) == kid(a, b, n_subsets=5, subset_size=10, seed=3)
    assert kid(a, b, n_subsets=5, subset_size=10, seed=3) != kid(a, b, n_subsets=5, subset_size=10, seed=4)


def test_kid_same_distribution_near_zero():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    r = kid(a, b, n_subsets=20, subset_size=200)
    assert abs(r.mean) < 3 * r.std + 1e-3


# ---------------------------------------------------------------- FID infinity
def test_fid_infinity_full_size_point_is_plain_fid_and_seeded():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(120, 6)), rng.normal(size=(90, 6)) * 1.5 + 1
    r = fid_infinity(a, b, ns=[30, 60, 90], n_draws=2, seed=5)
    assert isinstance(r, FIDInfinity) and r.table.n.tolist() == [30, 60, 90]
    assert np.isfinite(r.value) and r.slope > 0
    assert fid_infinity(a, b, ns=[30, 60, 90], n_draws=2, seed=5).value == r.value
    assert fid_infinity(a, b, ns=[30, 60, 90], n_draws=2, seed=6).value != r.value
    # the fitted line passes through the mean of the measured points (least squares with an intercept)
    assert np.mean(r.value + r.slope / r.table.n) == pytest.approx(r.table.fid.mean(), rel=1e-9)


def test_fid_infinity_two_sizes_give_the_line_through_both():
    # at n == the size of both sets every draw is a permutation, so that point is the plain FID; with two sizes
    # the fit is the line through the two points, and its intercept follows by hand
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(50, 4)), rng.normal(size=(50, 4)) + 0.3
    r = fid_infinity(a, b, ns=[50, 50, 25], n_draws=1)
    assert r.table.n.tolist() == [25, 50]
    f25, f50 = r.table.fid
    assert f50 == pytest.approx(fid_from_features(a, b), rel=1e-9)
    k = (f25 - f50) / (1 / 25 - 1 / 50)
    assert (r.slope, r.value) == pytest.approx((k, f50 - k / 50), rel=1e-6)


@pytest.mark.parametrize('kwargs, match', [
    (dict(ns=[10]), 'at least 2 distinct'),
    (dict(ns=[1, 10]), r'\[2, 40\]'),
    (dict(ns=[10, 41]), r'\[2, 40\]'),
    (dict(n_draws=0), 'n_draws'),
])
def test_fid_infinity_bad_input(kwargs, match):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        fid_infinity(rng.normal(size=(40, 3)), rng.normal(size=(60, 3)), **kwargs)
    with pytest.raises(ValueError, match='dimension'):
        fid_infinity(rng.normal(size=(40, 3)), rng.normal(size=(40, 4)))


# ---------------------------------------------------------------- PRDC
def test_prdc_hand_computed():
    r = prdc([[0.], [1.], [10.]], [[0.5], [20.], [21.]], k=1)
    assert r == pytest.approx({'precision': 1 / 3, 'recall': 1.0, 'density': 2 / 3, 'coverage': 2 / 3})


def test_knn_radii_excludes_self():
    np.testing.assert_allclose(knn_radii(np.array([[0.], [1.], [3.], [7.]]), k=1), [1, 1, 2, 4])
    np.testing.assert_allclose(knn_radii(np.array([[0.], [1.], [3.], [7.]]), k=2), [3, 2, 3, 6])


def test_prdc_identical_and_disjoint():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 4))
    same = prdc(a, a + 1e-9, k=5)
    assert same['precision'] == 1 and same['recall'] == 1 and same['coverage'] == 1
    far = prdc(a, a + 100, k=5)
    assert far == {'precision': 0.0, 'recall': 0.0, 'density': 0.0, 'coverage': 0.0}


def test_prdc_reference_implementation():
    "Against a direct transcription of Naeem et al.'s reference `prdc` code (sklearn-free)."
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(120, 6)), rng.normal(size=(90, 6)) * 1.3 + 0.2
    k = 3
    d = lambda x, y: np.sqrt(((x[:, None] - y[None]) ** 2).sum(-1))
    rr = np.partition(d(real, real), k, axis=1)[:, k]
    fr = np.partition(d(fake, fake), k, axis=1)[:, k]
    drf = d(real, fake)
    ref = dict(precision=(drf < rr[:, None]).any(0).mean(), recall=(drf < fr[None]).any(1).mean(),
               density=(1 / k) * (drf < rr[:, None]).sum(0).mean(), coverage=(drf.min(1) < rr).mean())
    assert prdc(real, fake, k=k) == pytest.approx(ref)
    assert recall_of_target(real, fake, k=k) == pytest.approx(ref['recall'])


# ---------------------------------------------------------------- diversity, correspondence
def test_diversity_hand_computed():
    sq = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    assert diversity(sq) == pytest.approx((4 + 2 * np.sqrt(2)) / 6)
    assert intra_cluster_diversity(sq, [[0., 0.5], [1., 0.5]]) == pytest.approx(1.0)
    assert intra_cluster_diversity(np.repeat(sq, 3, 0), sq) == 0.0
    with pytest.raises(ValueError, match='no cluster'):
        intra_cluster_diversity(sq, sq)


def test_correspondence():
    tl = torch.tensor([[5., 1, 0, 0, 0, 0], [0, 5, 4, 3, 2, 1], [1, 2, 3, 4, 5, 6]])
    assert correspondence([0, 2, 0], tl) == {'top1': 1 / 3, 'top5': 2 / 3, 'n': 3}
    assert correspondence(tl, tl)['top1'] == 1.0
    with pytest.raises(ValueError, match='must lie in'):
        correspondence([0, 7, 0], tl)
    with pytest.raises(ValueError, match='NaN'):
        correspondence([0, 1, 0], tl * float('nan'))


def test_cross_domain_correspondence_restricts_to_set_codepoints():
    torch.manual_seed(0)
    enc = EmojiEncoder(['a', 'b', 'c', 'd'], ['s', 't']).eval()
    # a head that reads the class off the first feature channels: force known logits via a hook on heads
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    out = cross_domain_correspondence(enc, x, x, ['a', 'b', 'c', 'd'], ['a', 'b', 'c', 'd'])
    assert out['top1'] == 1.0 and out['n'] == 8          # same images, same codepoints: perfect agreement
    out = cross_domain_correspondence(enc, x, x, ['a', 'b', 'zz'], ['c', 'd'])
    assert out['top1'] == 0.0 and out['n_comparable'] == 0 and out['chance_top1'] == 0.5
    with pytest.raises(ValueError, match='none of the target codepoints'):
        cross_domain_correspondence(enc, x, x, ['a'], ['zz'])
    with pytest.raises(ValueError, match='same latents'):
        cross_domain_correspondence(enc, x, x[:4], ['a'], ['a'])


# ---------------------------------------------------------------- bad input to the maths
@pytest.mark.parametrize('fn', [fid_from_features, lambda a, b: kid(a, b, n_subsets=2), lambda a, b: prdc(a, b, k=1)])
def test_bad_features(fn):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(10, 4)), rng.normal(size=(10, 4))
    with pytest.raises(ValueError, match='at least 2 samples'):
        fn(a[:1], b)
    with pytest.raises(ValueError, match='dimensions differ'):
        fn(a, b[:, :3])
    bn = b.copy(); bn[3, 1] = np.nan
    with pytest.raises(ValueError, match='NaN'):
        fn(a, bn)
    with pytest.raises(ValueError, match='2-D'):
        fn(a[:, 0], b)


def test_fid_from_stats_bad_input():
    with pytest.raises(ValueError, match='dimensions differ'):
        fid_from_stats(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match='covariance must be'):
        fid_from_stats(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match='not symmetric'):
        fid_from_stats(np.zeros(2), np.array([[1., 2.], [0., 1.]]), np.zeros(2), np.eye(2))


def test_diversity_needs_two():
    with pytest.raises(ValueError, match='at least 2 samples'):
        diversity(np.ones((1, 3)))


@pytest.mark.parametrize('kind', ['blur', 'noise', 'colour', 'jpeg', 'swap', 'modes'])
def test_degrade_never_touches_its_input_and_stays_in_range(kind):
    x = torch.rand(4, 3, 8, 8) * 2 - 1
    before = x.clone()
    y = degrade(x, kind, 0.5 if kind == 'modes' else 1.0, other=torch.zeros(2, 3, 8, 8))
    assert torch.equal(x, before) and y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize('kind,strength,message', [
    ('blur', -1, 'strength must be >= 0'), ('jpeg', 1.5, 'in \\[0, 1\\]'), ('swap', 0.5, 'needs `other`'),
    ('modes', 1.0, 'share of 10 modes'), ('twirl', 1, 'unknown degradation')])
def test_degrade_bad_input(kind, strength, message):
    with pytest.raises(ValueError, match=message): degrade(torch.zeros(2, 3, 8, 8), kind, strength)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 10_000))
def test_nearest_neighbours_matches_brute_force_in_chunks(seed):
    rng = np.random.default_rng(seed)
    q, r = rng.normal(size=(37, 5)), rng.normal(size=(23, 5))
    d, i = nearest_neighbours(q, r, chunk=8)
    full = np.linalg.norm(q[:, None] - r[None], axis=-1)
    np.testing.assert_array_equal(i, full.argmin(1))
    np.testing.assert_allclose(d, full.min(1), rtol=1e-9)
    _, i_self = nearest_neighbours(r, r, chunk=8, exclude_self=True)
    assert (i_self != np.arange(len(r))).all()


def test_memorisation_heldout_reference_and_bad_input():
    rng = np.random.default_rng(0)
    train, heldout = rng.normal(size=(100, 4)), rng.normal(size=(100, 4))
    m = memorisation(train + 1e-6, train, heldout)   # exact copies are all nearer than any new image
    assert m['share'] == 1.0 and m['reference'] == 'heldout' and m['median_ratio'] < 1e-3
    with pytest.raises(ValueError, match='quantile'): memorisation(train, train, quantile=1.0)
    with pytest.raises(ValueError, match='dimension|same'): memorisation(train, rng.normal(size=(10, 3)))


def test_dropping_modes_keeps_the_count_and_empties_the_dropped_modes():
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(10, 3, 1, 1, generator=g) * 2 - 1          # ten flat colours: ten modes
    x = (centres.repeat(20, 1, 8, 8) + 0.01 * torch.randn(200, 3, 8, 8, generator=g)).clamp(-1, 1)
    mode = pixel_modes(x, 10, seed=0)
    y = degrade(x, 'modes', 0.4, seed=0)
    source_of = torch.cdist(y.flatten(1), x.flatten(1)).argmin(1)    # every image of y is one of x's
    assert y.shape == x.shape and mode.unique().numel() == 10
    assert mode[source_of].unique().numel() == 6                      # 4 of 10 modes gone, the other 6 all there
