"Tests for the adaptation losses: adversarial + R1, FreezeD, CDC, D3T projection/reconstruction/distillation, CLIP (error path and maths)."
import copy
import warnings

import pytest
import torch
from torch import nn

from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.losses import (LOSSES, ClipDirectionalLoss, Projection, cdc_loss, d_adversarial_loss, d_distillation_loss,
                                   d_feature_fn, freeze_d, g_adversarial_loss, load_clip_image_encoder, losses_table,
                                   paired_synthesis, project, reconstruction_loss, anchored_relation_loss, twin_features)
from stylespace_lab.parameterizations import make_parameterization

SMALL = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=256, channel_max=16)


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


@pytest.fixture
def nets():
    torch.manual_seed(0)
    return Generator(SMALL).eval(), Discriminator(SMALL)


def images(G, n, seed):
    with torch.no_grad(): return G.synthesis(G.styles(G.mapping(G.sample_z(n, seed=seed))), 'const')


# --- adversarial and FreezeD

def test_adversarial_losses_and_r1_are_differentiable(nets):
    G, D = nets
    real, fake = images(G, 4, 0), G(G.sample_z(4, seed=1))
    lg = g_adversarial_loss(D, fake)
    lg.backward()
    assert lg > 0 and G.synthesis.const.grad is not None
    G.zero_grad(set_to_none=True); D.zero_grad(set_to_none=True)
    loss, logs = d_adversarial_loss(D, real, fake, r1_gamma=2., r1=True)
    loss.backward()
    assert torch.isfinite(loss) and 'r1' in logs and logs['r1'] >= 0
    assert all(p.grad is not None for p in D.parameters()) and G.synthesis.const.grad is None
    torch.testing.assert_close(loss.detach(), logs['d_real'] + logs['d_fake'] + logs['r1'])
    loss0, logs0 = d_adversarial_loss(D, real, fake)
    assert 'r1' not in logs0
    with pytest.raises(ValueError, match='network is 16x16'): d_adversarial_loss(D, real[:, :, :8, :8], fake)
    with pytest.raises(ValueError, match='r1_gamma'): d_adversarial_loss(D, real, fake, r1_gamma=-1., r1=True)


@pytest.mark.parametrize('k', [0, 1, 2, 3])
def test_freeze_d_freezes_exactly_from_rgb_and_k_blocks(nets, k):
    _, D = nets
    D.requires_grad_(False)   # the state before does not matter
    frozen = freeze_d(D, k)
    prefixes = (['from_rgb.'] + [f'blocks.{b}.' if b != 'b4' else 'epilogue.' for b in D.block_names[:k]]) if k else []
    expect = [n for n, _ in D.named_parameters() if n.startswith(tuple(prefixes))] if k else []
    assert frozen == expect
    assert all(p.requires_grad == (n not in expect) for n, p in D.named_parameters())


def test_freeze_d_bad_k(nets):
    _, D = nets
    with pytest.raises(ValueError, match='b16, b8, b4'): freeze_d(D, 4)
    with pytest.raises(ValueError, match='0..3'): freeze_d(D, -1)


# --- CDC

def test_cdc_zero_for_identical_positive_otherwise(nets):
    G, _ = nets
    P = make_parameterization('stylespace', G)
    w = G.mapping(G.sample_z(5, seed=2))
    g = torch.Generator().manual_seed(0)
    _, _, fs, ft = paired_synthesis(G, P.generator(), w, generator=g)   # random noise, drawn once for both
    assert cdc_loss(fs, ft).abs() < 1e-6
    assert cdc_loss(fs, {k: v.clone() for k, v in fs.items()}, layers=list(fs)).abs() < 1e-6
    with torch.no_grad():
        for d in P.direction: d.normal_(0, 0.5)
    _, _, fs, ft = paired_synthesis(G, P.generator(), w, generator=g)
    for layers in (None, ['b8'], list(fs)): assert cdc_loss(fs, ft, layers=layers, generator=torch.Generator().manual_seed(1)) > 0
    a = cdc_loss(fs, ft, generator=torch.Generator().manual_seed(3))
    b = cdc_loss(fs, ft, generator=torch.Generator().manual_seed(3))
    assert a.item() == b.item()


