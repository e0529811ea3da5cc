"""Test-session hygiene for the whole tree (the tests in minimax_dagster_tests/ and the package's doctests)."""

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _no_stale_dagster_defs_state_storage() -> Iterator[None]:
    """Start every test with no Dagster defs-state storage in the context.

    A ``DagsterInstance`` used as a context manager puts its defs-state storage in a ContextVar and resets the
    token on exit. Fixtures of different scopes (a module's instance set up after a test's own) exit out of
    that order, and the reset then leaves the storage of a disposed instance behind: the next definitions
    load fails with "Attempted to resolve undefined DagsterInstance weakref", whatever that test does.
    """
    from dagster._core.storage.defs_state.base import set_defs_state_storage

    with set_defs_state_storage(None):
        yield
