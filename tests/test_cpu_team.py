"""kernels/cpu_team.py: a batch's images shared out over one thread per core."""
import threading
import time

import numba

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinypix import _blas, kernels
from tinypix.functional import conv
from tinypix.kernels import cpu, cpu_conv, cpu_norm, cpu_team, cpu_winograd


@pytest.fixture
def team_of(monkeypatch):
    """Make a fresh team of the given size (via TEAM_ENV), sharing out even the small work of
    these tests (MIN_WORK); the old team comes back afterwards."""
    def make(n):
        monkeypatch.setattr(cpu_team, "_team", None)
        monkeypatch.setattr(cpu_team, "MIN_WORK", 0)
        monkeypatch.setenv(cpu_team.TEAM_ENV, str(n))
        return cpu_team.size()
    yield make
    monkeypatch.undo()


@given(st.integers(0, 40), st.integers(1, 8))
def test_shares_cover_the_range_evenly(n, size):
    with pytest.MonkeyPatch.context() as m:
        m.setattr(cpu_team, "size", lambda: size)
        pieces = cpu_team.shares(n)
    assert pieces[0][0] == 0 and pieces[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))      # contiguous, in order
    lengths = [stop - start for start, stop in pieces]
    assert len(pieces) == max(1, min(size, n)) and max(lengths) - min(lengths) <= 1


def _need_a_team(size):
    if size == 1:
        pytest.skip("no team here: NumPy's BLAS has no per-thread setting, or Numba's threading "
                    "layer is not thread-safe")


def test_run_uses_the_team_threads_and_keeps_order(team_of):
    _need_a_team(team_of(3))
    names = {}

    def piece(start, stop):
        names[start] = threading.current_thread().name
        return list(range(start, stop))

    assert sum(cpu_team.run(piece, 10, work=10), []) == list(range(10))
    assert names[0] == threading.current_thread().name  # the caller works on the first share
    assert sorted(names[k] for k in names if k) == ["tinypix-team-1", "tinypix-team-2"]


def test_small_work_and_nested_calls_stay_on_the_calling_thread(team_of, monkeypatch):
    _need_a_team(team_of(2))
    monkeypatch.setattr(cpu_team, "MIN_WORK", 100)
    assert cpu_team.run(lambda a, b: (a, b), 4, work=99) == [(0, 4)]
    assert cpu_team.run(lambda a, b: (a, b), 4, work=100) == [(0, 2), (2, 4)]
    inner = cpu_team.run(lambda a, b: cpu_team.run(lambda c, d: (c, d), b - a, work=100), 4, 100)
    assert inner == [[(0, 2)], [(0, 2)]]


def test_every_share_runs_single_threaded_and_the_caller_gets_its_settings_back(team_of):
    _need_a_team(team_of(2))
    blas = _blas.thread_local_setting()
    loops = numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(loops)
    before = blas(2)
    try:
        inside = cpu_team.run(lambda a, b: (numba.get_num_threads(), blas(1)), 2, work=2)
        assert inside == [(1, 1), (1, 1)]  # the caller's share as well as the helper's
        assert numba.get_num_threads() == loops and blas(before) == 2  # (blas returns the old count)
    finally:
        numba.set_num_threads(1)


def test_overlapping_calls_from_two_threads_give_the_blas_count_back(team_of):
    """OpenBLAS's count is process-wide in NumPy's wheels: one call's exit must not leave 1
    behind for another that is still running, nor make 1 the count for good."""
    _need_a_team(team_of(2))
    blas = _blas.thread_local_setting()
    before = blas(2)
    a_started, b_started, a_ended = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def a_share(start, stop):
        if start == 0:  # the first caller's own share: wait until the second call runs
            a_started.set()
            b_started.wait(5)

    def b_share(start, stop):
        if start == 0:
            b_started.set()
            a_ended.wait(5)  # the first call has given its hold back by now
            seen["b"] = blas(1)  # what the count was inside the second call

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
    try:
        assert seen == {"b": 1}       # still held while the second call ran
        assert blas(before) == 2      # and given back once both ended
    finally:
        blas(before)


