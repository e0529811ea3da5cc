"""Shared fixtures, each a real server on a free loopback port: moto's S3 server, the MiniMax simulator, an HTTP
source to download from; and the Dagster world of the end-to-end modules (a module-wide instance, a fresh bucket).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
import pytest
import requests

from minimax_dagster.storage import DownloadPolicy, s3_client_config
from minimax_dagster_tests.http_source import serving_http_source

if TYPE_CHECKING:
    import dagster as dg

    from minimax_dagster.simulator import MiniMaxSimulator
    from minimax_dagster_tests.fault_support import Env

S3_KEY_ID = "testing-key-id"
S3_SECRET = "testing-secret-SHOULD-NEVER-LEAK"


def s3_client_for(endpoint: str) -> Any:
    """A boto3 S3 client on an S3 endpoint, with the checksum settings S3-compatible servers need."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        config=s3_client_config(),
    )


def new_bucket(s3: Any, prefix: str = "test") -> str:
    """A fresh, empty bucket named ``<prefix>-<12 hex>``."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


# ---------------------------------------------------------------------------------------------------- S3


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The package's embedded S3 server (moto's S3 app, its conditional writes made atomic as S3's are) in this
    process, shared by the whole session."""
    from minimax_dagster.embedded import EmbeddedS3Server

    with EmbeddedS3Server() as server:
        yield server.endpoint_url


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    """A boto3 S3 client on the moto server, with the checksum settings S3-compatible servers need."""
    return s3_client_for(s3_endpoint)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A fresh, empty bucket for one test."""
    return new_bucket(s3_client)


@pytest.fixture
def s3_calls(s3_client: Any) -> Iterator[list[str]]:
    """Names of the S3 write and HEAD operations ``s3_client`` makes during the test, in order."""
    calls: list[str] = []
    events = s3_client.meta.events
    ops = (
        "PutObject",
        "HeadObject",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
        "AbortMultipartUpload",
    )
    for op in ops:
        events.register(
            f"before-call.s3.{op}", lambda op=op, **_: calls.append(op), unique_id=f"s3-calls-{op}"
        )
    try:
        yield calls
    finally:
        for op in ops:
            events.unregister(f"before-call.s3.{op}", unique_id=f"s3-calls-{op}")


# ---------------------------------------------------------------------------------------------------- HTTP source


@pytest.fixture(scope="session")
def http_source() -> Iterator[str]:
    """The origin of a real HTTP source (see ``http_source.SourceHandler`` for its routes)."""
    with serving_http_source() as origin:
        yield origin


@pytest.fixture(scope="session")
def second_http_source() -> Iterator[str]:
    """A second HTTP source on another port: a different origin to redirect to."""
    with serving_http_source() as origin:
        yield origin


@pytest.fixture
def download_policy(http_source: str) -> DownloadPolicy:
    """A download policy that allows ``http_source`` only, with a 5 s read timeout."""
    return DownloadPolicy(allowed_hosts=(http_source,), read_timeout=5)


@pytest.fixture
def http_session() -> Iterator[requests.Session]:
    """A requests session for one test."""
    with requests.Session() as s:
        yield s


# ---------------------------------------------------------------------------------------------------- simulator


@pytest.fixture
def simulator() -> Iterator[MiniMaxSimulator]:
    """A fresh MiniMax simulator with fast generation (0.6 s) and heartbeats (0.1 s)."""
    from minimax_dagster.simulator import MiniMaxSimulator

    with MiniMaxSimulator(generation_seconds=0.6, heartbeat_seconds=0.1) as sim:
        yield sim


# ---------------------------------------------------------------------------------------------------- Dagster world
#
# For the end-to-end modules (test_fault_matrix.py, test_security.py), which share one Dagster instance per module
# to stay fast. Each of them defines ``sim``, the module-scoped simulator its tests need, and marks itself with
# ``pytestmark = pytest.mark.usefixtures("module_secrets")``.


@pytest.fixture(scope="module")
def module_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dg.DagsterInstance]:
    """One sqlite Dagster instance shared by the tests of a module (``test_dagster.py``'s ``instance`` is per
    test)."""
    import dagster as dg

    with dg.instance_for_test(temp_dir=str(tmp_path_factory.mktemp("dagster"))) as inst:
        yield inst


@pytest.fixture(scope="module")
def module_secrets(sim: MiniMaxSimulator) -> Iterator[None]:
    """``USEAPI_TOKEN`` (the module's simulator's token) and ``TEST_S3_SECRET`` in the environment, for the
    resources' ``EnvVar`` secrets, during the whole module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("USEAPI_TOKEN", sim.token)
        mp.setenv("TEST_S3_SECRET", S3_SECRET)
        yield


@pytest.fixture
def env(sim: MiniMaxSimulator, s3_endpoint: str, module_instance: dg.DagsterInstance) -> Env:
    """A fresh bucket on the shared moto server, materialized into on the module's instance and simulator."""
    from minimax_dagster_tests.fault_support import Env

    s3 = s3_client_for(s3_endpoint)
    return Env(sim, s3_endpoint, s3, new_bucket(s3, "faults"), module_instance)
