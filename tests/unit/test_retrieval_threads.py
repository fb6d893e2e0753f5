"""numpy's BLAS runs on one thread in every process (retrieval.apps.limit_blas_threads)."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

from retrieval.apps import limit_blas_threads


def _blas_threads() -> list[int]:
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_is_limited_to_one_thread_at_start():
    assert _blas_threads() and set(_blas_threads()) == {1}


def test_an_operators_thread_variable_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # what libraries set for their own OpenMP: not a choice
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    try:
        threadpool_limits(limits=2, user_api="blas")
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
        limit_blas_threads()
        assert set(_blas_threads()) == {2}
        monkeypatch.delenv("OPENBLAS_NUM_THREADS")
        limit_blas_threads()
        assert set(_blas_threads()) == {1}
    finally:
        threadpool_limits(limits=1, user_api="blas")
