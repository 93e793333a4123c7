import numpy as np
import pytest

from tat_keras.training import teachers


def _bank(policy, errors, threshold=None, seed=0):
    bank = teachers.TeacherBank(policy, threshold=threshold, seed=seed)
    for generation, error in enumerate(errors):
        bank.add([np.full(3, generation, "float32")], val_error=error,
                 generation=generation)
    return bank


def test_no_teacher_before_the_first_generation_ends():
    assert teachers.TeacherBank("random").draw(epoch=0) == []


@pytest.mark.parametrize(
    "policy, expected",
    [("last", [2]), ("best", [1]), ("mean", [0, 1, 2]), ("none", [])],
)
def test_deterministic_policies(policy, expected):
    bank = _bank(policy, [2.0, 1.0, 1.5])
    assert bank.draw(epoch=7) == expected


def test_random_draw_depends_only_on_seed_and_epoch():
    first = _bank("random", [1.0, 1.0, 1.0, 1.0], seed=3)
    second = _bank("random", [1.0, 1.0, 1.0, 1.0], seed=3)
    draws = [first.draw(epoch) for epoch in range(40)]
    assert draws == [second.draw(epoch) for epoch in range(40)]
    # Every teacher gets drawn, one at a time.
    assert {d[0] for d in draws} == {0, 1, 2, 3}
    assert all(len(d) == 1 for d in draws)


def test_drop_weak_uses_threshold_times_best():
    bank = _bank("random", [1.0, 1.04, 1.06, np.nan], threshold=1.05)
    assert bank.drop_weak() == [2, 3]
    assert bank.describe(range(len(bank))) == [0, 1]


def test_none_policy_keeps_no_teachers():
    bank = _bank("none", [1.0, 2.0])
    assert len(bank) == 0


def test_save_and_load_round_trip(tmp_path):
    bank = _bank("random", [1.0, 1.2])
    index = bank.save(str(tmp_path))
    restored = teachers.TeacherBank("random")
    restored.load(str(tmp_path), index)
    assert restored.describe(range(len(restored))) == [0, 1]
    for a, b in zip(bank.entries, restored.entries):
        np.testing.assert_array_equal(a["weights"][0], b["weights"][0])
        assert a["val_error"] == b["val_error"]


@pytest.mark.parametrize(
    "kwargs, match",
    [({"policy": "oldest"}, "policy must be one of"),
     ({"policy": "random", "threshold": 0.5}, "threshold")],
)
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        teachers.TeacherBank(**kwargs)
