"""The converters: each public format re-created here (same key names, shapes and pickle class paths) from one of
our generators with known weights, converted and compared; and their bad input."""
import argparse
import importlib
import os
import pickle
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

from stylespace_lab.checkpoints import save_checkpoint
from stylespace_lab.convert import (_randomize_, convert_nvlabs, convert_rosinality, export_rosinality,
                                    load_nvlabs_pickle)
from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.layers import fir_kernel

SMALL = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=128, channel_max=16)   # channels 16, 16, 8


pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py


@pytest.fixture(scope='module')
def nets(one_thread):
    torch.manual_seed(0)
    return _randomize_(Generator(SMALL)).eval(), _randomize_(Discriminator(SMALL), seed=1).eval()


def images(G, z, psi=1.):
    with torch.no_grad(): return G(z, psi=psi, noise='const')


Z = torch.randn(4, 16, generator=torch.Generator().manual_seed(3))


def assert_same_images(G1, G2, tol=1e-5):
    for psi in (1., 0.6):
        a, b = images(G1, Z, psi), images(G2, Z, psi)
        assert (a - b).abs().max().item() <= tol * max(1., a.abs().max().item())



# --- rosinality/stylegan2-pytorch ------------------------------------------------------------------------------

def rosinality_recreation(G: Generator, D: Discriminator) -> dict:
    """A rosinality training snapshot written from scratch with its key names and shapes (model.py's Generator
    and Discriminator state dicts), independent of the converter's own key tables."""
    s, c = G.state_dict(), G.cfg
    g = {}
    for i in range(c.n_mlp):
        for part in ('weight', 'bias'): g[f'style.{i + 1}.{part}'] = s[f'mapping.layers.{i}.{part}']
    g['input.input'] = s['synthesis.const'][None]
    def styled(ros, ours, noise_i, blur):
        g[f'{ros}.conv.weight'] = s[f'{ours}.weight'][None]
        for part in ('weight', 'bias'): g[f'{ros}.conv.modulation.{part}'] = s[f'{ours}.affine.{part}']
        g[f'{ros}.noise.weight'] = s[f'{ours}.noise_strength'].reshape(1)
        g[f'{ros}.activate.bias'] = s[f'{ours}.bias']
        g[f'noises.noise_{noise_i}'] = s[f'{ours}.noise_const'][None, None]
        if blur: g[f'{ros}.conv.blur.kernel'] = fir_kernel() * 4
    def torgb(ros, ours, up):
        g[f'{ros}.conv.weight'] = s[f'{ours}.weight'][None]
        for part in ('weight', 'bias'): g[f'{ros}.conv.modulation.{part}'] = s[f'{ours}.affine.{part}']
        g[f'{ros}.bias'] = s[f'{ours}.bias'].reshape(1, 3, 1, 1)
        if up: g[f'{ros}.upsample.kernel'] = fir_kernel() * 4
    styled('conv1', 'synthesis.blocks.b4.conv1', 0, False)
    torgb('to_rgb1', 'synthesis.blocks.b4.torgb', False)
    for k, r in enumerate(c.resolutions[1:]):
        styled(f'convs.{2 * k}', f'synthesis.blocks.b{r}.conv0', 2 * k + 1, True)
        styled(f'convs.{2 * k + 1}', f'synthesis.blocks.b{r}.conv1', 2 * k + 2, False)
        torgb(f'to_rgbs.{k}', f'synthesis.blocks.b{r}.torgb', True)
    t = D.state_dict()
    d = {'convs.0.0.weight': t['from_rgb.weight'], 'convs.0.1.bias': t['from_rgb.bias']}
    for i, r in enumerate(reversed(c.resolutions[1:]), start=1):
        b = f'blocks.b{r}'
        d.update({f'convs.{i}.conv1.0.weight': t[f'{b}.conv0.weight'], f'convs.{i}.conv1.1.bias': t[f'{b}.conv0.bias'],
                  f'convs.{i}.conv2.0.kernel': fir_kernel(), f'convs.{i}.conv2.1.weight': t[f'{b}.conv1.weight'],
                  f'convs.{i}.conv2.2.bias': t[f'{b}.conv1.bias'], f'convs.{i}.skip.0.kernel': fir_kernel(),
                  f'convs.{i}.skip.1.weight': t[f'{b}.skip.weight']})
    d.update({'final_conv.0.weight': t['epilogue.conv.weight'], 'final_conv.1.bias': t['epilogue.conv.bias'],
              'final_linear.0.weight': t['epilogue.fc.weight'], 'final_linear.0.bias': t['epilogue.fc.bias'],
              'final_linear.1.weight': t['epilogue.out.weight'], 'final_linear.1.bias': t['epilogue.out.bias']})
    clone = lambda sd: {k: v.detach().clone() for k, v in sd.items()}
    return {'g': clone(g), 'd': clone(d), 'g_ema': clone(g), 'g_optim': {'state': {}, 'param_groups': []},
            'args': argparse.Namespace(size=c.resolution, latent=c.style_dim, n_mlp=c.n_mlp, channel_multiplier=2),
            'latent_avg': s['mapping.w_avg'].clone()}


