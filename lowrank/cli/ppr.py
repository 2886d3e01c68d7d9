"""``lowrank ppr``: personalized PageRank of seeds on an edge-list file; demo rows for PPR and PowerWalk."""

import sys

import numpy as np

from lowrank.cli import DemoRow, timed


def register(subparsers):
    p = subparsers.add_parser(
        "ppr",
        help="personalized PageRank of seed vertices on an edge-list file",
        description="Personalized PageRank (exact batched power iteration, forward push or PowerWalk) of "
        "seed vertices on an edge list 'source target [weight]'. Prints 'seed<TAB>vertex<TAB>score' lines.",
    )
    p.add_argument(
        "edges", metavar="EDGES",
        help="edge-list file: 'source target [weight]' per line (whitespace, comma or tab separated, an optional "
        "header row such as source,target,weight; '#' and '%%' comments); vertex ids are labels",
    )
    p.add_argument("--seeds", required=True, help="comma-separated seed vertices (ids as in EDGES), e.g. 1,2,3")
    p.add_argument("--top-k", type=int, default=10, help="vertices to print per seed (default 10)")
    p.add_argument("--damping", type=float, default=0.85, help="damping factor in (0, 1) (default 0.85)")
    p.add_argument("--method", choices=("power", "push", "powerwalk"), default="power", help="solver (default power)")
    p.add_argument("--tol", type=float, default=1e-6, help="L1 error tolerance of power/push (default 1e-6)")
    p.add_argument("--undirected", action="store_true", help="add the reverse of every arc")
    p.add_argument(
        "--ids-as-indices", action="store_true",
        help="use integer vertex ids as row indices 0..max id (default: ids are labels, only those present count)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of PowerWalk's walks (default 0)")
    p.add_argument("--output", "-o", help="write here instead of standard output")
    p.set_defaults(func=_run)


def _run(args):
    from lowrank.graphs import as_adjacency, personalized_pagerank

    adj = as_adjacency(args.edges, directed=not args.undirected, reindex=not args.ids_as_indices)
    seeds = _parse_seeds(args.seeds, adj, args.edges)
    top_k = min(args.top_k, adj.n_nodes)
    idx, scores = personalized_pagerank(
        adj, seeds, damping_factor=args.damping, tol=args.tol, method=args.method, top_k=top_k, rng=args.seed
    )
    names = adj.labels
    lines = [f"# personalized PageRank, damping {args.damping}, method {args.method}", "# seed\tvertex\tscore"]
    for s, row_idx, row_scores in zip(seeds, idx, scores):
        for v, x in zip(row_idx, row_scores):
            lines.append(f"{s}\t{names[v] if names is not None else int(v)}\t{x:.9g}")
    text = "\n".join(lines) + "\n"
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


def _parse_seeds(text, adj, path):
    """``--seeds`` as the file's vertex ids: integers when the file's ids are integers, else names."""
    seeds = [s.strip() for s in text.split(",") if s.strip()]
    if not seeds:
        raise ValueError("`--seeds` is empty: give comma-separated vertex ids, e.g. 1,2,3")
    if adj.labels is None or all(isinstance(v, int) for v in adj.labels):
        try:
            return [int(s) for s in seeds]
        except ValueError:
            raise ValueError(f"`--seeds` must be integer vertex ids for {path} (got {text!r})") from None
    return seeds


def _ba_graph(n, m, seed):
    import networkx as nx
    import scipy.sparse as sp

    return sp.csr_matrix(nx.to_scipy_sparse_array(nx.barabasi_albert_graph(n, m, seed=seed), format="csr"))


def demo():
    import networkx as nx

    from lowrank.graphs import PowerWalk, personalized_pagerank

    rows = []
    warm = nx.path_graph(4)  # compile the numba kernels first, so the times below are the methods'
    personalized_pagerank(warm, [0])
    PowerWalk(n_walks=2, random_state=0).fit(warm).query([0])
    G = nx.karate_club_graph()
    seeds = list(range(34))
    X, secs = timed(personalized_pagerank, G, seeds)
    ref = np.array([[nx.pagerank(G, personalization={s: 1}, tol=1e-14)[v] for v in range(34)] for s in seeds])
    rows.append(
        DemoRow(
            "personalized_pagerank (power)",
            "karate club, 34 seeds",
            f"max L1 {np.abs(X - ref).sum(axis=1).max():.1e}",
            "networkx.pagerank",
            secs,
        )
    )
    A = _ba_graph(5000, 4, 0)
    seeds = list(range(0, 5000, 50))
    exact = personalized_pagerank(A, seeds)
    pw = PowerWalk(n_walks=10, walk_length=10, random_state=0)
    _, fit_s = timed(pw.fit, A)
    approx, query_s = timed(pw.query, seeds)
    l1 = np.abs(approx - exact).sum(axis=1).mean()
    prec = np.mean(
        [np.intersect1d(np.argsort(-a)[:50], np.argsort(-e)[:50]).size / 50 for a, e in zip(approx, exact)]
    )
    rows.append(
        DemoRow(
            "PowerWalk (R=10, L=10, default tol 0.04: T=25)",
            "Barabasi-Albert n=5000, 100 seeds",
            f"mean L1 {l1:.3f}, prec@50 {prec:.2f}",
            "exact PPR (power, L1<=1e-6)",
            fit_s + query_s,
        )
    )
    return rows
