"""Fixtures of the API domain tests: the case-setting world used by cases, contacts and victim tests."""

from tests.api.case_world import api  # noqa: F401  (the ``api`` fixture, for every domain package below)
