"""Issue 21: equal-budget training of candidate source sets, then the measured winner trained on.

Each candidate is a coherent part of Noto (`data.SUBSETS`). All get the same architecture
(`GeneratorConfig.from_profile('cpu')`), the same settings and the same number of images seen (`--budget-kimg`).
After every stretch the kept G_ema snapshots are measured (FID_emoji, 1k samples vs the candidate's images) and the
last state gets Inception FID/KID (up to 500 images per set) against the candidate's images and against the yardstick
"twemoji's drawing of the same glyphs". Results go to `results/source_candidates/` (committed): `final.csv` holds the
equal-budget comparison, `stretches.csv` every measured stretch, `<name>_curve.csv` / `<name>_log.csv` the curves;
each last state (G, G_ema, D) goes to `checkpoints/candidates/<name>.pt`, and the best-measured one (G_ema, D) to
`<name>-best.pt`.

Resumable: run folders live in `~/stylespace-runs/candidate-<name>`; a run without its folder warm-starts from the
committed checkpoint. `nbs/15_train.ipynb` draws the curves, the choice and the card from the CSVs.

    OMP_NUM_THREADS=1 nohup .venv/bin/python tools/source_candidates.py --kimg 32 > ~/stylespace-runs/candidates.log 2>&1 &
    # continue the chosen one in stretches (a committed, measured state at the end of each)
    OMP_NUM_THREADS=2 nohup .venv/bin/python tools/source_candidates.py --only smileys --kimg 2000 --max-minutes 100 &
    # the other sources of the checkpoint-selection study, 32 kimg each
    OMP_NUM_THREADS=1 nohup .venv/bin/python tools/source_candidates.py --only twemoji-smileys noto-animals --kimg 32 &
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pandas as pd
import torch

from stylespace_lab.checkpoints import load_generator, read_checkpoint, save_checkpoint
from stylespace_lab.data import load_set
from stylespace_lab.generator import GeneratorConfig
from stylespace_lab.features import InceptionFeatures, find_inception_weights, generator_features, load_emoji_encoder
from stylespace_lab.metrics import fid_from_features, kid
from stylespace_lab.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO/'results'/'source_candidates'
CKPTS = REPO/'checkpoints'/'candidates'
RUNS = Path(os.environ.get('STYLESPACE_RUNS', '~/stylespace-runs')).expanduser()
YARDSTICK = 'twemoji'   # another vendor's drawing of the same glyphs

CANDIDATES = {'smileys': 'noto:smileys', 'smileys-people': 'noto:smileys-people', 'noto-base': 'noto:base'}   # data.SUBSETS
# more sources that learned other things, for the checkpoint-selection study (Grigoryev et al., study 23): the same
# architecture and budget, other vendors' drawings of the smileys or other Noto content; each keeps its own D
OTHER_SOURCES = {'twemoji-smileys': 'twemoji:smileys', 'fluent-smileys': 'fluent-emoji-flat:smileys',
                 'openmoji-smileys': 'openmoji:smileys', 'noto-animals': 'noto:animals'}
SOURCES = {**CANDIDATES, **OTHER_SOURCES}

def candidate_set(name: str):
    "The candidate's images as an `EmojiSet` (a named part of noto at 32x32)."
    return load_set(SOURCES[name], 32)

def yardstick_set(cand):
    "The yardstick vendor's drawing of the glyphs the candidate has (as many as it draws)."
    y = load_set(YARDSTICK, 32)
    shared = [c for c in cand.meta.codepoints if c in set(y.meta.codepoints)]
    return y.subset(y.index_of(shared))

def train_config(steps: int, lr: float) -> TrainConfig:
    # the settings of the noto32 card's phase 1 (batch 32, gamma 0.01), snapshots every 3 minutes for resumability
    return TrainConfig(batch_size=32, steps=steps, lr=lr, r1_gamma=0.01, keep_every=max(min(steps // 12, 250), 1),
                       sample_every=max(min(steps // 6, 500), 1), snapshot_minutes=3.)

def run_candidate(name: str, steps: int, lr: float, max_minutes: float | None):
    cand = candidate_set(name)
    run_dir = RUNS/f'candidate-{name}'
    init = CKPTS/f'{name}.pt'
    meta = dict(data=SOURCES[name], n_images=len(cand), candidate=name)
    res = train(cand.tensor(), run_dir, GeneratorConfig.from_profile('cpu'), train_config(steps, lr), meta=meta,
                init_from=init if init.exists() else None, max_minutes=max_minutes)
    return cand, res

def commit_state(name: str, res) -> Path:
    "G, G_ema and D of the last state, with its training log: what the next session continues from."
    ck = read_checkpoint(res.snapshot)
    CKPTS.mkdir(parents=True, exist_ok=True)
    path = save_checkpoint(CKPTS/f'{name}.pt', G=res.G, G_ema=res.G_ema, D=res.D, meta=ck['meta'])
    (RESULTS/f'{name}_log.csv').parent.mkdir(parents=True, exist_ok=True)
    res.log.to_csv(RESULTS/f'{name}_log.csv', index=False)
    return path

def curve(name: str, cand, res, enc, n: int = 1000) -> pd.DataFrame:
    "FID_emoji of every kept G_ema snapshot (1k samples, seed 0) against the candidate's images."
    real = enc.extract(cand.tensor(), show_progress=False)
    rows = []
    for p in sorted((res.run_dir/'snapshots').glob('step*.pt')):
        ck = read_checkpoint(p)
        G = load_generator(p)
        rows.append(dict(candidate=name, step=ck['meta']['step'], kimg=ck['meta']['kimg'],
                         fid_emoji=fid_from_features(generator_features(enc, G, n), real)))
    out = pd.DataFrame(rows)
    path = RESULTS/f'{name}_curve.csv'
    if path.exists():   # keep the points of earlier stretches
        out = pd.concat([pd.read_csv(path), out]).drop_duplicates(['candidate', 'step'], keep='last').sort_values('step')
    out.to_csv(path, index=False)
    return out

N_INCEPTION = 500   # Inception at 299x299 runs at a few images/s on a CPU: at most this many images per set

def _at_most(images: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    "A seeded random subset of `n` images (all of them when there are fewer)."
    if len(images) <= n: return images
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]]

def final_scores(name: str, cand, G, enc, inception) -> dict:
    """Inception FID and KID of `n = min(images, 500)` samples against as many of the candidate's images, beside the
    yardstick's (as many of its images) at the same count; FID_emoji on all images."""
    yard = yardstick_set(cand)
    n = min(len(cand), N_INCEPTION)
    fr = inception.extract(_at_most(cand.tensor(), n), show_progress=False).numpy()
    fy = inception.extract(_at_most(yard.tensor(), n, seed=1), show_progress=False).numpy()
    fg = generator_features(inception, G, n).numpy()
    er = enc.extract(cand.tensor(), show_progress=False); ey = enc.extract(yard.tensor(), show_progress=False)
    eg = generator_features(enc, G, len(cand))
    sub = min(n, len(fy), 1000) // 2
    kg, ky = kid(fg, fr, subset_size=sub), kid(fy, fr, subset_size=sub)
    return dict(candidate=name, n_images=len(cand), n_inception=n, n_yardstick=len(yard), yardstick=YARDSTICK,
                fid_inception=fid_from_features(fg, fr), fid_inception_yardstick=fid_from_features(fy, fr),
                kid=kg.mean, kid_std=kg.std, kid_yardstick=ky.mean, kid_yardstick_std=ky.std,
                fid_emoji=fid_from_features(eg, er), fid_emoji_yardstick=fid_from_features(ey, er))

