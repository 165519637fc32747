"""Our checkpoint format, run states and domain deltas: round trips, bad input, damage (flipped bytes, empty files),
non-finite states, crash-safe writes; and the safe unpickler's refusals and resource limits."""
import io
import os
import pickle
import random
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from stylespace_lab.checkpoints import (load_delta, load_discriminator, load_generator, read_checkpoint, read_delta,
                                        read_pickle_safely, read_run_state, save_checkpoint, save_delta,
                                        write_run_state)
from stylespace_lab.core import TrainingDiverged, atomic_write, checksum
from stylespace_lab.discriminator import Discriminator
from stylespace_lab.generator import Generator, GeneratorConfig

pytestmark = pytest.mark.usefixtures('one_thread')   # tests/conftest.py

TINY = dict(resolution=8, style_dim=8, n_mlp=1, channel_base=64, channel_max=8)   # these tests are about files


@pytest.fixture(scope='module')
def nets(one_thread):
    "A tiny G and D with fixed random weights."
    torch.manual_seed(0)
    cfg = GeneratorConfig(**TINY)
    return Generator(cfg).eval(), Discriminator(cfg).eval()


def images(G, z):
    with torch.no_grad(): return G(z, noise='const')


Z = torch.randn(4, TINY['style_dim'], generator=torch.Generator().manual_seed(3))


# --- our format -----------------------------------------------------------------------------------------------