def test_rosinality_recreation_reproduces_images(nets, tmp_path):
    G, D = nets
    torch.save(rosinality_recreation(G, D), tmp_path / 'ros.pt')
    G2, D2 = convert_rosinality(tmp_path / 'ros.pt')
    assert (G2.cfg.resolution, G2.cfg.style_dim, G2.cfg.n_mlp) == (16, 16, 2)
    assert all(G2.cfg.channels(r) == SMALL.channels(r) for r in SMALL.resolutions)
    assert_same_images(G, G2)
    x = images(G, Z)
    with torch.no_grad(): assert torch.allclose(D2(x), D(x), atol=1e-5)
    G3, _ = convert_rosinality(tmp_path / 'ros.pt', which='g')
    assert_same_images(G, G3)


def test_rosinality_export_round_trip_is_identity(nets, tmp_path):
    G, D = nets
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # the small layout is not one rosinality's Generator builds: a warning
        export_rosinality(tmp_path / 'out.pt', G, D)
    G2, D2 = convert_rosinality(tmp_path / 'out.pt')
    assert G2.cfg == G.cfg
    assert all(torch.equal(v, G2.state_dict()[k]) for k, v in G.state_dict().items())
    assert all(torch.equal(v, D2.state_dict()[k]) for k, v in D.state_dict().items())
    assert torch.equal(images(G, Z, 0.7), images(G2, Z, 0.7))
    # the written file is the re-created format: same keys and shapes
    ros = rosinality_recreation(G, D)
    out = torch.load(tmp_path / 'out.pt', weights_only=True)
    for part in ('g_ema', 'd'):
        assert {k: tuple(v.shape) for k, v in out[part].items()} == {k: tuple(v.shape) for k, v in ros[part].items()}


def test_rosinality_bad_input(nets, tmp_path):
    G, D = nets
    ros = rosinality_recreation(G, D)
    del ros['latent_avg']
    with pytest.warns(UserWarning, match='latent_avg'): convert_rosinality(ros)
    with pytest.raises(ValueError, match='only a discriminator'): convert_rosinality({'d': ros['d']})
    g = dict(ros['g_ema']); del g['to_rgbs.0.conv.modulation.bias']
    with pytest.raises(ValueError, match='missing'): convert_rosinality({'g_ema': g})
    # a channel_multiplier=4-like layout (16 channels at 4x4 and 8x8, then 32 at 16x16) is not min(base // res, max)
    g = dict(ros['g_ema']); g['to_rgbs.1.conv.weight'] = torch.zeros(1, 3, 32, 1, 1)
    with pytest.raises(ValueError, match='cannot be expressed'): convert_rosinality(g)


# --- NVlabs network pickles -------------------------------------------------------------------------------------

PERSISTENCE = '''
"""Re-creation of the pickling side of NVlabs torch_utils/persistence.py (the unpickling side execs module_src)."""
import copy, inspect, sys
_version = 6

def persistent_class(orig_class):
    module_src = inspect.getsource(sys.modules[orig_class.__module__])
    class Decorator(orig_class):
        _orig_module_src, _orig_class_name = module_src, orig_class.__name__
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args, self._init_kwargs = copy.deepcopy(args), copy.deepcopy(kwargs)
        def __reduce__(self):
            fields = list(super().__reduce__()) + [None] * 3
            meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                        class_name=self._orig_class_name, state=fields[2])
            return (_reconstruct_persistent_obj, (meta,), None)
    Decorator.__name__ = orig_class.__name__
    return Decorator

def _reconstruct_persistent_obj(meta):
    raise RuntimeError("NVlabs' loader would exec meta['module_src'] here")
'''

DNNLIB_UTIL = '''
class EasyDict(dict):
    def __getattr__(self, name):
        try: return self[name]
        except KeyError: raise AttributeError(name)
    def __setattr__(self, name, value): self[name] = value
'''

