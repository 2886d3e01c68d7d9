"""docstring_corpus: every query's known answer is the body of the same function's docstring."""

import importlib
import inspect

import numpy as np
import pytest

from lowrank.datasets import docstring_corpus


def _resolve(qualified):
    module, _, attr = qualified.rpartition(".")
    return getattr(importlib.import_module(module), attr)


@pytest.fixture(scope="module")
def corpus():
    return docstring_corpus(modules=["numpy", "numpy.linalg", "scipy.linalg"])


def test_known_answers_match_the_functions_own_docstrings(corpus):
    assert len(corpus.queries) == len(corpus.documents) == len(corpus.names) == len(corpus.answers) > 100
    np.testing.assert_array_equal(corpus.answers, np.arange(len(corpus.queries)))
    for i in np.random.default_rng(0).choice(len(corpus.names), 40, replace=False):
        doc = inspect.cleandoc(_resolve(corpus.names[i]).__doc__)
        # the summary appears verbatim (modulo line wrapping) in the docstring, before the body
        flat = " ".join(doc.split())
        assert corpus.queries[i] in flat
        body_start = " ".join(corpus.documents[i].split())[:60]
        assert flat.index(corpus.queries[i]) < flat.index(body_start)
        assert "Examples\n--------" not in corpus.documents[i]


def test_well_known_pairs(corpus):
    names = corpus.names
    assert corpus.queries[names.index("numpy.linalg.svd")] == "Singular Value Decomposition."
    # ufunc docstrings start with a signature line, which is skipped
    add = corpus.queries[names.index("numpy.add")]
    assert add == "Add arguments element-wise."
    assert "x1, x2 : array_like" in corpus.documents[names.index("numpy.add")]


def test_unique_summaries_and_length_limits(corpus):
    assert len(set(corpus.queries)) == len(corpus.queries)
    assert all(200 <= len(d) <= 1000 for d in corpus.documents)
    short = docstring_corpus(modules=["numpy.linalg"], min_body_chars=0, max_body_chars=50)
    assert all(len(d) <= 50 for d in short.documents)


def test_subset_is_seeded(corpus):
    a = docstring_corpus(modules=["numpy", "numpy.linalg", "scipy.linalg"], n_documents=30, rng=5)
    b = docstring_corpus(modules=["numpy", "numpy.linalg", "scipy.linalg"], n_documents=30, rng=5)
    assert a.names == b.names and len(a.names) == 30
    assert set(a.names) <= set(corpus.names)
    for name, q, d in zip(a.names, a.queries, a.documents):
        j = corpus.names.index(name)
        assert (corpus.queries[j], corpus.documents[j]) == (q, d)


def test_bad_input():
    with pytest.raises(TypeError, match="modules"):
        docstring_corpus(modules="numpy")
    with pytest.raises(ValueError, match="n_documents"):
        docstring_corpus(modules=["numpy.linalg"], n_documents=10**6)
    with pytest.raises(ValueError, match="max_body_chars"):
        docstring_corpus(max_body_chars=0)
    assert docstring_corpus(modules=["no_such_module_xyz", "numpy.linalg"]).queries


def test_same_corpus_in_every_process():
    import os
    import subprocess
    import sys

    code = (
        "import hashlib; from lowrank.datasets import docstring_corpus; c = docstring_corpus(); "
        "print(hashlib.sha1(chr(0).join(c.names + c.queries + c.documents).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1
