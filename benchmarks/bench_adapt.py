"""Adaptation speed: a `stylespace` 10-shot run (noto -> twemoji, 32x32, the committed source model) on this
machine: steps/s, and when FID_emoji reaches its plateau (first evaluation within 5% of the best one).
Budget (issue 7): the plateau in under 2 minutes on 2 cores. Run: `python benchmarks/bench_adapt.py [--threads 2]`."""
import argparse
import time

import pandas as pd
import torch

from stylespace_lab.adapt import AdaptConfig, adapt
from stylespace_lab.checkpoints import load_discriminator, load_generator
from stylespace_lab.core import get_path
from stylespace_lab.data import few_shot, load_images
from stylespace_lab.features import load_emoji_encoder
from stylespace_lab.metrics import generator_fid

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--steps', type=int, default=200)
    ap.add_argument('--checkpoint', default=str(get_path('checkpoints')/'noto32.pt'))
    ap.add_argument('--parameterization', default='stylespace')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G, D, enc = load_generator(args.checkpoint), load_discriminator(args.checkpoint), load_emoji_encoder()
    shots, heldout = few_shot('twemoji', 10, seed=0)
    real = enc.extract(load_images(heldout, 32), show_progress=False)
    eval_s = []
    def fid(Gv):
        t = time.time()
        f = generator_fid(enc, Gv, real, 500, seed=777)
        eval_s.append(time.time() - t)
        return {'fid_emoji': f}
    cfg = AdaptConfig.from_profile('cpu', parameterization=args.parameterization, steps=args.steps, log_every=25)
    res = adapt(G, shots, cfg, D=D,
                eval_fn=fid, eval_every=25, show_progress=False)
    log = res.log[['step', 'fid_emoji', 'wall_s']].copy()
    train_s = res.wall_s - sum(eval_s)
    log['train_s'] = (log.step / args.steps * train_s).round(1)    # wall time without the evaluations
    best = log.fid_emoji.min()
    plateau = log[log.fid_emoji <= best * 1.05].iloc[0]
    print(log.to_string(index=False))
    print(f"\n{args.parameterization}, {args.threads} threads: {args.steps / train_s:.2f} steps/s (batch {cfg.batch_size}, evaluations excluded); "
          f"FID_emoji {log.fid_emoji.iloc[0]:.1f} -> best {best:.1f}; plateau (within 5% of best) at step {int(plateau.step)}, "
          f"{plateau.train_s:.0f} s of adaptation (aim: < 120 s)")