NETWORKS = '''
"""Minimal re-creation of NVlabs training/networks_stylegan2.py: the same classes, attribute and tensor names, shapes."""
import numpy as np
import torch
from torch_utils import persistence

if __name__ != 'training.networks_stylegan2':   # only true if someone execs this pickled source under another name
    open(__import__('os').environ['STYLESPACE_TEST_MARKER'], 'w').write('module_src was executed')

def setup_filter(f):
    f = torch.as_tensor(f, dtype=torch.float32); f = f.ger(f); return f / f.sum()

@persistence.persistent_class
class FullyConnectedLayer(torch.nn.Module):
    def __init__(self, in_features, out_features, bias=True, activation='linear', lr_multiplier=1, bias_init=0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], np.float32(bias_init))) if bias else None
        self.weight_gain, self.bias_gain = lr_multiplier / np.sqrt(in_features), lr_multiplier

@persistence.persistent_class
class Conv2dLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, bias=True, activation='linear', down=1, conv_clamp=None):
        super().__init__()
        self.activation, self.down, self.conv_clamp = activation, down, conv_clamp
        self.register_buffer('resample_filter', setup_filter([1, 3, 3, 1]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

@persistence.persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws, num_layers=8, lr_multiplier=0.01, w_avg_beta=0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws, self.num_layers, self.w_avg_beta = z_dim, c_dim, w_dim, num_ws, num_layers, w_avg_beta
        for idx in range(num_layers):
            setattr(self, f'fc{idx}', FullyConnectedLayer(z_dim if idx == 0 else w_dim, w_dim, activation='lrelu', lr_multiplier=lr_multiplier))
        self.register_buffer('w_avg', torch.zeros([w_dim]))

@persistence.persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, kernel_size=3, up=1, conv_clamp=None):
        super().__init__()
        self.resolution, self.up, self.use_noise, self.activation, self.conv_clamp = resolution, up, True, 'lrelu', conv_clamp
        self.register_buffer('resample_filter', setup_filter([1, 3, 3, 1]))
        self.padding, self.act_gain = kernel_size // 2, np.sqrt(2)
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.register_buffer('noise_const', torch.randn([resolution, resolution]))
        self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

@persistence.persistent_class
class ToRGBLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * kernel_size ** 2)

@persistence.persistent_class
class SynthesisBlock(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, resolution, img_channels, is_last, architecture='skip', conv_clamp=256, use_fp16=False):
        super().__init__()
        self.in_channels, self.resolution, self.is_last, self.architecture, self.use_fp16 = in_channels, resolution, is_last, architecture, use_fp16
        self.register_buffer('resample_filter', setup_filter([1, 3, 3, 1]))
        self.num_conv = self.num_torgb = 0
        if in_channels == 0: self.const = torch.nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else: self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=2, conv_clamp=conv_clamp); self.num_conv += 1
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, conv_clamp=conv_clamp); self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim, conv_clamp=conv_clamp); self.num_torgb += 1

@persistence.persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(self, w_dim, img_resolution, img_channels, channel_base=32768, channel_max=512, num_fp16_res=4, **block_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(2, int(np.log2(img_resolution)) + 1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions}
        self.num_ws = 0
        for r in self.block_resolutions:
            block = SynthesisBlock(ch[r // 2] if r > 4 else 0, ch[r], w_dim, r, img_channels, r == img_resolution, **block_kwargs)
            self.num_ws += block.num_conv + (block.num_torgb if r == img_resolution else 0)
            setattr(self, f'b{r}', block)

@persistence.persistent_class
class Generator(torch.nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs={}, **synthesis_kwargs):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.img_resolution, self.img_channels = z_dim, c_dim, w_dim, img_resolution, img_channels
        self.synthesis = SynthesisNetwork(w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels, **synthesis_kwargs)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **mapping_kwargs)

@persistence.persistent_class
class DiscriminatorBlock(torch.nn.Module):
    def __init__(self, in_channels, tmp_channels, out_channels, resolution, img_channels, architecture='resnet', conv_clamp=None):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.register_buffer('resample_filter', setup_filter([1, 3, 3, 1]))
        if in_channels == 0: self.fromrgb = Conv2dLayer(img_channels, tmp_channels, 1, activation='lrelu', conv_clamp=conv_clamp)
        self.conv0 = Conv2dLayer(tmp_channels, tmp_channels, 3, activation='lrelu', conv_clamp=conv_clamp)
        self.conv1 = Conv2dLayer(tmp_channels, out_channels, 3, activation='lrelu', down=2, conv_clamp=conv_clamp)
        self.skip = Conv2dLayer(tmp_channels, out_channels, 1, bias=False, down=2)

@persistence.persistent_class
class MinibatchStdLayer(torch.nn.Module):
    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

@persistence.persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(self, in_channels, cmap_dim, resolution, img_channels, architecture='resnet', mbstd_group_size=4, mbstd_num_channels=1, conv_clamp=None):
        super().__init__()
        self.in_channels, self.cmap_dim, self.resolution, self.architecture = in_channels, cmap_dim, resolution, architecture
        self.mbstd = MinibatchStdLayer(mbstd_group_size, mbstd_num_channels)
        self.conv = Conv2dLayer(in_channels + mbstd_num_channels, in_channels, 3, activation='lrelu', conv_clamp=conv_clamp)
        self.fc = FullyConnectedLayer(in_channels * resolution ** 2, in_channels, activation='lrelu')
        self.out = FullyConnectedLayer(in_channels, 1)

@persistence.persistent_class
class Discriminator(torch.nn.Module):
    def __init__(self, c_dim, img_resolution, img_channels, architecture='resnet', channel_base=32768, channel_max=512, conv_clamp=256, epilogue_kwargs={}):
        super().__init__()
        self.c_dim, self.img_resolution, self.img_channels = c_dim, img_resolution, img_channels
        self.block_resolutions = [2 ** i for i in range(int(np.log2(img_resolution)), 2, -1)]
        ch = {r: min(channel_base // r, channel_max) for r in self.block_resolutions + [4]}
        for r in self.block_resolutions:
            setattr(self, f'b{r}', DiscriminatorBlock(ch[r] if r < img_resolution else 0, ch[r], ch[r // 2], r, img_channels, architecture, conv_clamp))
        self.b4 = DiscriminatorEpilogue(ch[4], 0, 4, img_channels, architecture, conv_clamp=conv_clamp, **epilogue_kwargs)
'''

