"""kernels/cpu_team.py: each call's work shared out over a team of plain Python threads."""
import threading
import time

import numba
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from threadpoolctl import threadpool_info

import tinypix
from tinypix.kernels import cpu_team


@pytest.fixture
def team_of(monkeypatch):
    """Set the team's size, sharing out even the small work of these tests (MIN_SHARE); the
    size the process had comes back afterwards."""
    before = cpu_team._size

    def make(n):
        monkeypatch.setattr(cpu_team, "MIN_SHARE", 1)
        cpu_team.set_num_threads(n)
    yield make
    cpu_team._size = before


def _blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@given(st.integers(0, 40), st.integers(1, 8), st.integers(0, 400))
def test_shares_cover_the_range_evenly_and_are_cut_by_work(n, size, work):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_team, "get_num_threads", lambda: size)
        m.setattr(cpu_team, "MIN_SHARE", 100)
        pieces = cpu_team.shares(n, work)
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))      # contiguous, in order
    lengths = [stop - start for start, stop in pieces]
    assert len(pieces) == max(1, min(size, n, work // 100)) and max(lengths) - min(lengths) <= 1


def test_run_uses_the_team_threads_and_keeps_order(team_of):
    team_of(3)
    names = {}

    def piece(start, stop):
        names[start] = threading.current_thread().name
        return list(range(start, stop))

    assert sum(cpu_team.run(piece, 10, work=10), []) == list(range(10))
    assert names[0] == threading.current_thread().name  # the caller works on the first share
    assert sorted(names[k] for k in names if k) == ["tinypix-team-1", "tinypix-team-2"]


def test_small_work_and_nested_calls_stay_on_the_calling_thread(team_of, monkeypatch):
    team_of(2)
    monkeypatch.setattr(cpu_team, "MIN_SHARE", 50)
    assert cpu_team.run(lambda a, b: (a, b), 4, work=99) == [(0, 4)]
    assert cpu_team.run(lambda a, b: (a, b), 4, work=100) == [(0, 2), (2, 4)]
    inner = cpu_team.run(lambda a, b: cpu_team.run(lambda c, d: (c, d), b - a, work=100), 4, 100)
    assert inner == [[(0, 2)], [(0, 2)]]


def test_one_thread_means_no_team(team_of):
    team_of(1)
    assert cpu_team.run(lambda a, b: threading.current_thread().name, 8, work=10**6) == \
        [threading.current_thread().name]


def test_shares_run_on_one_blas_thread_and_the_count_comes_back(team_of):
    """The BLAS count is held at 1 while shares run (in NumPy's OpenBLAS it is process-wide)
    and is the user's again when the call returns; Numba's count is never touched."""
    team_of(2)
    before, loops = _blas_threads(), numba.get_num_threads()
    inside = cpu_team.run(lambda a, b: _blas_threads(), 2, work=2)
    assert all(counts == [1] * len(before) for counts in inside)
    assert _blas_threads() == before and numba.get_num_threads() == loops


def test_overlapping_calls_from_two_threads_give_the_blas_count_back(team_of):
    """One call's end must not give the count back while another call still runs, nor leave
    1 behind for good."""
    team_of(2)
    before = _blas_threads()
    if before == [1] * len(before):
        pytest.skip("BLAS runs on one thread here already: nothing to give back")
    a_started, b_started, a_ended = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a_share(start, stop):
        if start == 0:  # the first caller's own share: wait until the second call runs
            a_started.set()
            b_started.wait(5)

    def b_share(start, stop):
        if start == 0:
            b_started.set()
            a_ended.wait(5)  # the first call has ended by now
            seen["b"] = _blas_threads()

    def call_a():
        cpu_team.run(a_share, 2, work=2)
        a_ended.set()
    thread_a = threading.Thread(target=call_a)
    thread_a.start()
    a_started.wait(5)
    thread_b = threading.Thread(target=lambda: cpu_team.run(b_share, 2, work=2))
    thread_b.start()
    for thread in (thread_a, thread_b):
        thread.join(10)
    assert seen == {"b": [1] * len(before)}  # still held while the second call ran
    assert _blas_threads() == before         # and given back once both ended


def test_an_error_in_any_share_is_raised_after_all_shares_end(team_of):
    team_of(3)
    ended = []

    def fails(start, stop):
        if start in (0, 4):
            raise KeyError(f"share {start}:{stop}")
        time.sleep(0.05)
        ended.append(start)
    for _ in range(2):  # and the team keeps working afterwards
        ended.clear()
        with pytest.raises(KeyError, match="share"):
            cpu_team.run(fails, 6, work=6)
        assert ended == [2]
    assert cpu_team.run(lambda a, b: b - a, 6, work=6) == [2, 2, 2]


def test_a_smaller_team_after_a_bigger_one_uses_its_first_helpers(team_of):
    team_of(4)
    assert cpu_team.run(lambda a, b: b - a, 8, work=8) == [2, 2, 2, 2]
    team_of(2)
    names = cpu_team.run(lambda a, b: threading.current_thread().name, 8, work=8)
    assert names == [threading.current_thread().name, "tinypix-team-1"]


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_a_bad_team_size_is_refused(monkeypatch, text):
    monkeypatch.setattr(cpu_team, "_size", None)
    monkeypatch.setenv(cpu_team.ENV_VAR, text)
    with pytest.raises(ValueError, match=f"{cpu_team.ENV_VAR}={text!r}.*1 or more"):
        cpu_team.get_num_threads()
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="set_num_threads.*1 or more"):
            tinypix.set_num_threads(bad)


def test_the_size_comes_from_set_num_threads_then_the_environment(monkeypatch):
    monkeypatch.setattr(cpu_team, "_size", None)
    monkeypatch.setenv(cpu_team.ENV_VAR, "3")
    assert tinypix.get_num_threads() == 3
    tinypix.set_num_threads(5)
    assert tinypix.get_num_threads() == 5


def test_pooling_resizing_and_batch_norm_are_the_same_with_and_without_a_team(team_of):
    """Shares of (n, c) planes, or of channels for batch norm; uneven shares too."""
    from tinypix.kernels import cpu, cpu_norm
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 6, 8))
    dy_pool, dy_up = rng.standard_normal((5, 3, 3, 4)), rng.standard_normal((5, 3, 9, 13))

    def every_kernel():
        y, indices = cpu.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
        geometry = (3, 3), (2, 1), (1, 0), (1, 2)  # kernel, stride, padding, dilation
        bn = cpu_norm.forward(x, np.linspace(0.5, 2, 3), np.arange(3) / 3, 1e-5)
        return (y, indices, cpu.max_pool2d_backward(dy_pool, indices, x.shape),
                cpu.max_unpool2d(dy_pool, indices, x.shape[2:]), cpu.max_unpool2d_backward(x, indices),
                cpu.bilinear_interpolate(x, (9, 13), False),
                cpu.bilinear_interpolate_backward(dy_up, x.shape[2:], True),
                cpu.col2im(cpu.im2col(x, *geometry), x.shape, *geometry),
                *bn, *cpu_norm.backward(dy_up[:, :, :6, :8], bn[1], np.full(3, 0.7)))
    runs = []
    for size in (1, 2, 3):
        team_of(size)
        runs.append(every_kernel())
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
