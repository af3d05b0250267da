"""Search: keyword and vector retrieval, fused.

OpenMP threads (torch's and faiss's own copies) spin while idle by default; two spinning pools
on a 2-core server made a 1M-paper search 2-10x slower (bench/search.py). They are told to sleep
instead, before either library is imported (a value the operator set is kept).
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
