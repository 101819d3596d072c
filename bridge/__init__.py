"""magenta-bridge: Magenta-style music models served over OSC from NumPy bundles."""
import os
import sys

# Sampling multiplies small matrices one step at a time. OpenBLAS threads only add hand-off
# cost there (continue at defaults measured 52 ms p50 with them, 8 ms without, on 2 cores), and
# the server runs its own worker threads; under contention the engine's blocked products took
# 0.4-0.8 s of CPU where one thread took 15 ms. Set before NumPy loads; a user's own setting
# wins. A program that loaded NumPy first has its BLAS threads started already: they are
# limited at run time instead (threadpoolctl, imported only then: `serve` imports no NumPy first).
if "OPENBLAS_NUM_THREADS" not in os.environ:
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    if "numpy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")

__version__ = "0.1.0"
