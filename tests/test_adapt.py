"The adaptation loop: transfer options, FreezeD, every loss together, resume, NaN guard, bad input."
from unittest import mock

import pytest
import torch

from stylespace_lab.adapt import AdaptConfig, adapt
from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig
from stylespace_lab.core import TrainingDiverged

CFG = GeneratorConfig(resolution=16, style_dim=16, n_mlp=2, channel_base=128, channel_max=16)


@pytest.fixture(scope='module')
def nets():
    torch.manual_seed(0)
    return Generator(CFG).eval(), Discriminator(CFG)


def targets(n=5):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1


def cfg(**kw):
    return AdaptConfig(**{'steps': 3, 'batch_size': 4, 'log_every': 1, 'projection_steps': 3, **kw})


def test_source_is_never_modified(nets):
    G, D = nets
    before = {k: v.clone() for k, v in {**G.state_dict(), **{'D.' + k: v for k, v in D.state_dict().items()}}.items()}
    adapt(G, targets(), cfg(parameterization='full', losses=(('adv', 1.), ('cdc', 1.), ('d3t_rec', 1.), ('d3t_con', 1.), ('d3t_distill', 1.))),
          D=D, show_progress=False)
    after = {**G.state_dict(), **{'D.' + k: v for k, v in D.state_dict().items()}}
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize('tg,td', [(True, True), (True, False), (False, True), (False, False)])
def test_transfer_table_options(nets, tg, td):
    G, D = nets
    res = adapt(G, targets(), cfg(parameterization='full', transfer_g=tg, transfer_d=td), D=D, show_progress=False)
    assert len(res.log) == 3
    assert torch.equal(res.before, G(G.sample_z(16, seed=10_000), noise='const').detach()) == tg


def test_freeze_d_keeps_the_first_blocks(nets):
    G, D = nets
    res = adapt(G, targets(), cfg(freeze_d=2), D=D, show_progress=False)
    for name, p in res.D.named_parameters():
        frozen = name.startswith(('from_rgb.', 'blocks.b16.', 'blocks.b8.'))
        assert torch.equal(p, dict(D.named_parameters())[name]) == frozen, name