FAKE_MODULES = ('torch_utils', 'torch_utils.persistence', 'dnnlib', 'dnnlib.util', 'training',
                'training.networks_stylegan2')


def nvlabs_recreation(G: Generator, D: Discriminator, tmp_path: Path) -> bytes:
    "A network pickle written by re-created NVlabs classes (from fake packages on disk), holding our G/D's weights."
    root = tmp_path / 'fake_nvlabs'
    for rel, src in {'torch_utils/__init__.py': '', 'torch_utils/persistence.py': PERSISTENCE,
                     'dnnlib/__init__.py': 'from .util import EasyDict\n', 'dnnlib/util.py': DNNLIB_UTIL,
                     'training/__init__.py': '', 'training/networks_stylegan2.py': NETWORKS}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(src))
    assert not any(m in sys.modules for m in FAKE_MODULES)
    sys.path.insert(0, str(root))
    try:
        dnnlib, nets = importlib.import_module('dnnlib'), importlib.import_module('training.networks_stylegan2')
        c = G.cfg
        nG = nets.Generator(z_dim=c.style_dim, c_dim=0, w_dim=c.style_dim, img_resolution=c.resolution, img_channels=3,
                            mapping_kwargs=dnnlib.EasyDict(num_layers=c.n_mlp, lr_multiplier=c.mapping_lr_mul,
                                                           w_avg_beta=c.w_avg_beta),
                            channel_base=c.channel_base, channel_max=c.channel_max, num_fp16_res=2, conv_clamp=256)
        nD = nets.Discriminator(c_dim=0, img_resolution=c.resolution, img_channels=3, channel_base=c.channel_base,
                                channel_max=c.channel_max, epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=2))
        g = {}
        for k, v in G.state_dict().items():
            if k.startswith('mapping.layers.'): k = 'mapping.fc' + k[len('mapping.layers.'):]
            elif k == 'synthesis.const': k = 'synthesis.b4.const'
            else: k = k.replace('synthesis.blocks.', 'synthesis.')
            g[k] = v
        d = {}
        for k, v in D.state_dict().items():
            if k.startswith('from_rgb.'): k = f'b{c.resolution}.fromrgb.' + k[len('from_rgb.'):]
            elif k.startswith('epilogue.'): k = 'b4.' + k[len('epilogue.'):]
            else: k = k[len('blocks.'):]
            d[k] = v
        for net, sd in ((nG, g), (nD, d)):
            own = net.state_dict()
            assert set(own) - set(sd) == {k for k in own if k.endswith('resample_filter')}, set(own) ^ set(sd)
            net.load_state_dict({**own, **sd})
        return pickle.dumps(dict(G=nG, D=nD, G_ema=nG, augment_pipe=None,
                                 training_set_kwargs=dnnlib.EasyDict(path='emoji.zip')))
    finally:
        sys.path.remove(str(root))
        for m in FAKE_MODULES: sys.modules.pop(m, None)


