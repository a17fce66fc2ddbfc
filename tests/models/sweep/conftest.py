"""Tiny runs for the sweep tests: an 8x8 image file and a 3-latent MLP that trains in moments."""

from __future__ import annotations

import pytest

from train_helpers import tiny_config, write_tiny_h5


@pytest.fixture(scope="session")
def tiny_spec(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The data spec of 96 tiny images, shared by the session's tests."""
    return write_tiny_h5(str(tmp_path_factory.mktemp("data") / "tiny.h5"))


@pytest.fixture
def tiny(tiny_spec: str):
    """A factory of tiny run configurations: ``tiny(epochs=2, seed=1)``."""

    def make(**train: object):
        return tiny_config(tiny_spec, **train)

    return make
