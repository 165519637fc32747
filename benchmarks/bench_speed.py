"""Speed v2 (issue 20): the fast path of the layers against the reference path, side by side in one run.

Measures on this machine, for the benchmark architecture (32x32, 128 channels at every resolution, style 128,
8 mapping layers, batch 16, float32): the conv-rate ceiling, G forward, the training iteration, a profile per
piece, the levers tried (per layer shape), adaptation steps/s on the committed source and the 500-sample
evaluation. Old and new run interleaved on the same weights (`layers.speed_settings`); every figure is a median
of several repeats, and the load average is printed beside it because the box is shared. Writes
`benchmarks/results.md`. Run: `python benchmarks/bench_speed.py [--reps N] [--compile] [--skip-adapt]`."""
import argparse
import copy
import math
import os
import platform
import statistics
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.layers import (StyledConv, ToRGB, blur, compile_or_eager, fir_kernel, modulated_conv2d,
                                   speed_settings, upsample2x)

BATCH = 16
IMPL_NAMES = {'old': 'reference', 'new': 'fast'}
ARCH = GeneratorConfig(resolution=32, style_dim=128, n_mlp=8, channel_base=4096, channel_max=128)
G_FORWARD_GFLOP = 0.51   # per image: the multiply-adds of the convs (transposed ones counted at input resolution)
OUT = Path(__file__).parent/'results.md'
report: list[str] = []


def say(text: str = ''):
    print(text, flush=True)
    report.append(text)


def cell(v) -> str:
    if isinstance(v, float): return f'{v:.3g}' if abs(v) < 1000 else f'{v:.0f}'
    return str(v)


def table(df: pd.DataFrame, title: str):
    "A markdown table (pandas' `to_markdown` needs `tabulate`, which the project does not install)."
    say(f'\n### {title}\n')
    say('| ' + ' | '.join(map(str, df.columns)) + ' |')
    say('|' + '---|' * len(df.columns))
    for row in df.itertuples(index=False): say('| ' + ' | '.join(cell(v) for v in row) + ' |')


def load() -> str: return '/'.join(f'{v:.2f}' for v in os.getloadavg())


def interleaved(fns: dict, reps: int, warmup: int = 1) -> dict:
    "Median seconds of each function, the functions taking turns (order rotated every repeat) so load hits all alike."
    for fn in fns.values():
        for _ in range(warmup): fn()
    times = {k: [] for k in fns}
    names = list(fns)
    for r in range(reps):
        for k in names[r % len(names):] + names[:r % len(names)]:
            t = time.perf_counter(); fns[k](); times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


# The training loop's pieces as 15_train had them when issue 20 was filed (the loop itself is being rewritten):
def sample_ws(G, batch: int, mixing_prob: float = 0., update_w_avg: bool = False) -> torch.Tensor:
    w = G.mapping(torch.randn(batch, G.z_dim), update_w_avg=update_w_avg)
    if mixing_prob <= 0 or torch.rand(()).item() >= mixing_prob: return w
    cutoff = int(torch.randint(1, G.num_ws, ()).item())
    layer = torch.arange(G.num_ws)[None, :, None]
    return torch.where(layer < cutoff, w[:, None], G.mapping(torch.randn(batch, G.z_dim))[:, None])


def r1_penalty(D, real: torch.Tensor):
    real = real.detach().requires_grad_(True)
    logits = D(real)
    grad, = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return logits, grad.square().sum((1, 2, 3)).mean()


@torch.no_grad()
def update_ema(G_ema, G, beta: float):
    for pe, p in zip(G_ema.parameters(), G.parameters()): pe.lerp_(p.detach(), 1 - beta)
    for be, b in zip(G_ema.buffers(), G.buffers()): be.copy_(b)


def models(seed: int = 0):
    torch.manual_seed(seed)
    return Generator(ARCH), Discriminator(ARCH)


