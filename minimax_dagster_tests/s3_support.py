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


@contextlib.contextmanager
def recorded_s3_requests(s3_client: Any) -> Iterator[list[tuple[str, str, str]]]:
    """``(operation, bucket, key)`` of every S3 request ``s3_client`` sends inside the block, in order (the key
    is ``""`` for requests without one)."""
    seen: list[tuple[str, str, str]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.append((model.name, str(params.get("Bucket", "")), str(params.get("Key", ""))))

    s3_client.meta.events.register("before-parameter-build.s3", record)
    try:
        yield seen
    finally:
        s3_client.meta.events.unregister("before-parameter-build.s3", record)