def test_own_format_round_trip_is_bit_for_bit(nets, tmp_path):
    G, D = nets
    p = save_checkpoint(tmp_path / 'm.pt', G=G, G_ema=G, D=D, meta={'kimg': 1})
    G2, D2 = load_generator(p), load_discriminator(p)
    for a, b in ((G, G2), (D, D2)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert torch.equal(images(G, Z), images(G2, Z))
    assert read_checkpoint(p)['meta'] == {'kimg': 1}


def test_own_format_bad_input(nets, tmp_path):
    G, D = nets
    p = save_checkpoint(tmp_path / 'm.pt', G_ema=G, D=D)
    (tmp_path / 'trunc.pt').write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    with pytest.raises(ValueError, match='not a readable torch checkpoint'): load_generator(tmp_path / 'trunc.pt')
    (tmp_path / 'text.pt').write_text('hello')
    with pytest.raises(ValueError, match='not a readable torch checkpoint'): load_generator(tmp_path / 'text.pt')
    torch.save({'weights': torch.ones(1)}, tmp_path / 'foreign.pt')
    with pytest.raises(ValueError, match='not a stylespace_lab checkpoint'): load_generator(tmp_path / 'foreign.pt')
    save_checkpoint(tmp_path / 'd.pt', D=D)
    with pytest.raises(ValueError, match='discriminator-only'): load_generator(tmp_path / 'd.pt')
    ckpt = torch.load(p, weights_only=True); ckpt['format_version'] = 99; torch.save(ckpt, tmp_path / 'v99.pt')
    with pytest.raises(ValueError, match='format_version 99'): load_generator(tmp_path / 'v99.pt')
    with pytest.raises(FileNotFoundError): load_generator(tmp_path / 'missing.pt')


# --- domain deltas ----------------------------------------------------------------------------------------------

def test_delta_round_trip_and_compatibility(nets, tmp_path):
    G, _ = nets
    state = {'direction': torch.randn(G.style_dim_total), 'mask': torch.ones(3, dtype=torch.bool)}
    p = save_delta(tmp_path / 'delta.pt', state, G, 'sparse_direction', meta={'target': 'openmoji'})
    name, got = load_delta(p, G)
    assert name == 'sparse_direction' and all(torch.equal(got[k], v) for k, v in state.items())
    other_res = Generator(GeneratorConfig(**{**TINY, 'resolution': 32}))
    with pytest.raises(ValueError, match=r"resolution: delta's source 8, this generator 32"): load_delta(p, other_res)
    other_dim = Generator(GeneratorConfig(**{**TINY, 'style_dim': 4}))
    with pytest.raises(ValueError, match=r"style_dim: delta's source 8, this generator 4"): load_delta(p, other_dim)
    # the same channels spelled with another channel_base: same architecture; other weights: a warning only
    same_arch = Generator(GeneratorConfig(**{**TINY, 'channel_base': 65}))
    with pytest.warns(UserWarning, match='other weights'): load_delta(p, same_arch)
    ckpt = save_checkpoint(tmp_path / 'c.pt', G_ema=G)
    with pytest.raises(ValueError, match='not a domain delta'): load_delta(ckpt, G)
    with pytest.raises(ValueError, match='is a domain delta'): load_generator(p)
    d = torch.load(p, weights_only=True); d['format_version'] = 7; torch.save(d, tmp_path / 'v7.pt')
    with pytest.raises(ValueError, match='format_version 7'): load_delta(tmp_path / 'v7.pt', G)


def test_delta_of_the_first_format_still_reads(nets, tmp_path):
    "Files written before checksums (format 1: the committed models, users' deltas) load as before."
    G, _ = nets
    d = torch.load(save_delta(tmp_path / 'new.pt', {'w': torch.ones(2)}, G, 'stylespace'), weights_only=True)
    d.pop('checksum'); d['format_version'] = 1; torch.save(d, tmp_path / 'v1.pt')
    assert torch.equal(read_delta(tmp_path / 'v1.pt')['state']['w'], torch.ones(2))
    c = torch.load(save_checkpoint(tmp_path / 'c.pt', G_ema=G), weights_only=True)
    c.pop('checksum'); c['format_version'] = 1; torch.save(c, tmp_path / 'c1.pt')
    assert torch.equal(images(load_generator(tmp_path / 'c1.pt'), Z), images(G, Z))


# --- damage: flipped bytes, empty files, missing checksums ----------------------------------------------------------

def flip(src: Path, dst: Path, n: int, seed: int) -> Path:
    raw = bytearray(src.read_bytes())
    for i in random.Random(seed).sample(range(len(raw)), n): raw[i] ^= 0xFF
    dst.write_bytes(raw)
    return dst


@pytest.mark.parametrize('n_flipped', [1, 400])
def test_flipped_bytes_never_load_silently(nets, tmp_path, n_flipped):
    "Damage anywhere in a checkpoint or a delta is refused with a ValueError naming the file, or changed nothing read."
    G, D = nets
    ckpt = save_checkpoint(tmp_path / 'm.pt', G_ema=G, D=D, meta={'kimg': 1})
    delta = save_delta(tmp_path / 'd.pt', {'direction': torch.randn(G.style_dim_total) * 1e-3}, G, 'stylespace')
    want_c, want_d = read_checkpoint(ckpt), read_delta(delta)
    for seed in range(12):
        for src, read, want in ((ckpt, read_checkpoint, want_c), (delta, read_delta, want_d)):
            bad = flip(src, tmp_path / f'bad{seed}.pt', n_flipped, seed)
            try: got = read(bad)
            except ValueError as e:
                assert str(bad) in str(e) and '\n' not in str(e)
                continue
            assert checksum(got) == checksum(want)   # the flips hit bytes that are never read (zip padding)


def test_a_damaged_tensor_names_the_file_and_what_to_do(nets, tmp_path):
    G, _ = nets
    p = save_checkpoint(tmp_path / 'm.pt', G_ema=G)
    raw = bytearray(p.read_bytes())
    at = raw.find(G.state_dict()['mapping.layers.0.weight'].numpy().tobytes()[:64])
    raw[at + 10] ^= 0x01
    (tmp_path / 'one_bit.pt').write_bytes(raw)
    with pytest.raises(ValueError, match=r"one_bit\.pt is damaged: its content does not match the checksum "
                                         r"written with it; restore it from a copy or write it again"):
        load_generator(tmp_path / 'one_bit.pt')
    c = torch.load(p, weights_only=True); c.pop('checksum'); torch.save(c, tmp_path / 'no_sum.pt')
    with pytest.raises(ValueError, match='no_sum.pt is damaged: it has no checksum'):
        read_checkpoint(tmp_path / 'no_sum.pt')


@pytest.mark.parametrize('read', [read_checkpoint, read_delta, load_generator, read_pickle_safely])
def test_an_empty_file_is_damaged_not_an_index_error(tmp_path, read):
    (tmp_path / 'empty.pt').write_bytes(b'')
    with pytest.raises(ValueError, match=r'empty\.pt is damaged: it is empty \(0 bytes\)'): read(tmp_path / 'empty.pt')


# --- non-finite states are never written ------------------------------------------------------------------------------

def test_non_finite_tensors_are_refused_before_writing(nets, tmp_path):
    G, D = nets
    D_nan = Discriminator(GeneratorConfig(**TINY))
    with torch.no_grad(): D_nan.epilogue.out.bias.fill_(float('nan'))
    p = save_checkpoint(tmp_path / 'm.pt', G_ema=G)
    before = p.read_bytes()
    with pytest.raises(TrainingDiverged, match=r'refusing to write .*m\.pt: D\.epilogue\.out\.bias holds 1 non-finite'):
        save_checkpoint(p, G_ema=G, D=D_nan)
    opt_state = {'state': {0: {'exp_avg_sq': torch.tensor([1., float('inf')])}}}
    with pytest.raises(TrainingDiverged, match=r"train_state\.opt_g\.state\.0\.exp_avg_sq holds 1 non-finite"):
        save_checkpoint(p, G_ema=G, train_state={'opt_g': opt_state, 'step': 3})
    assert p.read_bytes() == before                                       # the last good file is untouched
    with pytest.raises(TrainingDiverged, match=r"state\.direction holds 2 non-finite"):
        save_delta(tmp_path / 'd.pt', {'direction': torch.tensor([0., float('nan'), float('-inf')])}, G, 'stylespace')
    assert not (tmp_path / 'd.pt').exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == ['m.pt']         # no temporary files either


# --- run states -------------------------------------------------------------------------------------------------------

def test_run_state_rotates_and_falls_back_to_the_previous(nets, tmp_path):
    G, _ = nets
    assert read_run_state(tmp_path / 'none') is None
    for step in (1, 2, 3): write_run_state(tmp_path, G=G, meta={'step': step})
    assert read_checkpoint(tmp_path / 'previous.pt')['meta']['step'] == 2
    st = read_run_state(tmp_path)
    assert (st['meta']['step'], st['run_state_file'].name) == (3, 'latest.pt')
    flip(tmp_path / 'latest.pt', tmp_path / 'latest.pt', 400, seed=0)
    with pytest.warns(UserWarning, match=r'latest\.pt is damaged; resuming from .*previous\.pt') as w:
        st = read_run_state(tmp_path)
    assert len(w) == 1 and '\n' not in str(w[0].message)
    assert (st['meta']['step'], st['run_state_file'].name) == (2, 'previous.pt')
    write_run_state(tmp_path, G=G, meta={'step': 4})                     # the damaged latest is not kept as previous
    assert read_checkpoint(tmp_path / 'previous.pt')['meta']['step'] == 2
    (tmp_path / 'latest.pt').unlink()                                      # a crash between the rename and the write
    with pytest.warns(UserWarning, match='latest.pt is missing'): assert read_run_state(tmp_path)['meta']['step'] == 2


def test_run_state_both_damaged_is_one_clear_error(nets, tmp_path):
    G, _ = nets
    for step in (1, 2): write_run_state(tmp_path, G=G, meta={'step': step})
    (tmp_path / 'latest.pt').write_bytes(b'')
    flip(tmp_path / 'previous.pt', tmp_path / 'previous.pt', 400, seed=1)
    with pytest.raises(ValueError, match=r'no usable run state in .*: .*latest\.pt is damaged.*previous\.pt.*'
                                         r'start the run afresh') as e:
        read_run_state(tmp_path)
    assert '\n' not in str(e.value)


def test_a_diverged_run_state_moves_nothing(nets, tmp_path):
    G, _ = nets
    for step in (1, 2): write_run_state(tmp_path, G=G, meta={'step': step})
    G_nan = Generator(GeneratorConfig(**TINY))
    with torch.no_grad(): G_nan.mapping.w_avg.fill_(float('nan'))
    with pytest.raises(TrainingDiverged, match='G.mapping.w_avg'): write_run_state(tmp_path, G=G_nan)
    assert [read_checkpoint(tmp_path / n)['meta']['step'] for n in ('previous.pt', 'latest.pt')] == [1, 2]


# --- crash-safe writes ------------------------------------------------------------------------------------------------

def test_atomic_write_fsyncs_file_and_folder_and_removes_stale_temporaries(tmp_path, monkeypatch):
    dead = tmp_path / '.m.pt.tmp-999999999'; dead.write_bytes(b'x' * 1000)       # a killed writer (no such pid)
    alive = tmp_path / f'.m.pt.tmp-{os.getppid()}'; alive.write_bytes(b'y')      # a writer still running
    synced = []
    real_fsync = os.fsync
    def fsync(fd):
        synced.append(os.path.isdir(f'/proc/self/fd/{fd}')); real_fsync(fd)
    monkeypatch.setattr(os, 'fsync', fsync)
    atomic_write(tmp_path / 'm.pt', b'content')
    assert synced == [False, True]                                             # the file, then the folder
    assert not dead.exists() and alive.exists() and (tmp_path / 'm.pt').read_bytes() == b'content'


def test_a_killed_save_leaves_the_old_file(nets, tmp_path, monkeypatch):
    G, _ = nets
    p = save_checkpoint(tmp_path / 'm.pt', G_ema=G, meta={'v': 1})
    def killed(obj, f): Path(f).write_bytes(b'half'); raise KeyboardInterrupt
    monkeypatch.setattr(torch, 'save', killed)
    with pytest.raises(KeyboardInterrupt): save_checkpoint(p, G_ema=G, meta={'v': 2})
    monkeypatch.undo()
    assert read_checkpoint(p)['meta'] == {'v': 1} and sorted(f.name for f in tmp_path.iterdir()) == ['m.pt']


# --- the safe unpickler: every allocation bounded by the file's size --------------------------------------------------

class Reduce:
    "Pickles as the call `fn(*args)`."
    def __init__(self, fn, *args): self.fn, self.args = fn, args
    def __reduce__(self): return self.fn, self.args


def legacy_storage_bytes(numel: int, data: bytes = b'') -> bytes:
    "A nested legacy `torch.save` of a float storage that declares `numel` elements (as NVlabs pickles hold them)."
    class DeclaresStorage(pickle.Pickler):
        def persistent_id(self, obj):
            return ('storage', torch.FloatStorage, '0', 'cpu', numel, None) if obj == 'S' else None
    buf = io.BytesIO()
    for header in (0x1950a86a20f9469cfc6c, 1001, {'protocol_version': 1001, 'little_endian': True}):
        pickle.dump(header, buf, protocol=2)
    DeclaresStorage(buf, protocol=2).dump('S')
    pickle.dump(['0'], buf, protocol=2)
    return buf.getvalue() + numel.to_bytes(8, 'little') + data


with warnings.catch_warnings():   # TypedStorage is deprecated, but it is what old pickles hold
    warnings.simplefilter('ignore')
    HOSTILE = {
        'bytearray_protocol_2': b'\x80\x02c__builtin__\nbytearray\n\x8a\x07\x00\x80\xc6\xa4~\x8d\x03\x85R.',
        'bytearray_protocol_4': b'\x80\x04\x8c\x08builtins\x94\x8c\tbytearray\x94\x93'
                                b'\x8a\x07\x00\x80\xc6\xa4~\x8d\x03\x85R.',
        'numpy_array': pickle.dumps(Reduce(getattr(np, '_core', np.core).multiarray._reconstruct, np.ndarray,
                                           (10 ** 12,), b'b')),
        'storage_size': pickle.dumps(Reduce(torch.storage._load_from_bytes, legacy_storage_bytes(10 ** 12))),
        'view_past_storage': pickle.dumps(Reduce(torch._utils._rebuild_tensor_v2, torch.ones(4).storage(), 0,
                                                 (10 ** 6,), (1,), False, OrderedDict())),
        'broadcast_view': pickle.dumps(Reduce(torch._utils._rebuild_tensor_v2, torch.ones(4).storage(), 0, (10 ** 9,),
                                              (0,), False, OrderedDict())),
        # one stored storage, loaded 50 times: the bytes are in the file once, the calls 50 times
        'memo_amplification': pickle.dumps([Reduce(torch.storage._load_from_bytes, b) for b in
                                            [legacy_storage_bytes(2000, bytes(8000))] * 50]),
    }


@pytest.mark.parametrize('kind', HOSTILE)
def test_hostile_sizes_are_refused_with_one_line(tmp_path, kind):
    p = tmp_path / f'{kind}.pkl'; p.write_bytes(HOSTILE[kind])
    with pytest.raises(ValueError, match=r'asks for|reaches past|larger than the file') as e: read_pickle_safely(p)
    assert str(p) in str(e.value) and '\n' not in str(e.value)


def test_honest_storages_fit_their_budget(tmp_path):
    x = {'w': torch.randn(64, 32), 'b': torch.nn.Parameter(torch.zeros(32)), 'a': np.arange(10.)}
    (tmp_path / 'ok.pkl').write_bytes(pickle.dumps(x))
    got = read_pickle_safely(tmp_path / 'ok.pkl')
    assert torch.equal(got['w'], x['w']) and torch.equal(got['b'], x['b']) and np.array_equal(got['a'], x['a'])
