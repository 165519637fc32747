"StyleSpace probing: identity of a zero push, statistics vs layout, top channels of one-hot directions, bad names, adapted generators, explorer."
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.features import EmojiEncoder
from stylespace_lab.parameterizations import make_parameterization
from stylespace_lab.stylespace import (apply_edit, channel_delta, channel_effects, channel_index, content_classes_of, direction_vector,
                                       edit_consistency, encoder_attribute, explore, gradient_attribution, intervention_attribution,
                                       layout_table, manipulate, manipulation_grid, style_statistics, styles_of, top_channels)

CFG = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=128, channel_max=16)


@pytest.fixture(scope='module')
def G():
    torch.manual_seed(0)
    return Generator(CFG).eval().requires_grad_(False)


@pytest.fixture(scope='module')
def stats(G):
    return style_statistics(G, n=64, seed=0, batch=20)


@pytest.fixture(scope='module')
def adapted(G):
    P = make_parameterization('stylespace', G)
    torch.manual_seed(1)
    with torch.no_grad():
        for p in P.direction: p.normal_(0, 0.5)
    return P


@pytest.fixture(params=['source', 'adapted', 'affine_plus'])
def any_G(request, G, adapted):
    if request.param == 'source': return G
    if request.param == 'adapted': return adapted.generator()
    P = make_parameterization('affine_plus', G)
    with torch.no_grad():
        for p in P.trainable_parameters(): p.normal_(0, 0.01)
    return P.generator()


def test_zero_push_is_identity_bit_for_bit(any_G, stats):
    z = any_G.sample_z(3, seed=5)
    with torch.no_grad(): ref = any_G(z, noise='const')
    for layer in [l.name for l in any_G.style_layout]:
        assert torch.equal(manipulate(any_G, z, layer, [0, 1], 0., stats), ref), layer
    assert torch.equal(manipulate(any_G, z, 0, 0, 0.), ref)                        # raw units, layer by index


def test_push_changes_image_and_matches_direct_shift(any_G, stats):
    z = any_G.sample_z(2, seed=6)
    out = manipulate(any_G, z, 'b8.conv1', 2, 4., stats)
    with torch.no_grad():
        s = any_G.styles(any_G.mapping(z))
        s[3] = s[3].clone(); s[3][:, 2] += 4 * stats.sigma('b8.conv1', 2)
        ref = any_G.synthesis(s, noise='const')
    torch.testing.assert_close(out, ref)
    assert not torch.equal(out, any_G(z, noise='const'))


def test_stats_shapes_match_layout(G, stats):
    D = sum(l.channels for l in G.style_layout)
    assert stats.mean.shape == stats.std.shape == (D,)
    t = stats.table
    assert len(t) == D and list(t.flat_index) == list(range(D))
    for l in G.style_layout:
        rows = t[t.layer == l.name]
        assert len(rows) == l.channels and rows.flat_index.min() == l.offset and set(rows.kind) == {l.kind}
    assert (stats.std > 0).all()
    with torch.no_grad(): s = G.styles(G.mapping(G.sample_z(64, seed=0))).flat()
    torch.testing.assert_close(stats.std, s.std(0), atol=1e-4, rtol=1e-4)


