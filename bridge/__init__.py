"""magenta-bridge: Magenta-style music models served over OSC from NumPy bundles."""
import os

# Sampling multiplies small matrices one step at a time. OpenBLAS threads only add hand-off
# cost there (continue at defaults measured 52 ms p50 with them, 8 ms without, on 2 cores), and
# the server runs its own worker threads. Set before NumPy loads; a user's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
