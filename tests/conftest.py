"""Every test starts without a list of earlier reads (facts/reads.py): each keeps its own, in its own
folder, so that no test reads ahead what another one read."""

import pytest

from facts.reads import ENV


@pytest.fixture(autouse=True)
def _own_read_ahead_folder(tmp_path_factory, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path_factory.mktemp("read-ahead")))
