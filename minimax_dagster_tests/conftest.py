"""Shared fixtures: the MiniMax simulator and moto's S3 server, each on a free loopback port over real sockets."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from minimax_dagster.storage import s3_client_config

S3_KEY_ID = "testing-key-id"
S3_SECRET = "testing-secret-SHOULD-NEVER-LEAK"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server in this process (ThreadedMotoServer), shared by the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str):
    """A boto3 S3 client on the moto server, with the checksum settings S3-compatible servers need."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        config=s3_client_config(),
    )


@pytest.fixture
def bucket(s3_client) -> str:
    """A fresh, empty bucket for one test."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def simulator():
    """A fresh MiniMax simulator with fast generation (0.6 s) and heartbeats (0.1 s)."""
    from minimax_dagster.simulator import MiniMaxSimulator

    with MiniMaxSimulator(generation_seconds=0.6, heartbeat_seconds=0.1) as sim:
        yield sim
