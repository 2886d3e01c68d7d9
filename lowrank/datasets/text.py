"""Text retrieval data with a known answer, built from docstrings that ship with numpy and scipy."""

import importlib
import inspect
import re
from typing import NamedTuple

import numpy as np

from lowrank._utils.rng import as_generator
from lowrank._utils.validation import check_int

# Public namespaces whose functions are documented in numpydoc style. numpy.ma is left out on
# purpose: it re-exports numpy's functions with near-identical docstrings (ambiguous answers).
DEFAULT_MODULES = (
    "numpy",
    "numpy.linalg",
    "numpy.fft",
    "numpy.random",
    "numpy.polynomial.polynomial",
    "scipy.linalg",
    "scipy.sparse",
    "scipy.sparse.linalg",
    "scipy.sparse.csgraph",
    "scipy.stats",
    "scipy.special",
    "scipy.signal",
    "scipy.optimize",
    "scipy.integrate",
    "scipy.interpolate",
    "scipy.ndimage",
    "scipy.spatial",
    "scipy.spatial.distance",
    "scipy.fft",
    "scipy.cluster.hierarchy",
    "scipy.cluster.vq",
)

# A first paragraph that is only a call signature, as in ufunc docstrings ("add(x1, x2, /, ...)").
_SIGNATURE = re.compile(r"^[\w.]+\(.*\)(\s*->.*)?$", re.DOTALL)
# Sections that carry no description of what the function does (examples are code, not prose).
_STOP_SECTIONS = re.compile(r"^(Examples|References|See Also|Notes)\n-{3,}$", re.MULTILINE)


class TextCorpus(NamedTuple):
    """A retrieval corpus with a known answer: ``documents[answers[i]]`` is the target of ``queries[i]``.

    Attributes
    ----------
    queries : list of str
        One-line summaries (the first paragraph of each docstring).
    documents : list of str
        Docstring bodies (the rest, up to the first Notes/References/See Also/Examples section).
    answers : ndarray of int, shape (n,)
        Index in ``documents`` of each query's target.
    names : list of str
        Qualified name of the documented function, aligned with ``queries``.
    """

    queries: list
    documents: list
    answers: np.ndarray
    names: list


def docstring_corpus(*, modules=None, min_body_chars=200, max_body_chars=1000, n_documents=None, rng=None):
    """Queries = one-line summaries of numpy/scipy functions; targets = their docstring bodies.

    Every public routine (function, builtin or ufunc) of the given modules with a numpydoc docstring
    becomes one pair: the query is the summary paragraph, the target document is the body that
    follows it, cut at the first Notes/References/See Also/Examples section and at ``max_body_chars``.
    Aliases (the same object under two names) and repeated summaries are kept once, so every query
    has exactly one correct document. Nothing is downloaded: the text ships with the installed
    packages (so the corpus follows their versions).

    Parameters
    ----------
    modules : sequence of str, optional
        Importable module names to harvest; default :data:`DEFAULT_MODULES` (numpy and scipy
        namespaces). Modules that fail to import are skipped.
    min_body_chars : int, default=200
        Drop functions whose body is shorter than this (too little to retrieve by).
    max_body_chars : int, default=1000
        Truncate bodies to this many characters (at a word boundary).
    n_documents : int, optional
        Keep a random subset of this many pairs (drawn with ``rng``); default keeps all.
    rng : None, int or numpy.random.Generator, default=None
        Seed for the subset; unused when ``n_documents`` is None.

    Returns
    -------
    TextCorpus
        ``(queries, documents, answers, names)``; pairs sorted by qualified name, ``answers[i] == i``.

    Raises
    ------
    ValueError
        If an argument is out of range, or ``n_documents`` exceeds the number of pairs found.
    TypeError
        If ``modules`` is not a sequence of strings.

    References
    ----------
    N. Yadav, N. Monath, R. Angell, M. Zaheer, A. McCallum, "Efficient Nearest Neighbor Search
    for Cross-Encoder Models using Matrix Factorization", EMNLP 2022, arXiv:2210.12579
    (the retrieval task this corpus stands in for).

    Examples
    --------
    >>> from lowrank.datasets import docstring_corpus
    >>> corpus = docstring_corpus(modules=["numpy.linalg"])
    >>> i = corpus.names.index("numpy.linalg.svd")
    >>> corpus.queries[i]
    'Singular Value Decomposition.'
    >>> int(corpus.answers[i]) == i
    True
    """
    if modules is None:
        modules = DEFAULT_MODULES
    if isinstance(modules, str) or not all(isinstance(m, str) for m in modules):
        raise TypeError("`modules` must be a sequence of module names (str)")
    min_body_chars = check_int(min_body_chars, "min_body_chars", low=0)
    max_body_chars = check_int(max_body_chars, "max_body_chars", low=1)
    if n_documents is not None:
        n_documents = check_int(n_documents, "n_documents", low=1)

    pairs = _harvest(modules, min_body_chars, max_body_chars)
    if n_documents is not None:
        if n_documents > len(pairs):
            raise ValueError(f"`n_documents` must be at most the {len(pairs)} pairs found, got {n_documents}")
        keep = np.sort(as_generator(rng).choice(len(pairs), size=n_documents, replace=False))
        pairs = [pairs[i] for i in keep]
    names = [p[0] for p in pairs]
    queries = [p[1] for p in pairs]
    documents = [p[2] for p in pairs]
    return TextCorpus(queries, documents, np.arange(len(pairs)), names)


def _harvest(modules, min_body_chars, max_body_chars):
    # Hold every object met: an id() is only unique while its object is alive, and some attributes
    # are created on access, so a freed object's id could be reused by a different function.
    met, seen_objects, seen_summaries, pairs = [], set(), set(), {}
    for module_name in modules:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        public = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for attr in sorted(public):  # some __all__ are built from sets: their order follows the hash seed
            obj = getattr(module, attr, None)
            if not (inspect.isroutine(obj) or isinstance(obj, np.ufunc)) or id(obj) in seen_objects:
                continue
            met.append(obj)
            seen_objects.add(id(obj))
            split = _split_docstring(getattr(obj, "__doc__", None), max_body_chars)
            if split is None:
                continue
            summary, body = split
            if len(body) < min_body_chars or summary in seen_summaries:
                continue
            seen_summaries.add(summary)
            pairs[f"{module_name}.{attr}"] = (summary, body)
    return [(name, *pairs[name]) for name in sorted(pairs)]


def _split_docstring(doc, max_body_chars):
    """``(summary, body)`` of a numpydoc docstring, or None when it has no usable summary."""
    if not isinstance(doc, str):
        return None
    paragraphs = [p.strip() for p in inspect.cleandoc(doc).split("\n\n")]
    while paragraphs and _SIGNATURE.match(paragraphs[0]):
        paragraphs.pop(0)
    if len(paragraphs) < 2 or not paragraphs[0] or "\n---" in paragraphs[0]:
        return None
    summary = " ".join(paragraphs[0].split())
    body = "\n\n".join(paragraphs[1:])
    stop = _STOP_SECTIONS.search(body)
    if stop is not None:
        body = body[: stop.start()]
    body = body.strip()
    if len(body) > max_body_chars:
        body = body[:max_body_chars].rsplit(None, 1)[0]
    return summary, body