# ---------------------------------------------------------------- the machine
def machine_rates(reps: int) -> dict:
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    x, w = torch.randn(BATCH, 128, 32, 32), torch.randn(128, 128, 3, 3)
    xc = x.contiguous(memory_format=torch.channels_last)
    xb = xc.bfloat16()
    t = interleaved({'sgemm': lambda: a @ b, 'conv': lambda: F.conv2d(x, w, padding=1),
                     'conv_cl': lambda: F.conv2d(xc, w, padding=1),
                     'conv_bf16': lambda: F.conv2d(xb, w.bfloat16(), padding=1)},
                    reps)
    conv_flop = BATCH * 32 * 32 * 128 * 128 * 9 * 2
    return dict(sgemm=2 * 1024 ** 3 / t['sgemm'] / 1e9, conv=conv_flop / t['conv'] / 1e9,
                conv_cl=conv_flop / t['conv_cl'] / 1e9, conv_bf16=conv_flop / t['conv_bf16'] / 1e9)


# ---------------------------------------------------------------- G forward
def g_forward(G, reps: int, extra: dict | None = None) -> dict:
    z = torch.randn(BATCH, ARCH.style_dim)

    def run(impl, precision='fp32'):
        def fn():
            with torch.no_grad(), speed_settings(G, impl=impl, precision=precision): G(z)
        return fn
    fns = {'old': run('reference'), 'new': run('fast'), 'new bf16': run('fast', 'bf16')}
    for name, model in (extra or {}).items():
        def fn(m=model):
            with torch.no_grad(): m(z)
        fns[name] = fn
    t = interleaved(fns, reps)
    return {k: BATCH / v for k, v in t.items()}


# ---------------------------------------------------------------- the training iteration
class Iteration:
    """One iteration of `train.train`'s loop on random data: D step (logistic loss), G step (non-saturating loss), EMA;
    the R1 D step runs every 16th iteration, so it is timed on its own and amortised. Augmentation is off (it costs
    the same on both paths). `fused_adam` uses Adam(fused=True) and a foreach EMA: a change to the training loop."""
    def __init__(self, G, D, impl: str, precision: str = 'fp32', fused_adam: bool = False, mixing: float = 0.9):
        self.G, self.D, self.impl, self.precision, self.mixing = G, D, impl, precision, mixing
        self.G_ema = copy.deepcopy(G).eval().requires_grad_(False)
        kw = dict(fused=True) if fused_adam else {}
        self.opt_g = torch.optim.Adam(G.parameters(), 2e-3, betas=(0., 0.99), **kw)
        self.opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0., 0.99), **kw)
        self.fused_adam = fused_adam
        self.real = torch.rand(BATCH, 3, 32, 32) * 2 - 1
        self.gamma = 0.0002 * 32 ** 2 / BATCH

    def settings(self):
        s1 = speed_settings(self.G, impl=self.impl, precision=self.precision)
        s2 = speed_settings(self.D, impl=self.impl, precision=self.precision)
        return s1, s2

    def d_step(self, r1: bool = False):
        G, D = self.G, self.D
        s1, s2 = self.settings()
        with s1, s2:
            with torch.no_grad(): fake = G.synthesis(G.styles(sample_ws(G, BATCH, self.mixing)))
            if r1: logits_real, pen = r1_penalty(D, self.real)
            else: logits_real, pen = D(self.real), torch.zeros(())
            loss = F.softplus(D(fake)).mean() + F.softplus(-logits_real).mean() + pen * (self.gamma / 2) * 16
            self.opt_d.zero_grad(set_to_none=True); loss.backward(); self.opt_d.step()

    def g_step(self):
        G, D = self.G, self.D
        s1, s2 = self.settings()
        with s1, s2:
            D.requires_grad_(False)
            fake = G.synthesis(G.styles(sample_ws(G, BATCH, self.mixing, update_w_avg=True)))
            loss = F.softplus(-D(fake)).mean()
            self.opt_g.zero_grad(set_to_none=True); loss.backward(); self.opt_g.step()
            D.requires_grad_(True)

    def ema(self):
        if self.fused_adam:
            with torch.no_grad():
                live = [p.detach() for p in self.G.parameters()]
                torch._foreach_lerp_(list(self.G_ema.parameters()), live, 1 - 0.999)
                for be, b in zip(self.G_ema.buffers(), self.G.buffers()): be.copy_(b)
        else: update_ema(self.G_ema, self.G, 0.999)


