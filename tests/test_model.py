"Property, round-trip and bad-input tests for the StyleGAN2 layers, generator and discriminator."
import io

import pytest
import torch
from hypothesis import given, settings, strategies as st

from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig, Styles
from stylespace_lab.layers import downsample2x, fir_kernel, modulated_conv2d, upsample2x

SMALL = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=256, channel_max=16)


@pytest.mark.parametrize('res', [8, 16, 32, 64])
def test_contract_bit_for_bit(res):
    "The contract at every size (02_generator shows it at one)."
    torch.manual_seed(res)
    G = Generator(GeneratorConfig(resolution=res, style_dim=16, n_mlp=2, channel_base=256, channel_max=16)).eval()
    z = torch.randn(3, 16)
    with torch.no_grad():
        a = G(z, noise='const')
        b = G.synthesis(G.styles(G.mapping(z)), noise='const')
    assert a.shape == (3, 3, res, res)
    assert torch.equal(a, b)


def test_layout_is_consistent():
    G = Generator(SMALL)
    lay = G.style_layout
    assert [l.index for l in lay] == list(range(len(lay)))
    assert lay[0].offset == 0 and all(b.offset == a.offset + a.channels for a, b in zip(lay, lay[1:]))
    assert max(l.w_index for l in lay) == G.num_ws - 1
    assert [l.kind for l in lay].count('torgb') == len(G.cfg.resolutions)
    s = G.styles(torch.randn(2, 16))
    assert [t.shape[1] for t in s] == [l.channels for l in lay]


@settings(max_examples=15, deadline=None)
@given(layer=st.integers(0, 8), amount=st.floats(0.5, 5.0))
def test_style_shift_changes_image_and_zero_does_not(layer, amount):
    torch.manual_seed(0)
    G = Generator(SMALL).eval()
    layer = layer % len(G.style_layout)
    with torch.no_grad():
        s = G.styles(G.mapping(torch.randn(2, 16)))
        base = G.synthesis(s, noise='const')
        assert torch.equal(G.synthesis(s.shift(torch.zeros(G.style_dim_total)), noise='const'), base)
        d = [torch.zeros_like(t[0]) for t in s]
        d[layer] += amount
        assert not torch.equal(G.synthesis(s.shift(Styles(d)), noise='const'), base)


def test_wplus_and_truncation():
    torch.manual_seed(1)
    G = Generator(SMALL).eval()
    z = torch.randn(2, 16)
    with torch.no_grad():
        G.mapping(torch.randn(64, 16), update_w_avg=True)
        assert G.mapping.w_avg.abs().sum() > 0
        w = G.mapping(z)
        assert torch.allclose(G.mapping(z, psi=0.), G.mapping.w_avg.expand(2, -1))
        wp = w[:, None].repeat(1, G.num_ws, 1)
        assert torch.equal(G.synthesis(G.styles(wp), noise='const'), G.synthesis(G.styles(w), noise='const'))
        wp[:, -1] += 1
        assert not torch.equal(G.synthesis(G.styles(wp), noise='const'), G.synthesis(G.styles(w), noise='const'))


def test_fused_and_unfused_modulation_agree():
    torch.manual_seed(2)
    x, w, s = torch.randn(4, 8, 8, 8), torch.randn(5, 8, 3, 3), torch.randn(4, 8)
    for up in (False, True):
        for demod in (False, True):
            a = modulated_conv2d(x, w, s, demodulate=demod, up=up, fir=fir_kernel(), fused=True)
            b = modulated_conv2d(x, w, s, demodulate=demod, up=up, fir=fir_kernel(), fused=False)
            assert torch.allclose(a, b, atol=1e-4)


def test_resampling_shapes_and_constant_preservation():
    k = fir_kernel()
    x = torch.full((1, 2, 8, 8), 3.0)
    assert torch.allclose(upsample2x(x, k)[..., 2:-2, 2:-2], torch.full((1, 2, 12, 12), 3.0), atol=1e-5)
    assert downsample2x(x, k).shape == (1, 2, 4, 4)


def test_discriminator_features_and_state_dict_round_trip():
    torch.manual_seed(3)
    cfg = GeneratorConfig(resolution=32, style_dim=16, n_mlp=2, channel_base=512, channel_max=32)
    G, D = Generator(cfg).eval(), Discriminator(cfg).eval()
    x = torch.randn(4, 3, 32, 32)
    logit, feats = D(x, return_features=True)
    assert logit.shape == (4, 1)
    assert {k: tuple(v.shape) for k, v in feats.items()} == D.feature_shapes(4) == {
        'b32': (4, 32, 16, 16), 'b16': (4, 32, 8, 8), 'b8': (4, 32, 4, 4), 'b4': (4, 32)}
    for net, inp in ((G, torch.randn(2, 16)), (D, x)):
        buf = io.BytesIO(); torch.save(net.state_dict(), buf); buf.seek(0)
        twin = type(net)(cfg).eval()
        twin.load_state_dict(torch.load(buf, weights_only=True))
        with torch.no_grad():
            kw = dict(noise='const') if net is G else {}
            assert torch.equal(net(inp, **kw), twin(inp, **kw))


@pytest.mark.parametrize('res', [0, 4, 6, 48, 100, 2048])
def test_bad_resolution(res):
    with pytest.raises(ValueError, match='power of two between 8 and 1024'):
        GeneratorConfig(resolution=res)


def test_bad_latents_and_styles():
    G = Generator(SMALL)
    with pytest.raises(ValueError, match=r'expected z of shape \[B, 16\]'): G(torch.randn(2, 15))
    with pytest.raises(ValueError, match=r'expected z of shape'): G(torch.randn(16))
    with pytest.raises(ValueError, match='W\\+'): G.styles(torch.randn(2, 3, 16))
    s = G.styles(torch.randn(2, 16))
    with pytest.raises(ValueError, match='style tensors'): G.synthesis(s[:-1])
    bad = Styles(s); bad[1] = bad[1][:, :-1]
    with pytest.raises(ValueError, match=r'expects \[B, 16\]'): G.synthesis(bad)
    with pytest.raises(ValueError, match='unknown noise mode'): G.synthesis(s, noise='fixed')
    with pytest.raises(ValueError, match='noise tensors'): G.synthesis(s, noise=[torch.zeros(1)])
    with pytest.raises(ValueError, match='expected images of shape'): Discriminator(SMALL)(torch.randn(2, 3, 32, 32))
