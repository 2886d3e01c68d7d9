import importlib.util

import pytest


@pytest.fixture(autouse=True)
def _vision_tests_use_one_torch_thread(request):
    if importlib.util.find_spec("torch") is not None:
        request.getfixturevalue("one_torch_thread")
