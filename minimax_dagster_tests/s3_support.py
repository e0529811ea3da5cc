"""Test support: watching what an S3 client sends (boto3's own event hooks, nothing patched or mocked)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def recorded_s3_calls(s3_client: Any) -> Iterator[list[str]]:
    """Names of the S3 operations ``s3_client`` sends inside the block, in order."""
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    s3_client.meta.events.register("before-call.s3", record)
    try:
        yield calls
    finally:
        s3_client.meta.events.unregister("before-call.s3", record)
