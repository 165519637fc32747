"Numerics of the fast path (issue 20): the same outputs, gradients and R1 double backward as the reference path."
import pytest
import torch
import torch.nn.functional as F

from stylespace_lab.checkpoints import load_discriminator, load_generator
from stylespace_lab.core import get_path
from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig, Styles
from stylespace_lab.layers import (configure_speed, demodulation, fir_kernel, modulated_conv2d, modulated_conv_act,
                                   precision_context, speed_settings)

CFG = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=512, channel_max=32)


def r1_penalty(D, real):
    "As in training: the logits of `real` and the mean squared norm of their input gradient, kept differentiable."
    real = real.detach().requires_grad_(True)
    logits = D(real)
    grad, = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return logits, grad.square().sum((1, 2, 3)).mean()


def close(a, b, rtol=1e-4):
    "Equal to float32 rounding, relative to the tensor's scale (sums of hundreds of products reorder differently)."
    assert a.shape == b.shape
    scale = b.abs().max().clamp_min(1e-12)
    assert (a - b).abs().max() <= rtol * scale, f"max difference {(a - b).abs().max():.3g} at scale {scale:.3g}"


def grads(model, loss_fn, impl, inputs):
    model.zero_grad(set_to_none=True)
    xs = [x.detach().clone().requires_grad_(True) for x in inputs]
    with speed_settings(model, impl=impl): out = loss_fn(*xs)
    out.backward()
    param_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.detach(), [x.grad for x in xs], param_grads


@pytest.mark.parametrize('noise', ['const', 'random', 'none'])
def test_generator_forward_same_as_reference(noise, one_thread):
    torch.manual_seed(0)
    G = Generator(CFG).eval()
    for s in G.synthesis.style_modules:
        if hasattr(s, 'noise_strength'): s.noise_strength.data.fill_(0.3)   # noise matters (it starts at zero)
    z = torch.randn(4, 16)
    with torch.no_grad():
        torch.manual_seed(1); fast = G(z, noise=noise)
        torch.manual_seed(1)
        with speed_settings(G, impl='reference'): ref = G(z, noise=noise)
    close(fast, ref)
    assert fast.is_contiguous()


def test_generator_gradients_same_as_reference(one_thread):
    torch.manual_seed(2)
    G = Generator(CFG)
    for s in G.synthesis.style_modules:
        if hasattr(s, 'noise_strength'): s.noise_strength.data.fill_(0.3)
    z, target = torch.randn(3, 16), torch.randn(3, 3, 16, 16)

    def loss(z):   # a loss that weights every pixel differently, so every path of the graph carries gradient
        return (G(z, noise='const') * target).sum()
    out_f, (gz_f,), gp_f = grads(G, loss, 'fast', [z])
    out_r, (gz_r,), gp_r = grads(G, loss, 'reference', [z])
    close(out_f, out_r)
    close(gz_f, gz_r)
    assert gp_f.keys() == gp_r.keys() == {n for n, _ in G.named_parameters()}
    for n in gp_r: close(gp_f[n], gp_r[n], rtol=2e-4)


def test_styles_gradient_and_features_same_as_reference(one_thread):
    torch.manual_seed(3)
    G = Generator(CFG)
    s = G.styles(G.mapping(torch.randn(2, 16))).flat().detach()

    def loss(flat):
        img, feats = G.synthesis(Styles.from_flat(flat, G.style_layout), noise='const', return_features=True)
        return img.square().sum() + sum(f.sin().sum() for f in feats.values())
    out_f, (gs_f,), _ = grads(G, loss, 'fast', [s])
    out_r, (gs_r,), _ = grads(G, loss, 'reference', [s])
    close(out_f, out_r)
    close(gs_f, gs_r, rtol=2e-4)


def test_discriminator_loss_gradients_and_r1_same_as_reference(one_thread):
    torch.manual_seed(4)
    D = Discriminator(GeneratorConfig(resolution=32, style_dim=16, n_mlp=2, channel_base=512, channel_max=32))
    real = torch.rand(4, 3, 32, 32) * 2 - 1

    def loss(x):   # the D step of training with R1: logistic loss on reals plus the gradient penalty
        logits, pen = r1_penalty(D, x)
        return F.softplus(-logits).mean() + pen
    out_f, _, gp_f = grads(D, loss, 'fast', [real])      # the penalty differentiates D's input gradient again
    out_r, _, gp_r = grads(D, loss, 'reference', [real])
    close(out_f, out_r)
    assert gp_f.keys() == gp_r.keys() == {n for n, _ in D.named_parameters()}
    for n in gp_r: close(gp_f[n], gp_r[n], rtol=2e-4)
    with torch.no_grad():
        feats_f = D(real, return_features=True)[1]
        with speed_settings(D, impl='reference'): feats_r = D(real, return_features=True)[1]
    for k in feats_r: close(feats_f[k], feats_r[k])


