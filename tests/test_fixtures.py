"""Fixture-driven tests for every custom fact and operation (pyinfra-testing's format).

One folder per fact (``tests/facts/<module>.<Fact>/``) or operation
(``tests/operations/<module>.<op>/``), one JSON/YAML file per case. Adding a case is adding a file.
"""

from pathlib import Path

from pyinfra_testing.facts import make_fact_tests
from pyinfra_testing.operations import make_operation_tests

HERE = Path(__file__).parent


def _folders(kind: str):
    root = HERE / kind
    return sorted(p for p in root.iterdir() if p.is_dir() and "." in p.name) if root.is_dir() else []


for _folder in _folders("facts"):
    _cls = make_fact_tests("facts", _folder.name, _folder)
    globals()[f"TestFact_{_folder.name.replace('.', '_')}"] = _cls

for _folder in _folders("operations"):
    _cls = make_operation_tests("operations", _folder.name, _folder)
    globals()[f"TestOp_{_folder.name.replace('.', '_')}"] = _cls

del _folder, _cls