def test_resume_equals_uninterrupted(nets, tmp_path):
    G, D = nets
    full = adapt(G, targets(), cfg(steps=4), D=D, show_progress=False)
    adapt(G, targets(), cfg(steps=2), D=D, show_progress=False, run_dir=tmp_path)
    resumed = adapt(G, targets(), cfg(steps=4), D=D, show_progress=False, run_dir=tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(full.param.parameters(), resumed.param.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(full.D.parameters(), resumed.D.parameters()))


def test_result_is_the_ema_of_the_iterates(nets):
    G, D = nets
    last = adapt(G, targets(), cfg(steps=4, ema_half_life=0), D=D, show_progress=False).param.flat()
    avg = adapt(G, targets(), cfg(steps=4, ema_half_life=2), D=D, show_progress=False).param.flat()
    assert not torch.equal(last, avg)
    assert 0 < avg.norm() < last.norm()     # the average starts at the identity (zero) and lags the iterates
    frozen = adapt(G, targets(), cfg(steps=4, ema_half_life=1e9), D=D, show_progress=False).param.flat()
    assert frozen.abs().max() < 1e-6        # an infinite half-life never leaves the identity


def test_nan_guard(nets):
    G, D = nets
    with mock.patch('stylespace_lab.losses.g_adversarial_loss', side_effect=lambda D, x, aug=None: x.mean() * float('nan')):
        with pytest.raises(TrainingDiverged, match='adv became non-finite at step 1; no state was written yet'):
            adapt(G, targets(), cfg(), D=D, show_progress=False)


def test_bad_input(nets):
    G, D = nets
    with pytest.raises(ValueError, match='pass resize=True'): adapt(G, torch.zeros(3, 3, 32, 32), cfg(), D=D)
    assert adapt(G, torch.zeros(3, 3, 32, 32), cfg(steps=1), D=D, resize=True, show_progress=False).log.step.tolist() == [1]
    with pytest.raises(ValueError, match='no target images'): adapt(G, torch.zeros(0, 3, 16, 16), cfg(), D=D)
    with pytest.raises(ValueError, match='unknown parameterization'): adapt(G, targets(), cfg(parameterization='lora'), D=D)
    with pytest.raises(ValueError, match='needs the source discriminator'): adapt(G, targets(), cfg())
    other = Discriminator(GeneratorConfig(resolution=32, style_dim=16, n_mlp=2, channel_base=128, channel_max=16))
    with pytest.raises(ValueError, match='D is 32x32 but G is 16x16'): adapt(G, targets(), cfg(), D=other)
    with pytest.raises(ValueError, match='unknown loss'): AdaptConfig(losses=(('adv', 1.), ('lpips', 1.)))
    with pytest.raises(ValueError, match='not a resolution'):
        adapt(G, targets(), cfg(parameterization='affine_plus', param_kwargs=(('block', 128),)), D=D)
    with pytest.raises(ValueError, match=r"unknown AdaptConfig key\(s\) \['step'\]"): AdaptConfig.from_dict({'step': 3})


def test_evaluating_does_not_change_training(nets):
    "An eval_fn that draws from the global RNG (unseeded latents, random layer noise) must not move the training."
    G, D = nets
    plain = adapt(G, targets(), cfg(steps=4), D=D, show_progress=False).param.flat()
    noisy_eval = lambda Gv: {'score': float(Gv(Gv.sample_z(2)).mean())}
    evaluated = adapt(G, targets(), cfg(steps=4), D=D, show_progress=False, eval_fn=noisy_eval, eval_every=1)
    assert torch.equal(plain, evaluated.param.flat())
    assert evaluated.log.score.notna().all()


def test_select_keeps_the_best_evaluation_and_stops_on_a_plateau(nets):
    "With select=, the result is the state at the best evaluation; patience stops the run after it."
    G, D = nets
    scores = iter([5., 3., 1., 2., 4., 6., 7.])                 # best at the third evaluation (step 2)
    res = adapt(G, targets(), cfg(steps=20), D=D, show_progress=False, eval_fn=lambda Gv: {'val': next(scores)},
                eval_every=1, select='val', patience=3)
    assert res.best_step == 2 and res.log.step.max() == 5       # three evaluations without a new best, then stop
    plain = adapt(G, targets(), cfg(steps=2), D=D, show_progress=False)
    assert torch.equal(res.param.flat(), plain.param.flat())    # the state at step 2, as a 2-step run leaves it
    with pytest.raises(ValueError, match='give eval_fn and eval_every'): adapt(G, targets(), cfg(), D=D, select='val')


def test_g_step_computes_no_d_weight_gradients(nets):
    "The G step asks D for input gradients only (its weight gradients would be thrown away); FreezeD's set survives."
    from stylespace_lab import losses
    G, D = nets
    real, seen = losses.g_adversarial_loss, []
    def spy(D, fake, augment=None):
        seen.append(any(p.requires_grad for p in D.parameters()))
        return real(D, fake, augment)
    with mock.patch('stylespace_lab.losses.g_adversarial_loss', side_effect=spy):
        res = adapt(G, targets(), cfg(steps=3, freeze_d=1), D=D, show_progress=False)
    assert seen == [False] * 3
    trainable = {n for n, p in res.D.named_parameters() if p.requires_grad}
    assert trainable and not any(n.startswith('from_rgb.') for n in trainable)
    assert trainable == {n for n, p in res.D.named_parameters() if not n.startswith(('from_rgb.', 'blocks.b16.'))}


def test_d3t_generator_terms_share_one_projection_and_one_twin_pass_per_step(nets):
    from stylespace_lab import losses
    G, D = nets
    with mock.patch('stylespace_lab.losses.project', wraps=losses.project) as proj, \
         mock.patch('stylespace_lab.losses.twin_features', wraps=losses.twin_features) as twins:
        res = adapt(G, targets(), cfg(steps=3, losses=(('adv', 1.), ('d3t_rec', 1.), ('d3t_con', 1.))), D=D,
                    show_progress=False)
    assert proj.call_count == 1
    assert twins.call_count == 1 + 3   # the source's twins once, the adapted generator's once per step
    assert {'d3t_rec', 'd3t_con'} <= set(res.log.columns) and res.log[['d3t_rec', 'd3t_con']].notna().all().all()
