"""Command-line face of FastRP: ``lowrank fastrp EDGES --dim 128 -o emb.npy`` and its ``demo`` rows."""

import logging
import time

import numpy as np

from lowrank.cli import DemoRow

logger = logging.getLogger(__name__)


def register(subparsers):
    p = subparsers.add_parser(
        "fastrp",
        help="FastRP node embeddings of an edge-list file",
        description=(
            "Embed the vertices of a graph with FastRP (Chen et al., CIKM 2019). EDGES is a text file of "
            "'source target [weight]' lines (whitespace, comma or tab separated, an optional header row); the "
            "embedding (one row per vertex) is saved with numpy.save. Vertex ids are labels: the ids present are "
            "numbered (integers in increasing order, names in order of appearance) and, unless they are exactly "
            "0..n-1, written one per line next to the output (OUT.nodes.txt: line i names row i)."
        ),
    )
    p.add_argument("edges", metavar="EDGES", help="edge-list file: 'source target [weight]' per line")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output .npy file")
    p.add_argument("--dim", type=int, default=128, help="embedding dimension (default 128)")
    p.add_argument(
        "--weights", type=float, nargs="+", default=[0.0, 0.0, 1.0, 6.67], metavar="W",
        help="iteration weights alpha_1..alpha_k (default 0 0 1 6.67)",
    )
    p.add_argument("--beta", type=float, default=-0.64, help="normalization strength (default -0.64)")
    p.add_argument("--self-influence", type=float, default=0.0, help="GDS nodeSelfInfluence (default 0)")
    p.add_argument("--density", default="auto", help="projection density: auto, an int s (1/s) or a float")
    p.add_argument("--directed", action="store_true", help="read arcs as directed (default: undirected)")
    p.add_argument(
        "--ids-as-indices", action="store_true",
        help="use integer vertex ids as row indices 0..max id (default: ids are labels, only those present count)",
    )
    p.add_argument("--no-standardize", action="store_true", help="skip the final column standardization")
    p.add_argument("--float64", action="store_true", help="compute in float64 (default float32)")
    p.add_argument("--seed", type=int, default=0, help="projection seed (default 0)")
    p.set_defaults(func=_run)


def _density(text):
    if text == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        return float(text)


def _run(args):
    from lowrank._utils.io import atomic_write_bytes
    from lowrank.graphs import fastrp, read_edge_list

    adjacency = read_edge_list(args.edges, directed=args.directed, reindex=not args.ids_as_indices)
    start = time.perf_counter()
    E = fastrp(
        adjacency.matrix, args.dim, iteration_weights=tuple(args.weights), normalization_strength=args.beta,
        self_influence=args.self_influence, density=_density(args.density), standardize=not args.no_standardize,
        dtype=np.float64 if args.float64 else np.float32, rng=args.seed,
    )
    seconds = time.perf_counter() - start
    atomic_write_bytes(args.output, lambda f: np.save(f, E))
    if adjacency.labels is not None:
        names = "".join(f"{label}\n" for label in adjacency.labels)
        atomic_write_bytes(f"{args.output}.nodes.txt", lambda f: f.write(names.encode()))
    print(f"embedded {E.shape[0]} vertices in {E.shape[1]} dimensions in {seconds:.2f} s -> {args.output}")
    return 0


def demo():
    import networkx as nx

    from lowrank.datasets import planted_partition
    from lowrank.graphs import evaluate_node_classification, fastrp

    rows = []
    fastrp(np.ones((3, 3)), 2, rng=0)  # compile the numba kernels outside the timed runs
    G = nx.karate_club_graph()
    labels = np.array([G.nodes[v]["club"] == "Officer" for v in G], dtype=np.int64)
    start = time.perf_counter()
    E = fastrp(G, 16, iteration_weights=(1.0, 1.0, 1.0), normalization_strength=0.0, rng=0)
    seconds = time.perf_counter() - start
    scores = evaluate_node_classification(E, labels, train_ratio=0.5, n_repeats=10, rng=0)
    rows.append(
        DemoRow(
            "fastrp", "karate club (34 vertices, 2 clubs)", f"micro-F1 {scores.micro_f1:.2f}", "chance 0.50", seconds
        )
    )

    A, communities = planted_partition(20_000, 10, average_degree=20, mixing=0.3, rng=0)
    start = time.perf_counter()
    E = fastrp(A, 64, iteration_weights=(0.0, 1.0, 1.0), rng=0)
    seconds = time.perf_counter() - start
    scores = evaluate_node_classification(E, communities, train_ratio=0.1, n_repeats=1, rng=0)
    rows.append(
        DemoRow(
            "fastrp", "planted partition (20k vertices, 200k edges, 10 communities, 30% mixing)",
            f"micro-F1 {scores.micro_f1:.2f}, macro-F1 {scores.macro_f1:.2f}", "chance 0.10", seconds,
        )
    )
    return rows
