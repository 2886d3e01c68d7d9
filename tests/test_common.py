"""sklearn's estimator checks over every estimator lowrank exports, found automatically.

An estimator opts in by subclassing ``sklearn.base.BaseEstimator`` and appearing in its
subpackage's ``__all__``. It may define

* ``_sklearn_check_instances()`` (classmethod): instances to check (default: ``cls()``);
* ``_sklearn_expected_failed_checks``: ``{check_name: reason}``;
* ``_sklearn_skip_checks``: a reason string when sklearn's X/y checks do not apply at all
  (e.g. the input is a graph file or a black-box scorer, not an array).
"""

import importlib

import pytest
from sklearn.base import BaseEstimator
from sklearn.utils.estimator_checks import parametrize_with_checks

import lowrank


def _exported_estimators():
    found = {}
    for name in lowrank._SUBMODULES:
        try:
            module = importlib.import_module(f"lowrank.{name}")
        except ImportError:  # optional extra missing or area not built yet
            continue
        for attr in getattr(module, "__all__", ()):
            try:
                obj = getattr(module, attr)
            except ImportError:  # needs an optional extra; test_import checks the names resolve
                continue
            if isinstance(obj, type) and issubclass(obj, BaseEstimator):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return [found[k] for k in sorted(found)]


ESTIMATOR_CLASSES = _exported_estimators()


def _instances():
    out = []
    for cls in ESTIMATOR_CLASSES:
        if getattr(cls, "_sklearn_skip_checks", None):
            continue
        make = getattr(cls, "_sklearn_check_instances", None)
        out.extend(make() if make is not None else [cls()])
    return out


def _expected_failures(estimator):
    return dict(getattr(estimator, "_sklearn_expected_failed_checks", {}))


def test_some_estimators_are_found():
    assert ESTIMATOR_CLASSES, "no estimator found: discovery is broken"


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_skipped_estimators_say_why(cls):
    reason = getattr(cls, "_sklearn_skip_checks", None)
    assert reason is None or (isinstance(reason, str) and len(reason) > 10)


@parametrize_with_checks(_instances(), expected_failed_checks=_expected_failures)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
