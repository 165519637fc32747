"Every parameterization: identity at start (bit for bit), gradients exactly where exposed, delta round trips, baking."
import pytest
import torch

from stylespace_lab.checkpoints import load_delta, save_delta
from stylespace_lab.checkpoints import load_generator, save_checkpoint
from stylespace_lab.generator import Generator, GeneratorConfig, Styles
from stylespace_lab.parameterizations import PARAMETERIZATIONS, Parameterization, StyleSpaceDirection, make_parameterization

CFG = GeneratorConfig(resolution=32, style_dim=16, n_mlp=2, channel_base=256, channel_max=16)
NAMES = ['full', 'mapping', 'affine', 'synthesis', 'conv', 'torgb', 'noise', 'const', 'affine@8', 'conv@8-16', 'torgb@4-32',
         'stylespace', 'stylespace_sparse', 'affine_plus', 'affine_light_plus', 'dommod']


@pytest.fixture(scope='module')
def G():
    torch.manual_seed(0)
    return Generator(CFG).eval()


@pytest.mark.parametrize('name', NAMES)
def test_identity_at_start(G, name):
    z = G.sample_z(3, seed=1)
    with torch.no_grad():
        assert torch.equal(make_parameterization(name, G).generator()(z, noise='const'), G(z, noise='const'))


@pytest.mark.parametrize('name', NAMES)
def test_gradients_reach_exactly_the_exposed_tensors(G, name):
    P = make_parameterization(name, G)
    with torch.no_grad():
        for p in P.trainable_parameters(): p.add_(1e-3 * torch.randn_like(p))
    P.generator()(G.sample_z(2, seed=2)).square().mean().backward()
    assert {id(p) for p in P.parameters() if p.grad is not None} == {id(p) for p in P.trainable_parameters()}
    assert all(p.grad is None for p in G.parameters())
    assert P.n_params > 0


def test_finetune_band_selects_only_its_resolutions(G):
    P = make_parameterization('conv@8-16', G)
    assert P.names and all(('.b8.' in n or '.b16.' in n) for n in P.names)
    assert all('.affine.' not in n and '.torgb.' not in n for n in P.names)


def test_sparse_keeps_the_largest_entries(G):
    d = StyleSpaceDirection(G)
    with torch.no_grad():
        for p in d.direction: p.copy_(torch.randn_like(p))
    S = make_parameterization('stylespace_sparse', G, keep=0.1, direction=d)
    flat, mask = d.flat(), S.mask
    assert S.n_params == round(0.1 * flat.numel())
    assert flat[mask].abs().min() >= flat[~mask].abs().max()
    S.generator()(G.sample_z(2, seed=0)).mean().backward()
    assert all((p.grad.flatten() * ~m).abs().sum() == 0 for p, m in zip(S.direction, mask.split([p.numel() for p in S.direction])))


@pytest.mark.parametrize('name', ['stylespace', 'affine_plus', 'affine_light_plus', 'dommod', 'conv@16'])
def test_delta_file_round_trip_and_refusal(G, name, tmp_path):
    P = make_parameterization(name, G)
    with torch.no_grad():
        for p in P.trainable_parameters(): p.add_(0.01 * torch.randn_like(p))
    path = save_delta(tmp_path/'d.pt', P.delta_state(), G, name, meta=dict(param_config=P.config()))
    kind, state = load_delta(path, G)
    kwargs = {k: v for k, v in P.config().items() if k != 'spec'}
    Q = make_parameterization(kind, G, **kwargs).load_delta(state)
    z = G.sample_z(2, seed=3)
    with torch.no_grad(): assert torch.equal(Q.generator()(z, noise='const'), P.generator()(z, noise='const'))
    other = Generator(GeneratorConfig(resolution=32, style_dim=8, n_mlp=2, channel_base=256, channel_max=16))
    with pytest.raises(ValueError, match='style_dim'): load_delta(path, other)


def test_bad_names(G):
    with pytest.raises(ValueError, match='known: full'): make_parameterization('lora', G)
    with pytest.raises(ValueError, match='not in this generator'): make_parameterization('conv@64', G)
    with pytest.raises(ValueError, match='not a resolution'): make_parameterization('affine_plus', G, block=64)
    with pytest.raises(ValueError, match='no resolution'): make_parameterization('mapping@8', G)
    assert set(PARAMETERIZATIONS) >= {'full', 'stylespace', 'affine_plus', 'affine_light_plus', 'dommod', 'stylespace_sparse'}


@pytest.mark.parametrize('name', NAMES)
def test_bake_equals_the_adapted_view(G, name, tmp_path):
    "A baked Generator draws what the adapted view draws (bit for bit for weight overrides), from W and W+, and survives a checkpoint."
    torch.manual_seed(1)
    P = make_parameterization(name, G)
    with torch.no_grad():
        for p in P.trainable_parameters(): p.add_(0.05 * torch.randn_like(p))
    source_before = {n: p.clone() for n, p in G.named_parameters()}
    view, baked = P.generator(), P.bake()
    z = G.sample_z(3, seed=4)
    w = G.mapping(z)
    w_plus = w[:, None].repeat(1, G.num_ws, 1) + 0.1 * torch.randn(3, G.num_ws, G.w_dim)
    exact = not P.folded_styles()
    with torch.no_grad():
        for ww in (w, w_plus):
            a, b = view.synthesis(view.styles(ww), 'const'), baked.synthesis(baked.styles(ww), 'const')
            assert torch.equal(a, b) if exact else torch.allclose(a, b, atol=1e-5), (name, float((a - b).abs().max()))
    assert exact == (name not in ('stylespace', 'stylespace_sparse', 'affine_light_plus'))
    assert type(baked) is Generator and not any(p.requires_grad for p in baked.parameters())
    assert all(torch.equal(p, source_before[n]) for n, p in G.named_parameters())   # the source is untouched
    assert any(not torch.equal(p, source_before[n]) for n, p in baked.named_parameters())
    G2 = load_generator(save_checkpoint(tmp_path/'baked.pt', G_ema=baked))
    with torch.no_grad(): assert torch.equal(G2(z, noise='const'), baked(z, noise='const'))


def test_bake_refuses_a_style_transform_it_cannot_fold(G):
    class SquaredStyles(Parameterization):
        name = 'squared_styles'
        def transform_styles(self, styles, w): return Styles(s * s for s in styles)
    with pytest.raises(ValueError, match='cannot be baked into plain Generator weights'): SquaredStyles(G).bake()