def test_cdc_gradient_reaches_only_the_parameterization(nets):
    G, _ = nets
    P = make_parameterization('stylespace', G)
    with torch.no_grad():
        for d in P.direction: d.normal_(0, 0.3)
    w = G.mapping(G.sample_z(4, seed=4))
    _, _, fs, ft = paired_synthesis(G, P.generator(), w, noise='const')
    cdc_loss(fs, ft, layers=list(fs)).backward()
    assert all(p.grad is None for p in G.parameters())
    conv = [l.kind == 'conv' for l in G.style_layout]   # features are conv outputs; ToRGB styles do not reach them
    assert [d.grad is not None and bool(d.grad.abs().sum() > 0) for d in P.direction] == conv


def test_cdc_bad_input(nets):
    G, _ = nets
    _, _, fs, ft = paired_synthesis(G, G, G.mapping(G.sample_z(3, seed=0)), noise='const')
    with pytest.raises(ValueError, match='at least 2'): cdc_loss({k: v[:1] for k, v in fs.items()}, {k: v[:1] for k, v in ft.items()})
    with pytest.raises(ValueError, match='valid: b4, b8, b16'): cdc_loss(fs, ft, layers=['b32'])
    with pytest.raises(ValueError, match='different layers'): cdc_loss(fs, {'b4': ft['b4']})
    with pytest.raises(ValueError, match='same shape'): cdc_loss(fs, {k: v[:2] for k, v in ft.items()}, layers=['b4'])


# --- D3T (a): projection and reconstruction

def test_projection_recovers_an_image_of_g(nets):
    G, _ = nets
    w_true = G.mapping(G.sample_z(2, seed=3))
    with torch.no_grad(): target = G.synthesis(G.styles(w_true), 'const')
    p = project(G, target, steps=100, w_plus=False, show_progress=False)
    r = p.report
    assert (r.mse_after < r.mse_before / 20).all() and (r.l1_after < r.l1_before).all()
    assert p.w.shape == (2, G.w_dim) and p.images.shape == target.shape and (r.steps == 100).all()
    pp = project(G, target, steps=30, show_progress=False)          # W+ (default)
    assert pp.w.shape == (2, G.num_ws, G.w_dim) and (pp.report.mse_after < pp.report.mse_before).all()
    # deterministic given the seed
    p2 = project(G, target, steps=100, w_plus=False, show_progress=False)
    torch.testing.assert_close(p.w, p2.w)


def test_projection_through_an_adapted_generator_and_with_features(nets):
    G, D = nets
    Gt = make_parameterization('stylespace', G).generator()
    target = images(G, 2, 5)
    p = project(Gt, target, steps=10, feature_fn=d_feature_fn(D), show_progress=False)
    assert {'feat_before', 'feat_after'} <= set(p.report.columns)
    assert all(q.grad is None for q in D.parameters())


def test_reconstruction_loss_zero_at_the_right_latent_and_trains_only_the_delta(nets):
    G, D = nets
    w = G.mapping(G.sample_z(3, seed=6)).detach()[:, None].expand(-1, G.num_ws, -1)
    with torch.no_grad(): x = G.synthesis(G.styles(w), 'const')
    proj = Projection(w, x, None, 'const')
    P = make_parameterization('affine_plus', G)
    Gt = P.generator()
    assert reconstruction_loss(Gt, proj, x) < 1e-6
    assert reconstruction_loss(Gt, proj, x, pixel='mse', feature_fn=d_feature_fn(D)) < 1e-6
    loss = reconstruction_loss(Gt, proj, torch.flip(x, dims=[3]))
    loss.backward()
    assert loss > 0.01 and all(p.grad is not None for p in P.trainable_parameters()) and all(p.grad is None for p in G.parameters())


