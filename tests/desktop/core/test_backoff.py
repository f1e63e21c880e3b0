import itertools
import random
import statistics

import pytest

from presence_desktop.core.backoff import BASE_DELAY, MAX_DELAY, backoff_delays


def take(n: int, seed: int = 1, **kw: float) -> list[float]:
    return list(itertools.islice(backoff_delays(rng=random.Random(seed), **kw), n))


def test_first_delay_is_within_half_a_second() -> None:
    for seed in range(200):
        assert 0.0 <= take(1, seed)[0] <= BASE_DELAY


def test_each_attempt_stays_under_its_exponential_ceiling() -> None:
    for seed in range(50):
        for n, delay in enumerate(take(12, seed)):
            assert 0.0 <= delay <= min(MAX_DELAY, BASE_DELAY * 2**n)


def test_never_exceeds_the_cap_even_after_thousands_of_failures() -> None:
    delays = take(5000)
    assert max(delays) <= MAX_DELAY
    # The cap is reached and used: late delays are spread over the whole [0, 30] range.
    assert max(delays[100:]) > 0.9 * MAX_DELAY


def test_delays_grow_on_average() -> None:
    means = [statistics.mean(take(7, seed)[n] for seed in range(400)) for n in range(7)]
    assert means == sorted(means)
    # Full jitter: the mean of a uniform draw on [0, c] is c / 2.
    assert means[0] == pytest.approx(BASE_DELAY / 2, rel=0.15)
    assert means[6] == pytest.approx(min(MAX_DELAY, BASE_DELAY * 64) / 2, rel=0.15)


def test_full_jitter_covers_the_whole_range_uniformly() -> None:
    late = take(4000, seed=7)[20:]  # all capped at 30 s
    buckets = [0] * 10
    for d in late:
        buckets[min(9, int(d / MAX_DELAY * 10))] += 1
    expected = len(late) / 10
    assert all(0.8 * expected < b < 1.2 * expected for b in buckets), buckets


def test_same_seed_same_delays_and_a_fresh_generator_starts_small_again() -> None:
    assert take(10, seed=3) == take(10, seed=3)
    assert take(1, seed=3)[0] <= BASE_DELAY


def test_custom_base_and_cap_for_fast_tests() -> None:
    delays = take(20, base=0.01, cap=0.05)
    assert max(delays) <= 0.05
    assert delays[0] <= 0.01


@pytest.mark.parametrize(("base", "cap", "factor"), [(0, 1, 2), (1, 0.5, 2), (1, 2, 0.5)])
def test_nonsense_parameters_are_rejected(base: float, cap: float, factor: float) -> None:
    with pytest.raises(ValueError):
        next(backoff_delays(base=base, cap=cap, factor=factor))
