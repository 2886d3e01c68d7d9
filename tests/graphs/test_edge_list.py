"""read_edge_list on the files users have (CSV/TSV with a header, SNAP/KONECT integer ids as labels),
checked against networkx's own readers of the same files; bad files and bad arguments."""

import networkx as nx
import numpy as np
import pytest
import scipy.sparse as sp

from lowrank.graphs import as_adjacency, fastrp, personalized_pagerank, read_edge_list


def _dense_by_label(adj):
    """{(source label, target label): weight} of an Adjacency, for comparisons independent of numbering."""
    labels = adj.labels if adj.labels is not None else tuple(range(adj.n_nodes))
    C = adj.matrix.tocoo()
    return {(labels[i], labels[j]): w for i, j, w in zip(C.row, C.col, C.data)}


def _networkx_arcs(G):
    return {(u, v): d.get("weight", 1.0) for u, v, d in G.edges(data=True)}


def test_csv_with_header_matches_networkx(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text("source,target,weight\n1,2,0.5\n2,3,1.5\n3,1,2\n1,3,4\n")
    adj = read_edge_list(path)
    G = nx.read_weighted_edgelist(path, delimiter=",", create_using=nx.DiGraph, nodetype=int, comments="s")
    assert _dense_by_label(adj) == _networkx_arcs(G)
    assert adj.labels == (1, 2, 3)


def test_tab_separated_with_header_and_undirected(tmp_path):
    path = tmp_path / "g.tsv"
    path.write_text("from\tto\nalice\tbob\nbob\tcarol\n")
    adj = read_edge_list(path, directed=False, header=True)
    G = nx.read_edgelist(path, delimiter="\t", comments="f")  # networkx: the header line is skipped as a comment
    assert _dense_by_label(adj) == {**_networkx_arcs(G), **{(v, u): w for (u, v), w in _networkx_arcs(G).items()}}
    # header detection: ids that are not integers over lines whose ids are
    auto = tmp_path / "auto.tsv"
    auto.write_text("FromNodeId\tToNodeId\n0\t1\n1\t2\n")
    assert read_edge_list(auto).matrix.shape == (3, 3)


def test_snap_integer_ids_are_labels(tmp_path):
    path = tmp_path / "snap.txt"
    path.write_text("# Directed graph: toy.txt\n# FromNodeId\tToNodeId\n5\t3352\n3352\t17\n17\t5\n17\t900\n")
    adj = read_edge_list(path)
    assert adj.n_nodes == 4 and adj.labels == (5, 17, 900, 3352)
    G = nx.read_edgelist(path, create_using=nx.DiGraph, nodetype=int)
    assert _dense_by_label(adj) == _networkx_arcs(G)
    # results are reported by label: PPR from seed label 17 equals networkx's from node 17
    X = personalized_pagerank(path, [17], tol=1e-10, max_iter=1000)
    pr = nx.pagerank(G, personalization={17: 1}, tol=1e-14, max_iter=10_000)
    assert np.abs(X[0] - np.array([pr[v] for v in adj.labels])).sum() < 1e-8
    # FastRP embeds the 4 vertices present, not 3353
    assert fastrp(path, 8, iteration_weights=(1.0,), rng=0).shape == (4, 8)
    # the option for users who want integer ids as indices
    dense = read_edge_list(path, reindex=False)
    assert dense.labels is None and dense.n_nodes == 3353
    assert dense.matrix[5, 3352] == 1 and dense.matrix[17, 900] == 1
    assert read_edge_list(path, reindex=False, n_nodes=4000).n_nodes == 4000
    # ids that are exactly 0..n-1 stay plain indices
    plain = tmp_path / "plain.txt"
    plain.write_text("0 1\n1 2\n")
    assert read_edge_list(plain).labels is None


def test_huge_ids_do_not_allocate(tmp_path):
    path = tmp_path / "big.txt"
    path.write_text(f"{10**12} 3\n3 {10**12 + 7}\n")
    adj = read_edge_list(path)
    assert adj.n_nodes == 3 and adj.labels == (3, 10**12, 10**12 + 7)
    assert adj.matrix.indptr.nbytes < 100
    with pytest.raises(ValueError, match="reindex=True"):
        read_edge_list(path, reindex=False)


def test_konect_comments_weights_and_timestamps(tmp_path):
    path = tmp_path / "out.konect"
    path.write_text("% asym positive\n% 3 3 3\n1 2 3 1000\n2 3 1 1001\n1 2 2 1002\n")
    adj = read_edge_list(path)
    assert _dense_by_label(adj) == {(1, 2): 5.0, (2, 3): 1.0}  # repeated arcs add up; timestamps ignored


def test_comma_and_space_mixed_and_trailing_separator(tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_text("0, 1, 2.5\n1, 2,\n")
    adj = read_edge_list(path)
    np.testing.assert_array_equal(adj.matrix.toarray(), [[0, 2.5, 0], [0, 0, 1], [0, 0, 0]])


def test_bad_files_and_arguments(tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("0 1\n")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_edge_list(tmp_path / "missing.txt")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81 1\n")
    with pytest.raises(ValueError, match="bin.txt"):
        read_edge_list(binary)
    nul = tmp_path / "nul.txt"
    nul.write_bytes(b"0 1\x00\n")
    with pytest.raises(ValueError, match="nul.txt"):
        read_edge_list(nul)
    with pytest.raises(ValueError, match="cannot read"):
        read_edge_list(tmp_path)  # a directory
    cases = [
        ("0 1 2 3 4\n", {}, ValueError, "expected"),
        ("0\n", {}, ValueError, "expected"),
        ("0 1 heavy\n1 2 1\n", {"header": False}, ValueError, "not a number"),
        ("# nothing\n", {}, ValueError, "no edges"),
        ("a b\n", {"reindex": False}, ValueError, "integer"),
        ("-1 2\n", {"reindex": False}, ValueError, "negative"),
        ("0 5\n", {"reindex": False, "n_nodes": 3}, ValueError, "n_nodes"),
        ("0 5\n", {"n_nodes": 9}, ValueError, "reindex=False"),
        ("0 1 -2\n", {}, ValueError, "non-negative"),
        ("0 1 nan\n", {}, ValueError, "finite"),
        ("0 1\n", {"delimiter": "x"}, ValueError, "delimiter"),
        ("0 1\n", {"header": "yes"}, ValueError, "header"),
        ("0 1\n", {"directed": "no"}, TypeError, "directed"),
        ("0 1\n", {"directed": 0}, TypeError, "directed"),
        ("0 1\n", {"reindex": None}, TypeError, "reindex"),
    ]
    for text, kwargs, error, match in cases:
        path = tmp_path / "case.txt"
        path.write_text(text)
        with pytest.raises(error, match=match):
            read_edge_list(path, **kwargs)
    with pytest.raises(TypeError, match="path"):
        read_edge_list(3)
    with pytest.raises(TypeError, match="directed"):
        as_adjacency(str(good), directed="no")


def test_directed_false_reads_both_arcs(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("a b 2\nb c\nc c\n")
    adj = read_edge_list(path, directed=False)
    expected = {("a", "b"): 2.0, ("b", "a"): 2.0, ("b", "c"): 1.0, ("c", "b"): 1.0, ("c", "c"): 1.0}
    assert _dense_by_label(adj) == expected
    assert (adj.matrix != adj.matrix.T).nnz == 0 and sp.issparse(adj.matrix)