def test_threads_that_start_together_make_one_team(team_of):
    _need_a_team(team_of(2))
    cpu_team._team = None
    helpers_before = set(threading.enumerate())
    start = threading.Barrier(4)
    pieces = []

    def first_call():
        start.wait(5)
        pieces.append(cpu_team.run(lambda a, b: b - a, 4, work=4))
    threads = [threading.Thread(target=first_call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    new_helpers = [t for t in set(threading.enumerate()) - helpers_before
                   if t.name.startswith("tinypix-team-")]
    assert pieces == [[2, 2]] * 4 and len(new_helpers) == 1  # one team, one helper


def test_watch_sees_a_flag_set_by_another_thread_and_gives_up_when_none_is():
    flags, mark = np.zeros((2, 16), np.int64), np.zeros((1, 16), np.int64)
    assert not cpu_team._watch(flags, 1, 1000, mark, 7)  # nothing set: gives up
    assert mark[0, 0] == 7 and mark[0, 1:].sum() == 0     # the mark is set first
    flags[0, 0] = 1
    assert not cpu_team._watch(flags, 1, 1000)            # every row must get there
    flags[1, 0] = 3
    assert cpu_team._watch(flags, 1, 1)
    flags[1, 0] = 9
    late = threading.Timer(0.05, lambda: flags.__setitem__((0, 0), 5))
    late.start()  # a read in the loop that is not done again would never see it: about 10 s of loops
    assert cpu_team._watch(flags, 5, int(10 * cpu_team._loops_per_second()))
    late.join()


def test_a_helper_that_misses_its_bell_still_runs_its_share(team_of):
    _need_a_team(team_of(2))
    team = cpu_team._team[1]
    team.bells[0, 0] -= 1  # as if a ring were lost: the helper finds its share in its inbox
    result = []
    caller = threading.Thread(target=lambda: result.append(cpu_team.run(lambda a, b: b - a, 4, work=4)))
    caller.start()
    caller.join(10)
    assert result == [[2, 2]]


def test_an_error_in_any_share_is_raised_after_all_shares_end(team_of):
    _need_a_team(team_of(3))
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


@pytest.mark.parametrize("text", ["0", "-2", "two", "1.5"])
def test_a_bad_team_size_is_refused(team_of, text):
    with pytest.raises(ValueError, match=f"{cpu_team.TEAM_ENV}={text!r}.*1 or more"):
        team_of(text)


@pytest.mark.parametrize("channels", [(3, 8), (16, 16)])
@pytest.mark.parametrize("route", ["im2col", "Winograd by images", "Winograd by passes"])
def test_conv_is_the_same_with_and_without_a_team(team_of, monkeypatch, channels, route):
    """Batches of 1, 3 and 5 images leave shares of one image and uneven shares; every team
    size gives the readable path's y, dx and dw. Every route: im2col (with col2im where C < F),
    and Winograd (forced on), its images shared out or its passes and products (WINOGRAD_SHARE)."""
    monkeypatch.setattr(cpu_winograd, "applies", lambda *args: route != "im2col")
    monkeypatch.setattr(cpu_conv, "WINOGRAD_SHARE", 0 if route == "Winograd by images" else 100)
    C, F = channels
    geo = conv.Geometry((3, 3), (1, 1), (1, 1), (1, 1), 1)
    for N in (1, 3, 5):
        rng = np.random.default_rng(N)
        x, w = rng.standard_normal((N, C, 20, 20)), rng.standard_normal((F, C, 3, 3))
        dy = rng.standard_normal((N, F, 20, 20))
        with monkeypatch.context() as m:  # the readable path: y, dx, dw
            m.setenv(kernels.ENV_VAR, "reference")
            expected = (conv._conv_forward_data(x, w, geo),
                        conv._conv_backward_data(dy, w, geo, x.shape),
                        conv._conv_weight_grad(dy, x, w.shape, geo))
        for size in (1, 2, 3):
            team_of(size)
            got = (cpu_conv.forward(x, w, geo), *cpu_conv.conv2d_grads(dy, x, w, geo))
            for a, b in zip(got, expected):
                np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


def _plane_kernels(x, dy_pool, dy_up):
    """Every cpu.py / cpu_norm.py wrapper that shares out its kernel, on x (N, C, H, W)."""
    y, indices = cpu.max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)
    geometry = (3, 3), (2, 1), (1, 0), (1, 2)  # kernel, stride, padding, dilation
    bn = cpu_norm.forward(x, np.linspace(0.5, 2, x.shape[1]), np.arange(x.shape[1]) / 3, 1e-5)
    return (y, indices, cpu.max_pool2d_backward(dy_pool, indices, x.shape),
            cpu.max_unpool2d(dy_pool, indices, x.shape[2:]), cpu.max_unpool2d_backward(x, indices),
            cpu.bilinear_interpolate(x, (9, 13), False),
            cpu.bilinear_interpolate_backward(dy_up, x.shape[2:], True),
            cpu.col2im(cpu.im2col(x, *geometry), x.shape, *geometry),
            *bn, *cpu_norm.backward(dy_up[:, :, :6, :8], bn[1], np.full(x.shape[1], 0.7)))


def test_pooling_resizing_and_batch_norm_are_the_same_with_and_without_a_team(team_of):
    """Shares of images or (n, c) planes, or of channels for batch norm; uneven shares too."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 6, 8))
    dy_pool, dy_up = rng.standard_normal((5, 3, 3, 4)), rng.standard_normal((5, 3, 9, 13))
    runs = []
    for size in (1, 2, 3):
        team_of(size)
        runs.append(_plane_kernels(x, dy_pool, dy_up))
    for other in runs[1:]:
        for a, b in zip(runs[0], other):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