@pytest.mark.parametrize('up', [False, True])
def test_modulated_conv_act_equals_reference_composition(up):
    torch.manual_seed(5)
    x, w, s, b = torch.randn(3, 8, 6, 6), torch.randn(5, 8, 3, 3) / 8, torch.randn(3, 8), torch.randn(5)
    n = torch.randn(3, 1, 12 if up else 6, 12 if up else 6)
    ref = F.leaky_relu(modulated_conv2d(x, w, s, up=up, fir=fir_kernel()) + n + b[:, None, None], 0.2) * 2 ** 0.5
    close(modulated_conv_act(x, w, s, b, n, up=up, fir=fir_kernel()), ref)
    with pytest.raises(ValueError, match='needs the FIR kernel'): modulated_conv_act(x, w, s, b, up=True)


def test_committed_model_loads_and_draws_the_same_images(one_thread):
    path = get_path('checkpoints')/'noto32.pt'
    if not path.exists(): pytest.skip('checkpoints/noto32.pt is not here')
    G, D = load_generator(path), load_discriminator(path)
    ck = torch.load(path, map_location='cpu', weights_only=False)
    assert list(G.state_dict()) == list(ck['G_ema']) and list(D.state_dict()) == list(ck['D'])   # keys unchanged
    z = G.sample_z(8, seed=0)
    with torch.no_grad():
        fast = G(z, noise='const'); logit_f = D(fast)
        with speed_settings(G, impl='reference'), speed_settings(D, impl='reference'):
            ref = G(z, noise='const'); logit_r = D(ref)
    close(fast, ref)
    close(logit_f, logit_r)


@pytest.mark.parametrize('precision,tol', [('bf16', 0.08), ('fp16', 0.01)])
def test_mixed_precision_close_to_float32(precision, tol, one_thread):
    torch.manual_seed(6)
    G, D = Generator(CFG).eval(), Discriminator(CFG).eval()
    z = torch.randn(4, 16)
    with torch.no_grad():
        img = G(z, noise='const'); logit = D(img)
        with speed_settings(G, precision=precision), speed_settings(D, precision=precision):
            img_lp = G(z, noise='const'); logit_lp = D(img)
    assert img_lp.dtype == logit_lp.dtype == torch.float32
    assert (img_lp - img).abs().max() < tol * img.abs().max()
    assert (logit_lp - logit).abs().max() < 4 * tol * logit.abs().max().clamp_min(1)
    assert G.synthesis.precision == D.precision == 'fp32'      # speed_settings put the flag back


def test_demodulation_stays_float32_under_autocast():
    w, s = torch.randn(4, 6, 3, 3), torch.randn(2, 6)
    with precision_context('bf16', 'cpu'):
        d = demodulation(w, s)
    assert d.dtype == torch.float32
    close(d, torch.rsqrt((w[None] * s[:, None, :, None, None]).square().sum((2, 3, 4)) + 1e-8), rtol=1e-5)


def test_speed_flags_are_checked():
    G = Generator(CFG)
    with pytest.raises(ValueError, match='unknown impl'): configure_speed(G, impl='turbo')
    with pytest.raises(ValueError, match='unknown precision'): configure_speed(G, precision='fp8')
    with pytest.raises(ValueError, match='unknown precision'): precision_context('int8', 'cpu')
    configure_speed(G, impl='reference')
    assert {m.impl for m in G.modules() if hasattr(m, 'impl')} == {'reference'}
    with speed_settings(G, impl='fast'):
        assert {m.impl for m in G.modules() if hasattr(m, 'impl')} == {'fast'}
    assert {m.impl for m in G.modules() if hasattr(m, 'impl')} == {'reference'}


def test_fp32_precision_leaves_an_outer_autocast_alone():
    D = Discriminator(CFG)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        logit, feats = D(torch.randn(2, 3, 16, 16), return_features=True)
    assert feats['b16'].dtype == torch.bfloat16 and logit.dtype == torch.float32
