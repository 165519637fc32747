"""Model speed on this machine: G forward img/s (batch 16, no grad) and D / G training-step time, for the
32x32 `cpu` architecture (channel_base 2048, channel_max 128, style_dim 128, n_mlp 8; and channel_base 4096 for
comparison: 128 channels at 32x32), for the layers' paths: the reference path with unfused or grouped
modulation, and the fast path (issue 20), at 1 and 2 threads. Budgets (issue 3): G forward >= 55 img/s and a
D+G step (batch 16, no regularisation) <= 1.2 s at 1 thread. Run: `python benchmarks/bench_model.py [--reps N]`.
Ratios between rows are what to compare; `bench_speed.py` is the fuller, interleaved comparison."""
import argparse
import time

import pandas as pd
import torch
import torch.nn.functional as F

from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.layers import configure_speed

PATHS = {'reference unfused': ('reference', False), 'reference grouped': ('reference', True), 'fast': ('fast', False)}

def set_path(model, path: str):
    impl, grouped = PATHS[path]
    configure_speed(model, impl=impl)
    for m in model.modules():
        if hasattr(m, 'fused'): m.fused = grouped

def timeit(fn, reps: int) -> float:
    fn()  # warm-up
    t = time.perf_counter()
    for _ in range(reps): fn()
    return (time.perf_counter() - t) / reps

def bench(threads: int, path: str, reps: int, channel_base: int = 2048, batch: int = 16) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = GeneratorConfig(resolution=32, style_dim=128, n_mlp=8, channel_base=channel_base, channel_max=128)
    G, D = Generator(cfg), Discriminator(cfg)
    set_path(G, path); set_path(D, path)
    opt_g = torch.optim.Adam(G.parameters(), 2e-3, betas=(0., 0.99))
    opt_d = torch.optim.Adam(D.parameters(), 2e-3, betas=(0., 0.99))
    z, real = torch.randn(batch, cfg.style_dim), torch.randn(batch, 3, 32, 32)

    def g_forward():
        with torch.no_grad(): G(z)

    def d_step():
        with torch.no_grad(): fake = G(z)
        loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        opt_d.zero_grad(set_to_none=True); loss.backward(); opt_d.step()

    def g_step():
        loss = F.softplus(-D(G(z))).mean()
        opt_g.zero_grad(set_to_none=True); loss.backward(); opt_g.step()

    t_fwd, t_d, t_g = timeit(g_forward, reps), timeit(d_step, reps), timeit(g_step, reps)
    return dict(channel_base=channel_base, threads=threads, path=path, G_forward_img_s=batch / t_fwd,
                D_step_ms=1000 * t_d, G_step_ms=1000 * t_g, DG_step_s=t_d + t_g)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--reps', type=int, default=5)
    args = ap.parse_args()
    rows = [bench(t, p, args.reps, cb) for cb in (2048, 4096) for t in (1, 2) for p in PATHS]
    df = pd.DataFrame(rows).round(2)
    print(df.to_string(index=False))
    one = df[(df.threads == 1) & (df.path == 'fast') & (df.channel_base == 2048)].iloc[0]
    print(f"\nbudget at 1 thread (default, fast path): G forward {one.G_forward_img_s:.0f} img/s (aim >= 55), "
          f"D+G step {one.DG_step_s:.2f} s (aim <= 1.2)")
