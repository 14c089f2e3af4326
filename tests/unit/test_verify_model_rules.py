"""tests/verify's rules for the models (host_rules.py), on canned `ollama list` outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "verify"))
from host_rules import models_not_listed, ollama_list_names, ollama_listed_name  # noqa: E402

# `ollama list` of Ollama 0.12 (and of the lab stand-in, same columns)
LISTING = """NAME                                ID              SIZE      MODIFIED
qwen2.5-coder:7b                    2b0496514337    4.7 GB    3 days ago
llama3.2:latest                     a80c4f17acd5    2.0 GB    5 weeks ago
user/model:q4                       0123456789ab    1.1 GB    1 hour ago
registry.lan:5000/library/tiny:1    f5acf77c2f33    98.5 KB   2 minutes ago
"""


@pytest.mark.parametrize(("configured", "listed"), [
    ("llama3.2", "llama3.2:latest"),
    ("LLaMA3.2:latest", "llama3.2:latest"),
    ("registry.ollama.ai/library/mistral", "mistral:latest"),
    ("library/phi3:mini", "phi3:mini"),
    ("user/model:q4", "user/model:q4"),
    ("registry.lan:5000/library/tiny:1", "registry.lan:5000/library/tiny:1"),
])
def test_the_name_ollama_lists(configured, listed):
    assert ollama_listed_name(configured) == listed


def test_configured_models_against_a_listing():
    names = ollama_list_names(LISTING)
    assert names[1] == "llama3.2:latest" and len(names) == 4
    assert models_not_listed(["llama3.2", "user/model:q4", "registry.lan:5000/library/tiny:1"], names) == []
    assert models_not_listed(["llama3.2:3b", "qwen2.5-coder:7b"], names) == ["llama3.2:3b"]
    assert ollama_list_names("") == [] and ollama_list_names("Error: could not connect\n") == []