def test_d3t_bad_input(nets):
    G, D = nets
    x = images(G, 2, 7)
    p = project(G, x, steps=2, show_progress=False)
    with pytest.raises(ValueError, match='network is 16x16'): project(G, x[:, :, :8, :8])
    with pytest.raises(ValueError, match="'const' or 'none'"): project(G, x, noise='random')
    with pytest.raises(ValueError, match='proj.select'): reconstruction_loss(G, p, x[:1])
    with pytest.raises(ValueError, match="'l1' or 'mse'"): reconstruction_loss(G, p, x, pixel='l3')
    with pytest.raises(ValueError, match='valid: b16, b8, b4'): d_feature_fn(D, ['b2'])
    assert reconstruction_loss(G, p.select([1]), x[1:]).ndim == 0
    assert len(p.select(0)) == 1 and len(p.select(slice(0, 2))) == 2


# --- D3T (a, continued): consistency anchored on the twins

def feats(n, seed, layers=('b4', 'b8'), c=5):
    g = torch.Generator().manual_seed(seed)
    return {l: torch.randn(n, c, 2, 2, generator=g) for l in layers}


def test_anchored_relation_is_a_kl_over_anchors():
    s, a = feats(6, 0), feats(3, 1)
    assert anchored_relation_loss(s, s, a, a).abs() < 1e-6
    scaled = lambda f, k: {l: v * k for l, v in f.items()}
    # cosine similarities: positive rescaling of either side changes nothing
    assert anchored_relation_loss(s, scaled(s, 3.), a, scaled(a, 0.5)).abs() < 1e-5
    # swapping which anchor is which moves every sample's distribution: positive, and a proper KL (>= 0) per layer
    swapped = {l: v.flip(0) for l, v in a.items()}
    one = [anchored_relation_loss(s, s, a, swapped, layers=[l]) for l in s]
    assert all(v > 0 for v in one)
    assert anchored_relation_loss(s, s, a, swapped) == pytest.approx(float(sum(one) / len(one)), rel=1e-5)
    t = {l: v.clone().requires_grad_(True) for l, v in s.items()}
    src = {l: v.clone().requires_grad_(True) for l, v in s.items()}
    anchored_relation_loss(src, t, a, swapped).backward()
    assert all(src[l].grad is None and t[l].grad is not None for l in s)   # the source side is a fixed reference


def test_anchored_relation_bad_input():
    s, a = feats(4, 0), feats(3, 1)
    with pytest.raises(ValueError, match='must be feature dicts'): anchored_relation_loss(s, s, a, a['b4'])
    with pytest.raises(ValueError, match='same layers'): anchored_relation_loss(s, s, a, {'b4': a['b4']})
    with pytest.raises(ValueError, match='valid: b4, b8'): anchored_relation_loss(s, s, a, a, layers=['b16'])
    with pytest.raises(ValueError, match='at least 2 anchors'):
        anchored_relation_loss(s, s, feats(1, 2), feats(1, 2))
    with pytest.raises(ValueError, match='pair up'): anchored_relation_loss(s, feats(5, 0), a, a)
    with pytest.raises(ValueError, match='pair up'): anchored_relation_loss(s, s, feats(3, 1, c=4), feats(3, 1, c=4))
    with pytest.raises(ValueError, match='Projection'): twin_features(None, object())


def test_twin_features_reuse_in_reconstruction(nets):
    G, _ = nets
    x = images(G, 2, 7)
    p = project(G, x, steps=2, show_progress=False)
    img, f = twin_features(G, p)
    assert list(f) == ['b4', 'b8', 'b16'] and img.shape == x.shape
    assert torch.equal(reconstruction_loss(G, p, x, images=img), reconstruction_loss(G, p, x))
    with pytest.raises(ValueError, match='differ in shape'): reconstruction_loss(G, p, x, images=img[:, :, :8, :8])


# --- D3T (b): distillation

@pytest.mark.parametrize('kind', ['l2', 'cosine'])
def test_d_distillation(nets, kind):
    G, D = nets
    x = torch.cat([images(G, 3, 8), torch.rand(3, 3, 16, 16) * 2 - 1])
    D_src, D_t = copy.deepcopy(D), copy.deepcopy(D)
    assert d_distillation_loss(D_src, D_t, x, kind=kind).abs() < 1e-5
    with torch.no_grad():
        for p in D_t.parameters(): p.add_(0.05 * torch.randn_like(p))
    loss = d_distillation_loss(D_src, D_t, x, kind=kind)
    loss.backward()
    assert loss > 1e-4
    assert all(p.grad is None for p in D_src.parameters())
    assert all(p.grad is not None for n, p in D_t.named_parameters() if not n.startswith('epilogue.out'))
    one = d_distillation_loss(D_src, D_t, x, levels=['b8'], weights={'b8': 3.}, kind=kind)
    torch.testing.assert_close(one, 3 * d_distillation_loss(D_src, D_t, x, levels=['b8'], kind=kind))


