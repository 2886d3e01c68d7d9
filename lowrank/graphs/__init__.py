"""Graph methods: personalized PageRank (exact and PowerWalk) and FastRP node embeddings.

Graphs are given as a scipy sparse adjacency (row = source, column = target), a
networkx graph, or the path of an edge-list file; see :func:`as_adjacency`.
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        # graph input (shared by every graph method)
        "as_adjacency": "_input",
        "read_edge_list": "_input",
        # personalized PageRank (issue 3)
        "personalized_pagerank": "pagerank",
        "PowerWalk": "powerwalk",
        # FastRP (issue 4)
        "fastrp": "_fastrp",  # not "fastrp": the submodule would shadow the function
        "FastRP": "_fastrp",
        "evaluate_node_classification": "evaluation",
    },
)
