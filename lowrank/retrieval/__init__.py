"""CUR-based k-nearest-neighbour search for expensive black-box scorers (ANNCUR).

A scorer is any callable ``scorer(queries, items) -> scores`` returning the
``(len(queries), len(items))`` matrix of exact scores (a cross-encoder, a
late-interaction model, a torch module ...). :class:`CURIndex` scores a few anchor
queries against every item offline, then answers a new query with a fixed budget
of exact scorer calls: a CUR approximation of its scores picks the candidates that
the exact scorer re-ranks (Yadav et al., EMNLP 2022, arXiv:2210.12579).
"""

from lowrank._utils.lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "CURIndex": "_index",
        "DualEncoderRetriever": "_dual_encoder",
        "exact_search": "_search",
        "recall_at_k": "_search",
        "TorchModuleScorer": "scorers",
        "MaxSimScorer": "scorers",
    },
)
