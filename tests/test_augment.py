"DiffAugment: shapes, ranges, gradients, reproducibility and bad input."
import pytest
import torch

from stylespace_lab.augment import diff_augment


def test_diff_augment_shape_range_and_grad():
    x = (torch.rand(16, 3, 32, 32) * 2 - 1).requires_grad_(True)
    y = diff_augment(x, generator=torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    y.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    g = lambda s: torch.Generator().manual_seed(s)
    assert torch.equal(diff_augment(x, generator=g(0)), y)
    ones = torch.ones(32, 3, 16, 16)
    t = diff_augment(ones, 'translation', generator=g(1))
    assert set(t.unique().tolist()) == {0.0, 1.0} and (t == 0).any()                  # shifts with zero padding only
    c = diff_augment(ones, 'cutout', generator=g(2))
    frac = (c == 0).float().mean((1, 2, 3))
    assert ((frac > 0) & (frac <= 0.25 + 1e-6)).all()                        # a square of at most half the side
    col = diff_augment(torch.zeros(64, 3, 4, 4), 'color', generator=g(3))
    assert col.abs().max() <= 0.5 * 2 * 1.5 + 1e-6   # brightness +-0.5, then x[0,2] saturation, x[0.5,1.5] contrast
    assert diff_augment(x, p=0) is x
    some = diff_augment(ones, 'cutout', p=0.3, generator=g(4))
    assert 0 < (some == 0).flatten(1).any(1).float().mean() < 0.7
    with pytest.raises(ValueError, match='unknown DiffAugment policy'): diff_augment(x, 'colour')
    with pytest.raises(ValueError, match='p must be in'): diff_augment(x, p=1.5)
