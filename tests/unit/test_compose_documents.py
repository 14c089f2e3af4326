"""Parsing of compose documents and rendering of .env files by operations.compose."""

import pytest
from pyinfra.api.exceptions import OperationValueError

from operations.compose import declared_services, render_env


def test_services_behind_profiles_or_scaled_to_zero_are_declared_but_not_started():
    document = """
services:
  web: {image: a}
  debug: {image: b, profiles: [debug]}
  spare: {image: c, scale: 0}
  standby: {image: d, deploy: {replicas: 0}}
  pair: {image: e, deploy: {replicas: 2}}
  bare:
"""
    all_services, started = declared_services(document)
    assert all_services == {"web", "debug", "spare", "standby", "pair", "bare"}
    assert started == {"web", "pair", "bare"}


@pytest.mark.parametrize("document", ["services: [unclosed", "- a list", "services: {}", ""])
def test_documents_without_services_are_rejected(document):
    with pytest.raises(OperationValueError, match="^compose: "):
        declared_services(document)


def test_env_values_are_written_single_quoted_and_literal():
    assert render_env({"A": 'p$ss "w#rd"', "B": ""}) == "A='p$ss \"w#rd\"'\nB=''\n"


@pytest.mark.parametrize("value", ["it's", "two\nlines", "carriage\rreturn", "ends\\"])
def test_env_values_that_cannot_be_literal_are_rejected_without_showing_them(value):
    with pytest.raises(OperationValueError) as error:
        render_env({"SECRET": value})
    assert "SECRET" in str(error.value)
    assert value not in str(error.value)
