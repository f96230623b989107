"""Stratified (per-class), seeded, nested subsets."""
import numpy as np
import pytest

from mmscalekd.datasets import nested_stratified_subset, stratified_subset


def _counts(labels, idx, k):
    return np.bincount(np.asarray(labels)[idx], minlength=k).tolist()


def test_balanced_classes_get_equal_shares_where_the_first_n_images_do_not() -> None:
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(10), 100))  # shuffled, 100 per class
    idx = stratified_subset(labels, 200, seed=0)
    assert _counts(labels, idx, 10) == [20] * 10
    assert len(set(_counts(labels, np.arange(200), 10))) > 1  # the first 200 are not balanced
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)  # sorted, no repeats


def test_imbalanced_classes_proportional_by_largest_remainder() -> None:
    labels = np.array([0] * 50 + [1] * 30 + [2] * 20)
    # 7 of 100: exact shares 3.5, 2.1, 1.4 -> floors 3, 2, 1 (6); the largest remainder (0.5,
    # class 0) gets the 7th image.
    assert _counts(labels, stratified_subset(labels, 7, seed=1), 3) == [4, 2, 1]
    # 3 of 100: floors 1, 0, 0 plus remainders 0.5 (class 0), 0.9 (1), 0.6 (2): the two largest
    # go to classes 1 and 2 -> one each.
    assert _counts(labels, stratified_subset(labels, 3, seed=1), 3) == [1, 1, 1]


def test_every_class_gets_one_when_the_size_allows() -> None:
    labels = np.array([0] * 97 + [1, 2, 3])
    counts = _counts(labels, stratified_subset(labels, 4, seed=0), 4)
    assert counts == [1, 1, 1, 1]  # proportional rounding alone would give [4, 0, 0, 0]


def test_seeded_and_reproducible() -> None:
    labels = np.repeat(np.arange(5), 40)
    a, b = stratified_subset(labels, 50, seed=3), stratified_subset(labels, 50, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, stratified_subset(labels, 50, seed=4))
    np.testing.assert_array_equal(stratified_subset(labels, 200, seed=9), np.arange(200))


@pytest.mark.parametrize('size,match', [(0, r'\[1, 20\]'), (21, r'\[1, 20\]'),
                                        (2.5, 'an int'), (True, 'an int')])
def test_bad_sizes_are_named(size, match) -> None:
    with pytest.raises(ValueError, match=match):
        stratified_subset(np.zeros(20, dtype=int), size)


def test_nested_subsets_lie_in_their_parent_and_complement_is_the_rest() -> None:
    labels = np.random.default_rng(1).integers(0, 4, size=400)
    pool = nested_stratified_subset(labels, (200, ), seed=0)
    labeled = nested_stratified_subset(labels, (200, 40), seed=0)
    assert set(labeled) <= set(pool) and len(labeled) == 40
    # each level is proportional to the class sizes of its parent (within one image)
    expected = np.array(_counts(labels, pool, 4)) * 40 / 200
    assert np.all(np.abs(np.array(_counts(labels, labeled, 4)) - expected) < 1)
    rest = nested_stratified_subset(labels, (200, 40), seed=0, complement=True)
    assert set(rest) | set(labeled) == set(pool) and not set(rest) & set(labeled)
    # None keeps the whole level: (None, 40) draws from all 400
    whole = nested_stratified_subset(labels, (None, 40), seed=0)
    np.testing.assert_array_equal(whole, nested_stratified_subset(labels, (400, 40), seed=0))
    np.testing.assert_array_equal(nested_stratified_subset(labels, ()), np.arange(400))


def test_nested_errors_name_the_level() -> None:
    labels = np.zeros(50, dtype=int)
    with pytest.raises(ValueError, match=r'subset size #1 must be an int in \[1, 20\]'):
        nested_stratified_subset(labels, (20, 30))
    with pytest.raises(ValueError, match='complement=True needs'):
        nested_stratified_subset(labels, (), complement=True)
    with pytest.raises(TypeError, match='sequence'):
        nested_stratified_subset(labels, 20)
