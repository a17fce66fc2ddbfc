import os
import sys

# The shared helpers (train_helpers, ppca_model) sit beside this file; the tests that use them
# live in sub-folders that mirror models/ (nn/, data/, training/, io/, cli/).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gc  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _automatic_garbage_collection():
    """The engine's tests run without a Qt event loop: when the app's tests ran first in this
    process, their GUI-thread collector (explorer/collector.py) has turned automatic collection
    off, and nothing would collect here. Give it back to CPython."""
    if not gc.isenabled():
        gc.enable()
    yield