def keep_if_best(name: str, res, row: dict) -> None:
    """Keep G_ema and D of this stretch as `<name>-best.pt` when its Inception FID ratio to the yardstick is the
    lowest measured so far: a stretch can end worse than an earlier one, and the default source is the best state."""
    st = pd.read_csv(RESULTS/'stretches.csv')
    st = st[st.candidate == name]
    if len(st) < 2: return   # one stretch measured: its best state is the last one, `<name>.pt` itself
    ratio = st.fid_inception / st.fid_inception_yardstick
    if ratio[st.step == row['step']].iloc[0] <= ratio.min():
        save_checkpoint(CKPTS/f'{name}-best.pt', G_ema=res.G_ema, D=res.D, meta=read_checkpoint(res.snapshot)['meta'])

def _append(path: Path, row: dict, keys: tuple) -> None:
    "Add `row` to the CSV at `path`, replacing a row with the same `keys`."
    old = pd.read_csv(path) if path.exists() else pd.DataFrame()
    if len(old): old = old[~(old[list(keys)] == pd.Series({k: row[k] for k in keys})).all(axis=1)]
    pd.concat([old, pd.DataFrame([row])]).to_csv(path, index=False)

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--kimg', type=float, default=24., help='images seen per candidate, in thousands (batch 32)')
    ap.add_argument('--lr', type=float, default=0.0025)
    ap.add_argument('--only', nargs='*', default=list(CANDIDATES), choices=list(SOURCES),
                    help='which sources (default: the three candidates of the source choice)')
    ap.add_argument('--max-minutes', type=float, default=None, help='wall-time limit per candidate')
    ap.add_argument('--budget-kimg', type=float, default=32., help='the equal budget of the comparison (final.csv)')
    a = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    steps = int(round(a.kimg * 1000 / 32))
    enc = load_emoji_encoder()
    weights = find_inception_weights()
    inception = InceptionFeatures(weights) if weights else None
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in a.only:
        t0 = time.time()
        cand, res = run_candidate(name, steps, a.lr, a.max_minutes)
        commit_state(name, res)
        curve(name, cand, res, enc)
        if inception is not None:   # every stretch ends measured: stretches.csv; the equal-budget table: final.csv
            row = dict(final_scores(name, cand, res.G_ema, enc, inception), step=res.step, kimg=res.step * 32 / 1000,
                       wall_s=float(res.log.wall_s.iloc[-1]) if len(res.log) else None, threads=torch.get_num_threads())
            _append(RESULTS/'stretches.csv', row, keys=('candidate', 'step'))
            keep_if_best(name, res, row)
            if name in CANDIDATES and res.step == a.budget_kimg * 1000 / 32:   # the source choice's table
                _append(RESULTS/'final.csv', row, keys=('candidate',))
            print(json.dumps(row), flush=True)
        print(f'{name}: {res.step} steps, {time.time() - t0:.0f} s this stretch', flush=True)

if __name__ == '__main__':
    main()