def test_d_distillation_bad_input(nets):
    _, D = nets
    x = torch.zeros(2, 3, 16, 16)
    with pytest.raises(ValueError, match='valid: b16, b8, b4'): d_distillation_loss(D, D, x, levels=['b64'])
    with pytest.raises(ValueError, match="'l2' or 'cosine'"): d_distillation_loss(D, D, x, kind='kl')
    with pytest.raises(ValueError, match='2 weights for 3 levels'): d_distillation_loss(D, D, x, weights=[1., 1.])
    with pytest.raises(ValueError, match='source and target D differ'):
        d_distillation_loss(Discriminator(GeneratorConfig(resolution=8, style_dim=16, n_mlp=2, channel_base=256, channel_max=16)), D, x)


# --- CLIP directional loss

def test_clip_missing_weights_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match='Nothing is downloaded'): ClipDirectionalLoss(path=tmp_path/'ViT-B-32.pt')
    monkeypatch.setenv('STYLESPACE_LAB_PATHS_CLIP_WEIGHTS', '')
    with pytest.raises(FileNotFoundError, match=r'\[paths\] clip_weights is empty'): load_clip_image_encoder()
    bad = tmp_path/'not_jit.pt'; bad.write_bytes(b'garbage')
    with pytest.raises(ValueError, match='not a TorchScript file'): load_clip_image_encoder(bad)


def test_clip_loads_a_torchscript_file_from_settings(tmp_path, monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)   # torch 2.13 deprecates TorchScript, but CLIP checkpoints are TorchScript
        enc = torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5)))
        f = tmp_path/'enc.pt'; torch.jit.save(enc, str(f))
    monkeypatch.setenv('STYLESPACE_LAB_PATHS_CLIP_WEIGHTS', str(f))
    loss = ClipDirectionalLoss(size=8, source_images=torch.rand(2, 3, 8, 8), target_images=-torch.rand(2, 3, 8, 8))
    assert torch.isfinite(loss(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)))


class _Mean(nn.Module):
    def forward(self, x): return torch.cat([x.mean((2, 3)), torch.full((len(x), 1), 100.)], 1)


def test_clip_directional_maths():
    clip = ClipDirectionalLoss(encoder=_Mean(), size=None, mean=(0.5,) * 3, std=(0.5,) * 3)   # the encoder sees the images as given
    src = torch.rand(4, 3, 8, 8) * 0.2 - 0.6
    with pytest.raises(ValueError, match='no domain direction'): clip(src, src)
    clip.set_domain(-0.5 * torch.ones(2, 3, 8, 8), 0.5 * torch.ones(2, 3, 8, 8))
    assert clip(src, src + 0.3).item() == pytest.approx(0., abs=1e-3)
    assert clip(src, src - 0.3).item() == pytest.approx(2., abs=1e-3)
    shift = torch.tensor([0.3, -0.3, 0.]).view(1, 3, 1, 1)   # orthogonal to (1, 1, 1)
    zero = torch.zeros(2, 3, 8, 8)
    assert clip(zero, zero + shift).item() == pytest.approx(1., abs=1e-3)
    tgt = src.clone().requires_grad_(True)
    clip(src, tgt + 0.1 * torch.randn_like(src)).backward()
    assert tgt.grad is not None
    with pytest.raises(ValueError, match='pair up'): clip(src, src[:2])
    with pytest.raises(ValueError, match='same mean embedding'): clip.set_domain(src, src)


def test_registry():
    assert list(LOSSES) == ['cdc', 'adv', 'd3t_rec', 'd3t_con', 'd3t_distill', 'clip_dir']   # the order the loop computes them
    t = losses_table()
    assert {'trains', 'paper', 'default_weight'} <= set(t.columns)