def test_stats_of_adapted_generator_are_shifted_by_its_direction(G, stats, adapted):
    st = style_statistics(adapted.generator(), n=64, seed=0, batch=20)
    torch.testing.assert_close(st.mean - stats.mean, direction_vector(adapted), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(st.std, stats.std, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize('layer,channel', [('b4.conv1', 0), ('b8.torgb', 15), ('b16.conv0', 7)])
@pytest.mark.parametrize('normalise', [False, True])
def test_top_channels_finds_the_one_hot_channel(G, stats, layer, channel, normalise):
    D = sum(l.channels for l in G.style_layout)
    d = torch.zeros(D); d[channel_index(G.style_layout, layer, channel)] = -2.
    t = top_channels(d, G.style_layout, k=3, normalise_by=stats if normalise else None)
    assert (t.layer[0], t.channel[0]) == (layer, channel) and t['rank'][0] == 1
    assert t.value[0] == -2. and t.share[0] == pytest.approx(1.)
    per = top_channels(d, G.style_layout, k=1, per_layer=True)
    assert len(per) == len(G.style_layout)
    hit = per[per.score > 0]
    assert hit[['layer', 'channel']].values.tolist() == [[layer, channel]]


def test_top_channels_of_a_conv_only_direction(G):
    P = make_parameterization('stylespace', G, layers='conv')
    with torch.no_grad(): P.direction[-1][3] = 1.
    last_conv = [l for l in G.style_layout if l.kind == 'conv'][-1]
    t = top_channels(P, G.style_layout, k=1)
    assert (t.layer[0], t.channel[0]) == (last_conv.name, 3)
    with pytest.raises(ValueError, match='pass the parameterization itself'): top_channels(P.flat(), G.style_layout)


def test_bad_layer_and_channel_names(G, stats):
    z = G.sample_z(1, seed=0)
    with pytest.raises(ValueError, match="unknown style layer 'b64.conv0'.*b4.conv1"): manipulate(G, z, 'b64.conv0', 0, 1., stats)
    with pytest.raises(ValueError, match='out of range for style layer b8.conv0'): manipulate(G, z, 'b8.conv0', 16, 1., stats)
    with pytest.raises(ValueError, match='channel must be an int'): channel_index(G.style_layout, 'b8.conv0', 1.5)
    with pytest.raises(ValueError, match='style layer index 99 out of range'): channel_index(G.style_layout, 99, 0)
    with pytest.raises(ValueError, match='columns'): channel_delta(G.style_layout, pd.DataFrame(dict(layer=['b8.conv0'])))
    with pytest.raises(ValueError, match="space must be 'z' or 'w'"): styles_of(G, z, space='s')
    with pytest.raises(ValueError, match='W\\+'): styles_of(G, torch.zeros(1, G.num_ws, G.w_dim))
    with pytest.raises(ValueError, match='StyleSpace has'): apply_edit(G, z, torch.zeros(3))
    with pytest.raises(ValueError, match='at least 2 samples'): style_statistics(G, n=1)
    other = style_statistics(Generator(GeneratorConfig(resolution=8, style_dim=16, n_mlp=1, channel_base=64, channel_max=8)), n=4)
    with pytest.raises(ValueError, match='another style layout'): manipulate(G, z, 'b8.conv0', 0, 1., other)


def test_manipulation_grid_layout(G, stats):
    z = G.sample_z(2, seed=3)
    strengths = (-3, 0, 3)
    grid = manipulation_grid(G, z, [('b8.conv1', 1), ('b16.conv1', 2)], strengths, stats)
    assert grid.shape == (2 * 2 * 3, 3, 16, 16)
    with torch.no_grad(): base = G(z, noise='const').clamp(-1, 1)
    for r in range(4): assert torch.equal(grid[3 * r + 1], base[r % 2])
    torch.testing.assert_close(grid[3 * 2 + 2], manipulate(G, z, 'b16.conv1', 2, 3., stats)[0].clamp(-1, 1))


def test_channel_effects_zero_and_positive(G, stats):
    z = G.sample_z(3, seed=4)
    t = pd.DataFrame(dict(layer=['b8.conv1', 'b16.conv0'], channel=[0, 1], value=[0., 3.]))
    e = channel_effects(G, z, t)
    assert e.effect_pixel[0] == 0 and e.effect_pixel[1] > 0
    e2 = channel_effects(G, z, t, strength=2., stats=stats, features={'mean': lambda x: x.mean((2, 3))})
    assert (e2.effect_pixel > 0).all() and (e2.effect_mean >= 0).all()


def test_gradient_and_intervention_agree_on_a_linear_readout(G, stats):
    z = G.sample_z(8, seed=7)
    fn = lambda x: x[:, 2].mean((1, 2))
    ga = gradient_attribution(G, z, fn, stats, batch=4)
    assert len(ga) == len(layout_table(G.style_layout))
    top = ga.reindex(ga.attribution.abs().sort_values(ascending=False).index).head(5)
    ia = intervention_attribution(G, z, fn, top, strength=0.02, stats=stats, batch=4)
    np.testing.assert_allclose(ia.slope, ia.attribution, atol=0.05 * ia.attribution.abs().max())
    with pytest.raises(ValueError, match='shape \\[B\\]'): gradient_attribution(G, z, lambda x: x.mean(), stats)


def test_gradient_attribution_on_adapted_generator(G, adapted, stats):
    z = G.sample_z(4, seed=8)
    fn = lambda x: x.mean((1, 2, 3))
    # a StyleSpace direction is an additive shift of s: the gradient w.r.t. s at the adapted styles is the source's gradient there
    ga = gradient_attribution(adapted.generator(), z, fn)
    s = styles_of(G, z).shift(direction_vector(adapted))
    gs = gradient_attribution(G, s, fn)
    np.testing.assert_allclose(ga.grad, gs.grad, rtol=1e-5, atol=1e-8)


def test_encoder_attribute_and_content_classes():
    torch.manual_seed(0)
    enc = EmojiEncoder(['1f600', '1f436', '1f431'], ['noto', 'twemoji']).eval()
    meta = pd.DataFrame(dict(codepoints=['1f600', '1f436', '1f431', '1f999'], base=['1f600', '1f436', '1f431', '1f999'],
                             category=['Smileys & Emotion', 'Animals & Nature', 'Animals & Nature', 'Animals & Nature']))
    assert content_classes_of(enc, meta, 'Animals & Nature') == [1, 2]     # 1f999 is not a class of the encoder: skipped
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        c, s = enc(x)
        torch.testing.assert_close(encoder_attribute(enc, 'content', [1, 2], against=[0])(x), torch.logsumexp(c[:, 1:], 1) - c[:, 0])
        torch.testing.assert_close(encoder_attribute(enc, 'style', 'twemoji')(x), torch.log_softmax(s, 1)[:, 1])
    with pytest.raises(ValueError, match="head must be"): encoder_attribute(enc, 'shape', [0])
    with pytest.raises(ValueError, match='no .category. column'): content_classes_of(enc, meta.drop(columns='category'), 'Flags')


def test_edit_consistency_identity_and_perturbed(G, stats, adapted):
    z = G.sample_z(6, seed=9)
    edits = pd.DataFrame(dict(layer=['b8.conv1', 'b16.conv1'], channel=[1, 2]))
    same = edit_consistency(G, make_parameterization('stylespace', G).generator(), z, edits, 3., stats, logits_fn=lambda x: x.mean((2, 3)))
    np.testing.assert_allclose(same.cos, 1, atol=1e-6); np.testing.assert_allclose(same.change_ratio, 1, atol=1e-6)
    assert (same.same_argmax_after == 1).all() and (same.argmax_change_agreement == 1).all()
    other = edit_consistency(G, adapted.generator(), z, edits, 3., stats)
    assert (other.cos < 1).all() and (other.cos > -1).all()
    assert list(other.columns[:3]) == ['layer', 'channel', 'strength']
    with pytest.raises(ValueError, match='different style layouts'):
        edit_consistency(G, Generator(GeneratorConfig(resolution=8, style_dim=16, n_mlp=1, channel_base=64, channel_max=8)), z, edits)


def test_explorer_builds_and_updates(G, stats):
    pytest.importorskip('ipywidgets')
    box = explore(G, stats, n=2, scale=1)
    first = box.children[-1].value
    assert first[:4] == b'\x89PNG'
    layer, channel = box.children[0].children
    strength = box.children[1].children[0]
    layer.value = 'b16.conv1'
    channel.value = 3
    strength.value = 8.
    assert channel.max == 7 and box.children[-1].value != first


def test_explorer_without_ipywidgets(G, monkeypatch):
    monkeypatch.setitem(sys.modules, 'ipywidgets', None)
    with pytest.raises(ImportError, match='pip install ipywidgets'): explore(G)