def test_nvlabs_recreation_reproduces_images(nets, tmp_path, monkeypatch):
    G, D = nets
    marker = tmp_path / 'executed.txt'
    monkeypatch.setenv('STYLESPACE_TEST_MARKER', str(marker))
    p = tmp_path / 'network-snapshot-000100.pkl'
    p.write_bytes(nvlabs_recreation(G, D, tmp_path))
    assert not any(m in sys.modules for m in FAKE_MODULES)      # converting needs none of NVlabs' modules
    data = load_nvlabs_pickle(p)
    assert data['G'].class_name == 'Generator' and 'module_src' not in data['G'].state
    G2, D2 = convert_nvlabs(p)
    assert not marker.exists()                                 # the pickled module source never ran
    assert G2.cfg == G.cfg
    assert_same_images(G, G2)
    assert D2.epilogue.mbstd_group == 2                        # the file's minibatch-std group, not our default 4
    D_ref = Discriminator(SMALL, mbstd_group=2); D_ref.load_state_dict(D.state_dict())
    x = images(G, Z)
    with torch.no_grad(): assert torch.allclose(D2(x), D_ref(x), atol=1e-5)
    G3, _ = convert_nvlabs(p, which='G')
    assert_same_images(G, G3)


class _Payload:
    def __init__(self, marker): self.marker = marker
    def __reduce__(self): return (os.system, (f'echo pwned > {self.marker}',))


def test_nvlabs_os_system_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / 'pwned.txt'
    p = tmp_path / 'evil.pkl'
    p.write_bytes(pickle.dumps({'G': _Payload(marker), 'G_ema': None}))
    with pytest.raises(ValueError, match=r'refusing to unpickle \w+\.system'): convert_nvlabs(p)
    assert not marker.exists()


def test_nvlabs_build_on_a_class_is_refused(tmp_path):
    "BUILD applied to an allow-listed class would patch it process-wide (here: add an attribute to torch.Tensor)."
    patch = (pickle.PROTO + b'\x02' + pickle.GLOBAL + b'torch\nTensor\n' + pickle.NONE + pickle.EMPTY_DICT
             + pickle.SHORT_BINUNICODE + b'\x06pwned!' + pickle.NONE + pickle.SETITEM + pickle.TUPLE2 + pickle.BUILD
             + pickle.STOP)
    (tmp_path / 'patch.pkl').write_bytes(patch)
    with pytest.raises(ValueError, match='refusing to set the state of class torch.Tensor'):
        load_nvlabs_pickle(tmp_path / 'patch.pkl')
    assert not hasattr(torch.Tensor, 'pwned!')


class UnknownThing:
    pass


def test_nvlabs_unknown_class_and_wrong_files(nets, tmp_path):
    (tmp_path / 'u.pkl').write_bytes(pickle.dumps({'G': UnknownThing()}))
    with pytest.raises(ValueError, match=r'refusing to unpickle (test_convert|tests\.test_convert)\.UnknownThing'):
        convert_nvlabs(tmp_path / 'u.pkl')
    (tmp_path / 'e.pkl').write_bytes(pickle.dumps([eval]))
    with pytest.raises(ValueError, match='builtins.eval'): convert_nvlabs(tmp_path / 'e.pkl')
    G, D = nets
    save_checkpoint(tmp_path / 'ours.pt', G_ema=G)
    with pytest.raises(ValueError, match='torch.save'): convert_nvlabs(tmp_path / 'ours.pt')
    (tmp_path / 'plain.pkl').write_bytes(pickle.dumps({'a': 1}))
    with pytest.raises(ValueError, match='not an NVlabs network pickle'): convert_nvlabs(tmp_path / 'plain.pkl')
    (tmp_path / 'trunc.pkl').write_bytes(pickle.dumps({'G': [torch.ones(3)] * 3})[:40])
    with pytest.raises(ValueError): convert_nvlabs(tmp_path / 'trunc.pkl')
