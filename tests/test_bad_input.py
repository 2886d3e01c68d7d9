"""Bad and unusual input at every public entry point, discovered from the subpackages' ``__all__``.

Like ``tests/test_common.py`` does for sklearn's checks, this module runs one shared corpus over
every public function and estimator whose first argument is data, so that an entry point is
covered the day it is exported:

* bad values (NaN, inf, empty, wrong ndim, complex, numeric strings, objects, None) must raise a
  ``ValueError`` or ``TypeError`` -- anything else is a *crash*, a normal return is *silent*;
* unusual but valid values (lists, int dtype, float32, sparse with stored zeros) must not crash.

The outcome of every call is one of ``clear`` (a ValueError/TypeError naming an argument),
``vague`` (one that names none), ``crash``, ``silent`` or ``ok``. ``python tests/test_bad_input.py``
prints the counts per subpackage. Entry points that take no data first (models, paths, sizes) are
listed in ``NOT_DATA`` with the reason; documented exceptions to the generic rule are in
``EXPECTED``.
"""

import dataclasses
import importlib
import inspect
import sys
from collections import Counter

import numpy as np
import pytest
import scipy.sparse as sp

SUBPACKAGES = ["linalg", "graphs", "tensors", "completion", "streaming", "retrieval", "vision"]

# Required arguments other than the data, filled by name (the data argument is the first one).
FILL = {
    "rank": 2, "k": 2, "n_components": 2, "Vh": None, "labels": None, "y": None, "bands": 2,
    "reference": None, "direction": None, "seeds": [0], "n_samples": 20,
}

# Entry points whose first argument is not an array: what they take is checked in their own tests.
NOT_DATA = {
    "dct_basis": "takes a size", "sparse_random_projection": "takes sizes", "read_edge_list": "takes a path",
    "iter_batches": "an iterator adapter tested with the streaming corpus",
    "CompletionResult": "a result container built by the library", "TopEigenvectorResult": "a result container",
    "CURIndex": "takes a scorer first (tests/test_retrieval.py)", "DualEncoderRetriever": "takes an encoder",
    "MaxSimScorer": "a scorer", "TorchModuleScorer": "takes a torch module", "exact_search": "takes a scorer",
    "Denoise": "an operator", "Inpaint": "an operator (mask checked in tests/vision)", "SuperResolve": "an operator",
    "HIRDiff": "an estimator over cubes, tested in tests/vision", "HouseholderProjector": "a torch layer",
    "exponential_schedule": "takes a step count", "traverse": "takes a generator network",
    "closed_form_directions": "takes a torch weight (tests/vision)", "estimate_coefficients": "takes a torch cube",
    "select_bands": "takes a torch cube (tests/vision)", "weighted_tv_loss": "takes a torch cube (tests/vision)",
    "FunBaT": "continuous indices + values (tests/tensors/test_funbat.py)",
    "evaluate_node_classification": "embedding + labels, checked in tests/graphs",
    "mode_dot": "tensor algebra on a (tensor, matrix) pair, checked in tests/tensors/test_products.py",
    "tucker_to_tensor": "takes a (core, factors) decomposition, checked in tests/tensors/test_products.py",
}

# (entry point, case) -> why the generic rule does not apply.
EXPECTED = {
    ("complete_matrix", "nan"): "NaN marks a missing entry: that is the input format",
    ("RobustAltMin", "nan"): "NaN marks a missing entry", ("AltMin", "nan"): "NaN marks a missing entry",
    ("SoftImpute", "nan"): "NaN marks a missing entry",
    **{(est, "object"): "sklearn reads None in an object array as NaN, a missing entry"
       for est in ("RobustAltMin", "AltMin", "SoftImpute")},
    ("svd_flip", "ndim1"): "a 1-D U is one singular vector: flipped like a column",
}

# sklearn's own validate_data messages are clear to its users and are kept as they are.
SKLEARN_MESSAGES = ("Complex data not supported", "Expected 2D array", "Found array with", "features, but",
                    "Input X contains", "Input contains", "dtype='numeric' is not compatible")

# Gaps found by this module and still open (xfail, not strict): each line is work to do, not an excuse.
KNOWN_GAPS = {
}

BAD = ["nan", "inf", "empty", "ndim1", "complex", "str", "object", "none"]
UNUSUAL = ["list", "int", "float32", "sparse_zeros"]


def _base(kind):
    gen = np.random.default_rng(0)
    if kind == "tensor":
        return gen.standard_normal((5, 4, 3))
    if kind == "vector":
        return np.sort(gen.random(6))[::-1].copy()
    if kind == "graph":
        A = sp.random(8, 8, density=0.4, random_state=0, format="csr")
        return (A + A.T).toarray() + np.eye(8, k=1) + np.eye(8, k=-1)
    if kind == "psd":
        B = gen.standard_normal((6, 3))
        return B @ B.T
    return gen.standard_normal((7, 6))


def _kind(name, param):
    if param in ("tensor",) or name in ("CP", "Tucker"):
        return "tensor"
    if param == "s":
        return "vector"
    if param == "graph" or name in ("FastRP",):
        return "graph"
    if param == "K":
        return "psd"
    return "matrix"


