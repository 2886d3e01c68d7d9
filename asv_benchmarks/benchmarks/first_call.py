"""First call of each numba-backed method in a fresh interpreter, with a cold and a warm kernel cache.

``timeraw_`` benchmarks run in a new Python process per sample: the data are built and the library is
imported in the (untimed) setup, and the timed code is the first call, which includes numba's compile
(cold: an empty ``NUMBA_CACHE_DIR``) or the load of the cached machine code (warm: a cache filled once
in ``setup_cache``). ``SecondCall`` times the same call in one process once everything is compiled,
the floor the warm first call is compared with (goal: warm first call <= 1.5 x second call + 0.5 s).
``CommandLine`` times ``python -m lowrank ppr`` on a 6-vertex graph as a user runs it (interpreter start
included), and ``track_cache_mib`` the size of the filled cache on disk.
"""

import os
import subprocess
import sys
import tempfile
import textwrap

# data and imports (untimed); every snippet leaves `run` as the call to time
_SNIPPETS = {
    "fastrp": """
        import networkx as nx, scipy.sparse as sp
        from lowrank.graphs import fastrp
        A = sp.csr_matrix(nx.to_scipy_sparse_array(nx.barabasi_albert_graph(20000, 4, seed=0)))
        run = lambda: fastrp(A, 128, rng=0)
    """,
    "personalized_pagerank": """
        import networkx as nx, scipy.sparse as sp
        from lowrank.graphs import personalized_pagerank
        A = sp.csr_matrix(nx.to_scipy_sparse_array(nx.barabasi_albert_graph(20000, 4, seed=0)))
        run = lambda: personalized_pagerank(A, [0, 1, 2])
    """,
    "powerwalk": """
        import networkx as nx, scipy.sparse as sp
        from lowrank.graphs import PowerWalk
        A = sp.csr_matrix(nx.to_scipy_sparse_array(nx.barabasi_albert_graph(20000, 4, seed=0)))
        run = lambda: PowerWalk(random_state=0).fit(A).query([0, 1, 2])
    """,
    "complete_matrix": """
        from lowrank.completion import complete_matrix
        from lowrank.datasets import planted_low_rank
        X = planted_low_rank(2000, 2000, 5, 0.05, rng=0).observed
        run = lambda: complete_matrix(X, 5, rng=0)
    """,
    "streaming": """
        import numpy as np
        from lowrank.streaming import RandomOrderTopEigenvector
        X = np.random.default_rng(0).standard_normal((20000, 100))
        run = lambda: RandomOrderTopEigenvector(random_state=0).fit(X)
    """,
    "funbat": """
        from lowrank.datasets import continuous_tensor
        from lowrank.tensors import FunBaT
        data = continuous_tensor(2000, rng=0)
        run = lambda: FunBaT(rank=2, n_epochs=50, random_state=0).fit(data.coords, data.values)
    """,
}
CALLS = list(_SNIPPETS)


def _setup_code(cache_dir):
    # NUMBA_CACHE_DIR must be set before numba is imported (numba reads it once)
    return f"import os\nos.environ['NUMBA_CACHE_DIR'] = {cache_dir!r}\nos.environ['OMP_NUM_THREADS'] = '1'\n"


def _fill(cache_dir):
    """Run every call once in a fresh process, so that ``cache_dir`` holds all their kernels."""
    for call in CALLS:
        code = _setup_code(cache_dir) + textwrap.dedent(_SNIPPETS[call]) + "run()\n"
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=600)


class FirstCall:
    params = (CALLS, ["cold", "warm"])
    param_names = ["call", "cache"]
    timeout = 900
    repeat = (1, 3, 60.0)  # each sample is a new interpreter

    def setup_cache(self):
        warm = tempfile.mkdtemp(prefix="lowrank-warm-cache-")
        _fill(warm)
        return warm

    def timeraw_first_call(self, warm, call, cache):
        cache_dir = warm if cache == "warm" else tempfile.mkdtemp(prefix="lowrank-cold-cache-")
        return "run()", _setup_code(cache_dir) + textwrap.dedent(_SNIPPETS[call])

    def track_cache_mib(self, warm, call, cache):
        from lowrank._utils.jit import cache_size

        return cache_size(os.path.join(warm, "lowrank")) / 2**20

    track_cache_mib.unit = "MiB"


class SecondCall:
    params = CALLS
    param_names = ["call"]
    timeout = 600

    def setup(self, call):
        namespace = {}
        exec(textwrap.dedent(_SNIPPETS[call]), namespace)
        self.run = namespace["run"]
        self.run()  # compile (or load) and warm up

    def time_second_call(self, call):
        self.run()


class CommandLine:
    params = ["cold", "warm"]
    param_names = ["cache"]
    timeout = 600
    repeat = (1, 5, 60.0)

    def setup_cache(self):
        folder = tempfile.mkdtemp(prefix="lowrank-cli-")
        edges = os.path.join(folder, "edges.txt")
        with open(edges, "w") as f:
            f.write("0 1\n1 2\n2 0\n2 3\n3 4\n4 5\n5 3\n")
        warm = os.path.join(folder, "cache")
        subprocess.run([sys.executable, "-m", "lowrank", "ppr", edges, "--seeds", "0,3"], check=True,
                       capture_output=True, env={**os.environ, "NUMBA_CACHE_DIR": warm}, timeout=600)
        return folder

    def timeraw_cli_ppr(self, folder, cache):
        cache_dir = os.path.join(folder, "cache") if cache == "warm" else tempfile.mkdtemp(prefix="lowrank-cold-")
        argv = [sys.executable, "-m", "lowrank", "ppr", os.path.join(folder, "edges.txt"), "--seeds", "0,3"]
        code = (f"subprocess.run({argv!r}, check=True, capture_output=True, "
                f"env={{**os.environ, 'NUMBA_CACHE_DIR': {cache_dir!r}}})")
        return code, "import os, subprocess"