def training_iteration(reps: int, variants: dict) -> pd.DataFrame:
    "Seconds per training iteration for each variant `{name: Iteration kwargs}`; all on the same initial weights."
    its = {}
    for name, kw in variants.items():
        G, D = models(1)
        its[name] = Iteration(G, D, **kw)
    parts = {'D step': lambda it: it.d_step(), 'D step with R1': lambda it: it.d_step(r1=True),
             'G step': lambda it: it.g_step(), 'EMA': lambda it: it.ema()}
    rows = []
    for part, fn in parts.items():
        n = max(3, reps // 2) if 'R1' in part else reps
        t = interleaved({k: (lambda it=it: fn(it)) for k, it in its.items()}, n)
        rows.append({'part': part, **t})
    df = pd.DataFrame(rows).set_index('part')
    df.loc['iteration (R1 every 16)'] = (df.loc['D step'] + df.loc['G step'] + df.loc['EMA']
                                         + (df.loc['D step with R1'] - df.loc['D step']) / 16)
    return df


# ---------------------------------------------------------------- profile per piece
def classify(event) -> str:
    name, shapes = event.key, event.input_shapes or []
    if 'conv' in name:
        depthwise = any(len(s) == 4 and s[1] == 1 and s[2:] == [4, 4] for s in shapes)
        return 'FIR' if depthwise else 'conv'
    if 'normal' in name: return 'noise'
    return 'elementwise'


def split_by_op(fn, calls: int = 3) -> dict:
    "Share of `fn`'s CPU time by kind of op (conv, FIR, noise, elementwise incl. layout copies), from the profiler."
    from torch.profiler import ProfilerActivity, profile
    fn()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        for _ in range(calls): fn()
    shares = {}
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key.startswith('aten::'): shares[classify(e)] = shares.get(classify(e), 0.) + e.self_cpu_time_total
    total = sum(shares.values())
    return {k: v / total for k, v in shares.items()}


def fwd_bwd(module, inputs: list, kwargs: dict | None = None):
    "A function running `module(*inputs)` forward and backward with respect to its float inputs and parameters."
    def fn():
        xs = [x.detach().requires_grad_(x.is_floating_point()) if isinstance(x, torch.Tensor) else x for x in inputs]
        out = module(*xs, **(kwargs or {}))
        if isinstance(out, tuple): out = out[0]                         # D's epilogue: (logit, features)
        elif isinstance(out, list): out = torch.cat(list(out), 1)      # G.styles: one tensor per style layer
        out.backward(torch.ones_like(out) / out.numel())
    return fn


def profile_pieces(reps: int) -> pd.DataFrame:
    "Milliseconds of forward + backward per piece at batch 16, old and new, each piece replayed on its real inputs."
    G, D = models(2)
    d_top = ['from_rgb', *(f'blocks.{k}' for k in D.blocks), 'epilogue']
    replayed = [(n, m) for n, m in G.named_modules() if isinstance(m, (StyledConv, ToRGB))]
    replayed += [(f'D.{n}', D.get_submodule(n)) for n in d_top]
    captured = {}   # impl -> layer -> its inputs in a forward pass of that path (so each replay sees its own layout)

    def keep_inputs(impl, name):
        def hook(module, inputs, output): captured[impl].setdefault(name, inputs)
        return hook
    z = torch.randn(BATCH, ARCH.style_dim)
    for impl in IMPL_NAMES:
        captured[impl] = {}
        hooks = [m.register_forward_hook(keep_inputs(impl, n)) for n, m in replayed]
        torch.manual_seed(5)
        with torch.no_grad(), speed_settings(G, impl=IMPL_NAMES[impl]), speed_settings(D, impl=IMPL_NAMES[impl]):
            w = G.mapping(z); styles = G.styles(w); img = G.synthesis(styles, noise='random')
            D(img)
        for h in hooks: h.remove()
    pieces = {'mapping (8 layers)': (G.mapping, [z]), 'affine (all style layers)': (G.styles, [w])}
    convs = [(n, m) for n, m in G.named_modules() if isinstance(m, StyledConv)]
    rgbs = [(n, m) for n, m in G.named_modules() if isinstance(m, ToRGB)]
    fir = fir_kernel()
    small = torch.randn(BATCH, 3, 16, 16)
    rows = []

    def add(name, fns: dict, split: bool = False):
        t = interleaved(fns, reps)
        row = {'piece': name, 'old ms': 1e3 * t['old'], 'new ms': 1e3 * t['new']}
        if split:
            for impl in ('old', 'new'):
                for k, v in split_by_op(fns[impl]).items(): row[f'{impl} {k} ms'] = 1e3 * t[impl] * v
        rows.append(row)

    def both(module, inputs):
        def fn(impl):
            f = fwd_bwd(module, inputs)
            def g():
                with speed_settings(G, impl=impl): f()
            return g
        return {'old': fn('reference'), 'new': fn('fast')}

    for name, (m, inp) in pieces.items(): add(name, both(m, inp))

    def replay(layers, model):
        "`{'old': fn, 'new': fn}`: forward + backward of `layers` in sequence, each path on its own inputs."
        def path(impl):
            fns = [fwd_bwd(m, list(captured[impl][n])) for n, m in layers]
            def g():
                with speed_settings(model, impl=IMPL_NAMES[impl]):
                    for f in fns: f()
            return g
        return {impl: path(impl) for impl in IMPL_NAMES}
    add('modulated convs (7 layers)', replay(convs, G), split=True)
    add('ToRGB (4 layers)', replay(rgbs, G))
    skip = fwd_bwd(lambda x: upsample2x(x, fir), [small])
    add('image skip upsample (FIR, 3 ch)', {'old': skip, 'new': skip})
    for n in d_top:
        add(f'D {n}', replay([(f'D.{n}', D.get_submodule(n))], D), split=n.startswith('blocks.'))
    return pd.DataFrame(rows)


def optimiser_and_ema(reps: int) -> pd.DataFrame:
    G, D = models(3)
    for p in list(G.parameters()) + list(D.parameters()): p.grad = torch.randn_like(p) * 1e-3
    G_ema = copy.deepcopy(G)
    plain = [torch.optim.Adam(m.parameters(), 2e-3, betas=(0., 0.99)) for m in (G, D)]
    fused = [torch.optim.Adam(m.parameters(), 2e-3, betas=(0., 0.99), fused=True) for m in (G, D)]

    def foreach_ema():
        with torch.no_grad(): torch._foreach_lerp_(list(G_ema.parameters()), [p.detach() for p in G.parameters()], 1e-3)
    t = interleaved({'adam': lambda: [o.step() for o in plain], 'adam_fused': lambda: [o.step() for o in fused],
                     'ema': lambda: update_ema(G_ema, G, 0.999), 'ema_foreach': foreach_ema}, reps)
    return pd.DataFrame([{'piece': 'optimiser (Adam, G + D; new: fused=True)', 'old ms': 1e3 * t['adam'],
                          'new ms': 1e3 * t['adam_fused']},
                         {'piece': 'EMA (G; new: foreach lerp)', 'old ms': 1e3 * t['ema'],
                          'new ms': 1e3 * t['ema_foreach']}])


# ---------------------------------------------------------------- levers per layer shape
def modulation_levers(reps: int) -> pd.DataFrame:
    "Forward+backward of the modulated conv alone (no noise/bias/act) per layer shape: grouped vs unfused, NCHW vs CL."
    rows, fir = [], fir_kernel()
    for res, up in ((4, False), (8, True), (8, False), (16, True), (16, False), (32, True), (32, False)):
        h = res // 2 if up else res
        x, w, s = torch.randn(BATCH, 128, h, h), torch.randn(128, 128, 3, 3) / 34, torch.rand(BATCH, 128) + 0.5
        xc = x.contiguous(memory_format=torch.channels_last)
        def form(grouped):
            return lambda x, s: modulated_conv2d(x, w, s, up=up, fir=fir, fused=grouped)
        fns = {f'{g} {f}': fwd_bwd(form(g == 'grouped'), [xi, s])
               for g in ('unfused', 'grouped') for f, xi in (('NCHW', x), ('CL', xc))}
        t = interleaved(fns, reps)
        rows.append({'layer': f'{res}x{res}{" up" if up else ""}', **{f'{k} ms': 1e3 * v for k, v in t.items()}})
    return pd.DataFrame(rows)


def resampling_levers(reps: int) -> pd.DataFrame:
    "2x up of the 32x32 conv0 (forward+backward): transposed conv + FIR vs a polyphase 2x2 conv + pixel shuffle + FIR."
    x, w, fir = torch.randn(BATCH, 128, 16, 16), torch.randn(128, 128, 3, 3) / 34, fir_kernel()
    phase = w.new_zeros(2, 2, 128, 128, 2, 2)      # output phase (a, b); taps at input offsets (-1, 0)
    taps = {0: {0: 2, 1: 0}, 1: {1: 1}}              # phase -> {tap position: kernel index}
    for a, ta in taps.items():
        for b, tb in taps.items():
            for pa, ka in ta.items():
                for pb, kb in tb.items(): phase[a, b, :, :, pa, pb] = w[:, :, ka, kb]
    wp = phase.permute(2, 0, 1, 3, 4, 5).reshape(512, 128, 2, 2)

    def transposed(x): return blur(F.conv_transpose2d(x, w.transpose(0, 1), stride=2), fir * 4, pad=1)
    def polyphase(x): return blur(F.pixel_shuffle(F.conv2d(x, wp, padding=1), 2)[..., :33, :33], fir * 4, pad=1)
    def insert_zeros(x):   # upfirdn: zero insertion and FIR first, then a 3x3 conv at 32x32 (4x the multiply-adds)
        z = x.new_zeros(BATCH, 128, 32, 32); z[..., ::2, ::2] = x
        return F.conv2d(blur(z, fir * 4, pad=2)[..., :32, :32], w, padding=1)
    assert torch.allclose(transposed(x), polyphase(x), atol=1e-4)
    xc = x.contiguous(memory_format=torch.channels_last)
    fns = {'transposed NCHW': fwd_bwd(transposed, [x]), 'transposed CL': fwd_bwd(transposed, [xc]),
           'polyphase CL': fwd_bwd(polyphase, [xc]), 'zero-insert + conv CL': fwd_bwd(insert_zeros, [xc])}
    t = interleaved(fns, reps)
    return pd.DataFrame([{'2x up, 16->32, fwd+bwd': k, 'ms': 1e3 * v} for k, v in t.items()])


# ---------------------------------------------------------------- adaptation and evaluation
def adaptation(steps: int) -> pd.DataFrame:
    "Steps/s of `adapt` (batch 4) old vs new, from its log's wall clock between the first and the last logged step."
    from stylespace_lab.adapt import AdaptConfig, adapt
    from stylespace_lab.checkpoints import load_discriminator, load_generator
    from stylespace_lab.core import get_path
    ck = get_path('checkpoints')/'noto32.pt'
    G, D = load_generator(ck), load_discriminator(ck)
    shots = torch.rand(10, 3, 32, 32) * 2 - 1      # a step costs the same on any 10 images
    every = max(steps // 3, 1)
    rows = []
    for param in ('stylespace', 'affine_plus', 'full'):
        rate = {}
        for impl, precision, threads in (('reference', 'fp32', 2), ('fast', 'fp32', 2), ('fast', 'bf16', 2),
                                         ('fast', 'bf16', 1)):
            torch.set_num_threads(threads)
            cfg = AdaptConfig.from_profile('cpu', parameterization=param, steps=steps, batch_size=4, log_every=every)
            with speed_settings(G, impl, precision), speed_settings(D, impl, precision):
                log = adapt(G, shots, cfg, D=D, show_progress=False, snapshot_minutes=None).log
            steps_done, seconds = log.step.iloc[-1] - log.step.iloc[0], log.wall_s.iloc[-1] - log.wall_s.iloc[0]
            rate[impl, precision, threads] = steps_done / seconds
        torch.set_num_threads(2)
        old, new = rate['reference', 'fp32', 2], rate['fast', 'fp32', 2]
        rows.append({'parameterization': param, 'old steps/s': old, 'new steps/s': new, 'speed-up': new / old,
                     'new bf16 steps/s': rate['fast', 'bf16', 2], 'new bf16 1 thread steps/s': rate['fast', 'bf16', 1],
                     'bf16 1 thread speed-up': rate['fast', 'bf16', 1] / old})
    return pd.DataFrame(rows)


def evaluation(reps: int) -> pd.DataFrame:
    "Seconds for 500 samples of the committed model -> emoji-encoder features -> FD and KID against 500 others."
    from stylespace_lab.checkpoints import load_generator
    from stylespace_lab.core import get_path
    from stylespace_lab.features import generator_features, load_emoji_encoder
    from stylespace_lab.metrics import fid_from_features, kid
    G, enc = load_generator(get_path('checkpoints')/'noto32.pt'), load_emoji_encoder()
    real, fake = generator_features(enc, G, 500, seed=1), generator_features(enc, G, 500, seed=777)

    def features(impl, precision='fp32'):
        def fn():
            with speed_settings(G, impl=impl, precision=precision): generator_features(enc, G, 500, seed=777)
        return fn
    t = interleaved({'old': features('reference'), 'new': features('fast'), 'new bf16': features('fast', 'bf16')}, reps)
    t_fd = interleaved({'fd': lambda: fid_from_features(fake, real), 'kid': lambda: kid(fake, real)}, reps)
    rows = [{'part': 'samples -> features', **{f'{k} s': v for k, v in t.items()}},
            {'part': 'FD', **{f'{k} s': t_fd['fd'] for k in t}},
            {'part': 'KID (100 subsets)', **{f'{k} s': t_fd['kid'] for k in t}}]
    df = pd.DataFrame(rows)
    total = pd.DataFrame([{'part': 'total', **df.drop(columns='part').sum().to_dict()}])
    return pd.concat([df, total], ignore_index=True)


def bf16_conv_threads(reps: int) -> pd.DataFrame:
    "The 3x3 conv of the model's shape in bfloat16, forward and each half of the backward, at 1 and 2 threads."
    x, w = torch.randn(BATCH, 128, 32, 32).bfloat16(), torch.randn(128, 128, 3, 3).bfloat16()
    grad = torch.randn_like(F.conv2d(x, w, padding=1))

    def backward(mask):
        return lambda: torch.ops.aten.convolution_backward(grad, x, w, None, [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                                           mask)
    fns = {'forward': lambda: F.conv2d(x, w, padding=1), 'input gradient': backward((True, False, False)),
           'weight gradient': backward((False, True, False))}
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rows.append({'threads': threads, **{f'{k} ms': 1e3 * v for k, v in interleaved(fns, reps).items()}})
    return pd.DataFrame(rows)


WAIT_PROBE = """
import os, time, torch
from stylespace_lab.generator import Generator, GeneratorConfig
torch.set_num_threads(2); torch.manual_seed(0)
G = Generator(GeneratorConfig(resolution=32, style_dim=128, n_mlp=8, channel_base=4096, channel_max=128))
z = torch.randn(16, 128)
with torch.no_grad():
    G(z); ts = []
    for _ in range(7):
        t = time.perf_counter(); G(z); ts.append(time.perf_counter() - t)
print(16 / sorted(ts)[3])
"""


def wait_policy(reps: int = 3) -> pd.DataFrame:
    "G forward (fast) at 2 threads in fresh processes, OpenMP's default wait policy vs OMP_WAIT_POLICY=PASSIVE."
    import subprocess
    import sys
    rates = {'default': [], 'PASSIVE': []}
    for _ in range(reps):
        for policy in rates:
            env = {k: v for k, v in os.environ.items() if k != 'OMP_WAIT_POLICY'}
            if policy == 'PASSIVE': env['OMP_WAIT_POLICY'] = 'PASSIVE'
            out = subprocess.run([sys.executable, '-c', WAIT_PROBE], env=env, capture_output=True, text=True,
                                 check=True)
            rates[policy].append(float(out.stdout.split()[-1]))
    return pd.DataFrame([{'OpenMP wait policy (2 threads, fresh process)': k, 'G fwd new img/s': statistics.median(v),
                          'all repeats': ' '.join(f'{x:.0f}' for x in v)} for k, v in rates.items()])


# ---------------------------------------------------------------- main
def share_of_ceiling(img_s: float, gflop_s: float) -> str: return f'{100 * img_s * G_FORWARD_GFLOP / gflop_s:.0f}%'


def aims_table(H: pd.DataFrame, T: pd.DataFrame, A: pd.DataFrame | None, E: pd.DataFrame | None) -> pd.DataFrame:
    one, two = H.iloc[0], H.iloc[1]
    it = T[T.part == 'iteration (R1 every 16)'].set_index('threads')
    fused = 'new + fused Adam/foreach EMA'
    aims = [('G forward at 1 thread, share of the conv-rate ceiling (NCHW 3x3 conv, as in the issue)', '>= 85%',
             f"old {share_of_ceiling(one['G fwd old img/s'], one['conv GFLOP/s'])}, "
             f"new {share_of_ceiling(one['G fwd new img/s'], one['conv GFLOP/s'])} (of the channels-last ceiling: "
             f"{share_of_ceiling(one['G fwd new img/s'], one['conv_cl GFLOP/s'])})")]
    if 'G fwd new compiled img/s' in H:
        aims.append(('... with torch.compile (sampling/evaluation only)', '>= 85%',
                     share_of_ceiling(one['G fwd new compiled img/s'], one['conv GFLOP/s'])))
    aims.append(('G forward, 2 threads / 1 thread', '>= 1.8x',
                 f"old {two['G fwd old img/s'] / one['G fwd old img/s']:.2f}x, "
                 f"new {two['G fwd new img/s'] / one['G fwd new img/s']:.2f}x"))
    for threads in (1, 2):
        aims.append((f'training iteration, old / new, {threads} thread(s)', '>= 1.5x',
                     f"{it.loc[threads, 'old'] / it.loc[threads, 'new']:.2f}x ({it.loc[threads, 'old']:.2f} s -> "
                     f"{it.loc[threads, 'new']:.2f} s); with fused Adam/foreach EMA "
                     f"{it.loc[threads, 'old'] / it.loc[threads, fused]:.2f}x; with the bf16 flag "
                     f"{it.loc[threads, 'old'] / it.loc[threads, 'new bf16']:.2f}x"))
    aims.append(('bf16 flag (other numerics): G forward vs new float32, 1 thread', 'lever',
                 f"{one['G fwd new bf16 img/s'] / one['G fwd new img/s']:.2f}x"))
    if A is not None:
        for _, r in A.iterrows():
            aims.append((f"adaptation `{r.parameterization}` steps/s, batch 4, 2 threads", '>= 2x',
                         f"{r['speed-up']:.2f}x ({r['old steps/s']:.2f} -> {r['new steps/s']:.2f}); "
                         f"bf16 flag at 1 thread {r['bf16 1 thread speed-up']:.2f}x"))
    if E is not None:
        total = E.set_index('part').loc['total']
        aims.append(('evaluation: 500 samples -> features -> FD/KID, 2 threads', '<= 3 s',
                     f"old {total['old s']:.2f} s, new {total['new s']:.2f} s, new bf16 {total['new bf16 s']:.2f} s"))
    return pd.DataFrame(aims, columns=['aim (issue 20)', 'target', 'measured'])


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--compile', action='store_true', help='also time torch.compile of the fast G forward (a minute)')
    ap.add_argument('--skip-adapt', action='store_true', help='skip adaptation and evaluation')
    ap.add_argument('--adapt-steps', type=int, default=18)
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    t_start = time.time()
    say('# Speed v2 (issue 20): fast vs reference path\n')
    say(f'Written by `benchmarks/bench_speed.py` on {time.strftime("%Y-%m-%d %H:%M")}, '
        f'{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} '
        f'({torch.backends.cpu.get_cpu_capability()}), batch {BATCH}, float32 unless said; medians of {args.reps} '
        f'interleaved repeats. OMP_WAIT_POLICY={os.environ.get("OMP_WAIT_POLICY", "(unset: default)")}. '
        f'Load average (1/5/15 min) at the start: {load()}.')

    heads = []
    G, D = models(0)
    compiled = {}
    if args.compile:
        torch.set_num_threads(1)
        t = time.time()
        compiled['new compiled'] = compile_or_eager(copy.deepcopy(G).eval(), (torch.randn(BATCH, ARCH.style_dim),))
        say(f'\ntorch.compile of the fast G forward: {time.time() - t:.0f} s at 1 thread')
    for threads in (1, 2):
        torch.set_num_threads(threads)
        rates = machine_rates(args.reps)
        fwd = g_forward(G, args.reps, compiled)
        heads.append({'threads': threads, 'load': load(), **{f'{k} GFLOP/s': v for k, v in rates.items()},
                      **{f'G fwd {k} img/s': v for k, v in fwd.items()}})
    H = pd.DataFrame(heads)
    table(H, 'Machine rates and G forward (no grad)')

    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        df = training_iteration(max(3, args.reps // 2), {
            'old': dict(impl='reference'), 'new': dict(impl='fast'),
            'new + fused Adam/foreach EMA': dict(impl='fast', fused_adam=True),
            'new bf16': dict(impl='fast', precision='bf16')})
        for part, r in df.iterrows(): rows.append({'threads': threads, 'part': part, **r.to_dict()})
        say(f'(training iteration at {threads} thread(s) done, load {load()})')
    T = pd.DataFrame(rows)
    table(T, 'Training iteration, seconds (D step + G step + EMA + R1 D step amortised over 16)')

    torch.set_num_threads(1)
    few = max(3, args.reps // 2)    # the piece and lever tables: enough repeats to rank, fewer to keep the run short
    P = pd.concat([profile_pieces(few), optimiser_and_ema(args.reps)], ignore_index=True)
    P['speed-up'] = P['old ms'] / P['new ms']
    first = ['piece', 'old ms', 'new ms', 'speed-up']
    table(P[first + [c for c in P.columns if c not in first]].astype(object).fillna(''),
          'Profile per piece, 1 thread: forward + backward at batch 16 (optimiser and EMA: one step), ms')
    table(modulation_levers(few),
          'Lever: modulation form per layer shape, modulated conv alone, fwd+bwd, 1 thread')
    table(resampling_levers(few), 'Lever: FIR upsampling forms, 1 thread')
    table(wait_policy(), f'Lever: OpenMP wait policy on a shared box (load {load()})')
    table(bf16_conv_threads(few),
          'bf16 3x3 conv (batch 16, 128 channels, 32x32) by threads, ms: where 2-thread bf16 training loses')

    A = E = None
    if not args.skip_adapt:
        torch.set_num_threads(2)
        A = adaptation(args.adapt_steps)
        table(A, f'Adaptation on checkpoints/noto32.pt, batch 4, 2 threads, steps/s between the first and last of '
                 f'{args.adapt_steps} logged steps (set-up excluded; load {load()})')
        E = evaluation(2)
        table(E, f'Evaluation on checkpoints/noto32.pt, 2 threads, seconds (load {load()})')

    table(aims_table(H, T, A, E), 'The aims, as measured ratios')
    say(f'\nTotal run {time.time() - t_start:.0f} s; load average at the end: {load()}. No GPU on this machine: '
        'the CUDA figures of the issue are not measured here.')
    OUT.write_text('\n'.join(report) + '\n')
    print(f'\nwrote {OUT}')