def _value(kind, case):
    base = _base(kind)
    if case == "nan":
        base.flat[3] = np.nan
        return base
    if case == "inf":
        base.flat[3] = np.inf
        return base
    if case == "empty":
        return np.zeros((0,) * base.ndim)
    if case == "ndim1":
        return base.ravel() if base.ndim > 1 else base[:, None, None]
    if case == "complex":
        return base + 1j
    if case == "str":
        return base.astype(str)
    if case == "object":
        out = base.astype(object)
        out.flat[0] = None
        return out
    if case == "none":
        return None
    if case == "list":
        return base.tolist()
    if case == "int":
        return np.rint(3 * np.abs(base)).astype(np.int64) + (np.eye(*base.shape, dtype=np.int64) if base.ndim == 2
                                                              else 0)
    if case == "float32":
        return base.astype(np.float32)
    if case == "sparse_zeros":
        if base.ndim != 2:
            return base
        S = sp.csr_matrix(np.abs(base))
        S.data[::3] = 0.0  # stored zeros: valid input that breaks code assuming data != 0
        return S
    raise AssertionError(case)


def _fill(name, param, data):
    if param == "Vh":
        return np.eye(6) if not isinstance(data, np.ndarray) or data.ndim != 2 else np.eye(data.shape[1])
    if param == "y":
        return np.zeros(7)
    if param == "reference":
        return np.zeros((7, 2), dtype=int)
    return FILL[param]


UNCOVERED = []


def entry_points():
    """``(subpackage, name, call)`` for every public data-taking entry point; ``call(value)`` runs it."""
    out = []
    for sub in SUBPACKAGES:
        module = importlib.import_module(f"lowrank.{sub}")
        for name in module.__all__:
            if name in NOT_DATA:
                continue
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, BaseException):
                continue  # exception and warning classes
            if inspect.ismodule(obj) or (inspect.isclass(obj) and not hasattr(obj, "fit") and (
                    dataclasses.is_dataclass(obj) or issubclass(obj, tuple) or name.endswith(("Result", "Report")))):
                continue  # result containers are built by the library, not fed by users
            target = obj.fit if inspect.isclass(obj) and hasattr(obj, "fit") else obj
            if not callable(target):
                continue
            params = [p for p in inspect.signature(target).parameters.values()
                      if p.name != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            first, rest = params[0].name, [p.name for p in params[1:] if p.default is p.empty]
            unknown = [p for p in rest if p not in FILL]
            if unknown:
                UNCOVERED.append(f"lowrank.{sub}.{name}: add its required {unknown} to FILL, or list it in "
                                 "NOT_DATA with the reason")
                continue
            kind = _kind(name, first)

            def call(value, _obj=obj, _name=name, _first=first, _rest=rest):
                args = [value] + [_fill(_name, p, value) for p in _rest]
                if inspect.isclass(_obj):
                    return _obj().fit(*args)
                return _obj(*args)

            out.append((sub, name, first, kind, call))
    return out


def classify(name, first, call, value):
    """One of ``ok`` (returned), ``clear``, ``vague``, ``crash``; the message for failures."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            call(value)
        except (ValueError, TypeError) as exc:
            text = str(exc)
            named = "`" in text or first in text or any(phrase in text for phrase in SKLEARN_MESSAGES)
            return ("clear" if named else "vague"), f"{type(exc).__name__}: {text[:160]}"
        except Exception as exc:  # noqa: BLE001 -- the point is to catch what leaks out
            return "crash", f"{type(exc).__name__}: {str(exc)[:160]}"
    return "ok", ""


ENTRIES = entry_points()


def test_every_public_data_entry_point_is_covered():
    assert not UNCOVERED, "\n".join(UNCOVERED)


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("sub, name, first, kind, call", ENTRIES, ids=[f"{e[0]}.{e[1]}" for e in ENTRIES])
def test_bad_input_raises_a_clear_error(sub, name, first, kind, call, case):
    if (name, case) in EXPECTED:
        pytest.skip(EXPECTED[(name, case)])
    if (name, case) in KNOWN_GAPS:
        pytest.xfail(KNOWN_GAPS[(name, case)])
    outcome, message = classify(name, first, call, _value(kind, case))
    assert outcome != "ok", f"lowrank.{sub}.{name} accepted {case!r} input silently"
    assert outcome != "crash", f"lowrank.{sub}.{name} crashed on {case!r} input: {message}"
    assert outcome == "clear", f"lowrank.{sub}.{name}: the error for {case!r} names no argument: {message}"


@pytest.mark.parametrize("case", UNUSUAL)
@pytest.mark.parametrize("sub, name, first, kind, call", ENTRIES, ids=[f"{e[0]}.{e[1]}" for e in ENTRIES])
def test_unusual_but_valid_input_does_not_crash(sub, name, first, kind, call, case):
    if (name, case) in KNOWN_GAPS:
        pytest.xfail(KNOWN_GAPS[(name, case)])
    outcome, message = classify(name, first, call, _value(kind, case))
    assert outcome != "crash", f"lowrank.{sub}.{name} crashed on {case!r} input: {message}"
    if outcome != "ok":
        assert outcome == "clear", f"lowrank.{sub}.{name}: the error for {case!r} names no argument: {message}"


def _report():
    counts = {}
    for sub, name, first, kind, call in ENTRIES:
        for case in BAD + UNUSUAL:
            outcome, message = classify(name, first, call, _value(kind, case))
            if case in BAD and outcome == "ok" and (name, case) not in EXPECTED:
                outcome = "silent"
            elif case in UNUSUAL and outcome == "ok":
                outcome = "works"
            counts.setdefault(sub, Counter())[outcome] += 1
            if outcome in ("crash", "silent", "vague"):
                print(f"  {outcome:6s} {sub}.{name} [{case}] {message}")
    for sub, c in counts.items():
        print(f"{sub:11s} " + "  ".join(f"{k}={v}" for k, v in sorted(c.items())))


if __name__ == "__main__":
    sys.exit(_report())
