"Training: a killed run resumes to the same weights, the NaN guard keeps the last good snapshot, warm starts, bad input."
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
import torch

from stylespace_lab.checkpoints import read_checkpoint, save_checkpoint
from stylespace_lab.generator import GeneratorConfig
from stylespace_lab.core import TrainingDiverged
from stylespace_lab.train import TrainConfig, train

CFG = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=128, channel_max=16)


def images(n=12, seed=0):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def tcfg(steps, **kw):
    return TrainConfig(batch_size=4, steps=steps, log_every=1, sample_every=0, r1_every=2, snapshot_every=1, snapshot_minutes=None, **kw)


SCRIPT = """
import sys, torch
sys.path.insert(0, {root!r})
from tests.test_train import CFG, images, tcfg
from stylespace_lab.train import train
torch.set_num_threads(1)
train(images(), sys.argv[1], CFG, tcfg(int(sys.argv[2])), device='cpu')
"""


def test_killed_run_resumes_bit_for_bit(tmp_path):
    torch.set_num_threads(1)
    ref = train(images(), tmp_path/'ref', CFG, tcfg(10), device='cpu')
    run = tmp_path/'killed'
    root = str(Path(__file__).resolve().parents[1])
    proc = subprocess.Popen([sys.executable, '-c', SCRIPT.format(root=root), str(run), '1000'], cwd=root)
    try:   # snapshot_every=1: a snapshot after every step; kill once a few exist
        deadline = time.time() + 120
        while time.time() < deadline:
            if (run/'latest.pt').exists():
                try:
                    if read_checkpoint(run/'latest.pt')['train_state']['step'] >= 3: break
                except ValueError: pass
            time.sleep(0.2)
    finally:
        proc.kill(); proc.wait()
    step = read_checkpoint(run/'latest.pt')['train_state']['step']
    assert 3 <= step < 1000
    if step > 10: pytest.skip(f'the killed run got past step 10 ({step}) before the kill')
    res = train(images(), run, CFG, tcfg(10), device='cpu')
    assert res.step == 10
    for a, b in zip(res.G_ema.state_dict().values(), ref.G_ema.state_dict().values()): assert torch.equal(a, b)
    for a, b in zip(res.D.state_dict().values(), ref.D.state_dict().values()): assert torch.equal(a, b)


def test_nan_guard_keeps_last_good_snapshot(tmp_path):
    train(images(), tmp_path, CFG, tcfg(2), device='cpu')
    good = read_checkpoint(tmp_path/'latest.pt')
    nan = lambda x, *a, **k: x * float('nan')
    with mock.patch('stylespace_lab.losses.F.softplus', side_effect=nan):
        with pytest.raises(TrainingDiverged, match=r'loss_d became non-finite at step 3; the last good state \(step 2\)'):
            train(images(), tmp_path, CFG, tcfg(4), device='cpu')
    kept = read_checkpoint(tmp_path/'latest.pt')
    assert kept['train_state']['step'] == 2
    assert all(torch.equal(kept['G'][k], good['G'][k]) for k in good['G'])


def test_warm_start_from_a_model_file(tmp_path):
    res = train(images(), tmp_path/'a', CFG, tcfg(3), device='cpu')
    ck = save_checkpoint(tmp_path/'model.pt', G_ema=res.G_ema, D=res.D, meta=dict(step=3))
    res2 = train(images(), tmp_path/'b', CFG, tcfg(5), device='cpu', init_from=ck)
    assert res2.step == 5 and len(res2.log) == 2
    other = GeneratorConfig(resolution=16, style_dim=8, n_mlp=2, channel_base=128, channel_max=16)
    with pytest.raises(ValueError, match='has architecture'):
        train(images(), tmp_path/'c', other, tcfg(5), device='cpu', init_from=ck)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match='at least 2 images'):
        train(images(1), tmp_path/'x', CFG, tcfg(1), device='cpu')
    train(images(), tmp_path/'y', CFG, tcfg(1), device='cpu')
    other = GeneratorConfig(resolution=16, style_dim=8, n_mlp=2, channel_base=128, channel_max=16)
    with pytest.raises(ValueError, match='was trained with architecture'):
        train(images(), tmp_path/'y', other, tcfg(2), device='cpu')
