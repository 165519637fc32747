"The training loop: resume keeps every callback's state, the log is cut back to the snapshot, intervals and bad input."
import json

import pytest
import torch

from stylespace_lab.core import TrainingDiverged
from stylespace_lab.learner import EMA, Evaluate, KeepBest, Learner, Log, Periodic, Snapshot


class Quadratic:
    "A noisy quadratic with a file-backed state: the smallest thing a Learner can train, kill and resume."
    def __init__(self, run_dir, kill_at=None):
        self.w = torch.nn.Parameter(torch.tensor([3.]))
        self.opt = torch.optim.SGD([self.w], lr=0.3)
        self.path, self.kill_at = run_dir/'state.pt', kill_at
    def step(self, step):
        if step == self.kill_at: raise KeyboardInterrupt
        loss = (self.w - 1 - 0.3 * torch.randn(1)).square().sum()
        self.opt.zero_grad(); loss.backward(); self.opt.step()
        return dict(loss=loss.detach())
    def write(self, learn, st):
        torch.save(dict(st, w=self.w.detach().clone(), opt=self.opt.state_dict()), self.path); return self.path
    def read(self, learn):
        if not self.path.exists(): return None
        st = torch.load(self.path, weights_only=False)
        self.w.data.copy_(st['w']); self.opt.load_state_dict(st['opt']); return st
    def learner(self, steps, every=2):
        self.best = KeepBest('dist', lambda: [self.w])
        return Learner(self.step, steps, [Log(1, self.path.parent/'log.jsonl'), Evaluate(lambda l: dict(dist=abs(self.w.item() - 1)), 1),
                                          self.best, Snapshot(self.write, self.read, lambda: dict(w=self.w), every_steps=every,
                                                              every_minutes=None)])


def run(run_dir, steps, kill_at=None):
    torch.manual_seed(0)
    q = Quadratic(run_dir, kill_at)
    learn = q.learner(steps)
    try: learn.fit()
    except KeyboardInterrupt: pass
    return q, learn


def test_resume_keeps_the_best_state_and_cuts_the_log(tmp_path):
    (tmp_path/'a').mkdir(); (tmp_path/'b').mkdir()
    whole, _ = run(tmp_path/'a', 12)
    run(tmp_path/'b', 12, kill_at=7)                        # the log file has rows 1..7, the snapshot is at step 6
    with open(tmp_path/'b'/'log.jsonl', 'a') as f: f.write('{"step": 8, "lo')   # and a line torn by the kill
    resumed, learn = run(tmp_path/'b', 12)
    assert learn.start_step == 6 and torch.equal(resumed.w, whole.w)
    assert (resumed.best.best_step, resumed.best.best_value) == (whole.best.best_step, whole.best.best_value)
    assert torch.equal(resumed.best.best_tensors[0], whole.best.best_tensors[0])
    steps = [json.loads(l)['step'] for l in (tmp_path/'b'/'log.jsonl').read_text().splitlines()]
    assert steps == list(range(1, 13))                      # rows 7 of the killed run were dropped, then rewritten once


def test_snapshot_only_at_the_end_without_intervals(tmp_path):
    writes = []
    w = torch.nn.Parameter(torch.ones(1))
    snap = Snapshot(lambda l, st: writes.append(st['step']) or tmp_path, lambda l: None, lambda: dict(w=w), every_steps=0,
                    every_minutes=None)
    Learner(lambda s: dict(loss=torch.tensor(0.)), 5, [snap]).fit()
    assert writes == [5]


def test_nan_weight_is_never_written_and_the_message_names_the_last_good_state(tmp_path):
    w = torch.nn.Parameter(torch.ones(1))
    def step(s):
        if s == 3: w.data.fill_(float('inf'))
        return dict(loss=torch.tensor(0.))
    writes = []
    snap = Snapshot(lambda l, st: writes.append(st['step']) or tmp_path/'s.pt', lambda l: None, lambda: dict(w=w),
                    every_steps=2, every_minutes=None)
    with pytest.raises(TrainingDiverged, match=r"w became non-finite by step 4; the last good state \(step 2\)"):
        Learner(step, 10, [snap]).fit()
    assert writes == [2]


def test_ema_and_periodic(tmp_path):
    w = torch.nn.Parameter(torch.zeros(1)); avg = [torch.zeros(1)]
    def step(s):
        with torch.no_grad(): w.add_(1.)
        return {}
    calls = []
    Learner(step, 4, [EMA(avg, [w], beta=lambda l: 0.5), Periodic(lambda l: calls.append(l.step), 2)]).fit()
    assert avg[0].item() == pytest.approx(((0 * .5 + 1 * .5) * .5 + 2 * .5) * .5 * .5 + 3 * .5 * .5 + 4 * .5)
    assert calls == [2, 4]


@pytest.mark.parametrize('make, message', [
    (lambda: Learner(lambda s: {}, -1), 'steps must be an integer >= 0'),
    (lambda: Snapshot(None, None, None, every_steps=-1), 'snapshot intervals must be positive'),
    (lambda: Snapshot(None, None, None, every_minutes=0), 'snapshot intervals must be positive'),
    (lambda: Evaluate(lambda l: {}, 0), 'evaluation interval must be an integer >= 1'),
    (lambda: Periodic(lambda l: None, -2, 'samples'), 'samples interval must be an integer >= 0'),
    (lambda: KeepBest('x', list, patience=-1), 'patience must be an integer >= 0'),
    (lambda: EMA([torch.zeros(1)], [], beta=lambda l: 0.5), 'one average per tensor'),
])
def test_bad_input(make, message):
    with pytest.raises(ValueError, match=message): make()


def test_keep_best_waits_for_min_step_before_stopping():
    "A metric that first gets worse: patience alone would stop at step 2; min_step keeps the run going to its best."
    w = torch.nn.Parameter(torch.zeros(1))
    scores = iter([5., 6., 7., 8., 3., 4., 4., 4., 4., 4.])
    best = KeepBest('v', lambda: [w], patience=2, min_step=4)
    learn = Learner(lambda s: {}, 20, [Evaluate(lambda l: dict(v=next(scores)), 1), best]).fit()
    assert best.best_step == 4 and learn.step == 6
