"""The embedded services: the MiniMax simulator and an S3 server, on free loopback ports, with a bucket.

This one launcher serves the demo (:mod:`minimax_dagster.demo`), the tests, the benchmarks and the scale tooling.
The servers run in this process (threads) or, with ``separate_processes=True``, each in a child process of its
own (:mod:`minimax_dagster.embedded.processes`). :meth:`EmbeddedServices.env` gives the environment variables
that point :class:`~minimax_dagster.code_location.environment.EnvSettings` (and so the demo and the deployment definitions) at
them. Unless given, the S3 credentials are random per start and only travel through the environment.

>>> services = EmbeddedServices(bucket="doc-embedded", datasets={"autumn": ["Falling leaves"]})
>>> with services:
...     env = services.env()
...     keys = [o["Key"] for o in services.s3_client().list_objects_v2(Bucket="doc-embedded")["Contents"]]
>>> env["MINIMAX_BUCKET"], env["MINIMAX_S3_ENDPOINT_URL"].startswith("http://127.0.0.1:"), keys
('doc-embedded', True, ['minimax/datasets/autumn.json'])

moto keeps buckets in process-wide memory, so in-process services started one after the other (or at once)
share their buckets: give each user a bucket of its own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import Any

import boto3

from minimax_dagster.embedded.processes import ServerProcess, SimulatorProcess
from minimax_dagster.embedded.s3 import EmbeddedS3Server
from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.simulator.config import SimulatorConfig
from minimax_dagster.storage import put_json, s3_client_config

REGION = "us-east-1"


class EmbeddedServices:
    """Starts the simulator and an S3 server, creates the bucket and seeds the prompt datasets.

    ``datasets`` (name → prompt rows) are stored as ``<prefix>/datasets/<name>.json``. ``simulator_options``
    are :class:`~minimax_dagster.simulator.config.SimulatorConfig` fields (``accounts``, ``video_bytes``,
    ``token``, ``faults``...). ``simulator`` is the running simulator: a ``MiniMaxSimulator`` in this process,
    a :class:`~minimax_dagster.embedded.processes.SimulatorProcess` otherwise; both have ``base_url``,
    ``origin``, ``token``, ``config``, ``counters()`` and ``configure()``.
    """

    def __init__(
        self,
        *,
        bucket: str = "minimax-embedded",
        prefix: str = "minimax",
        datasets: Mapping[str, list[Any]] | None = None,
        separate_processes: bool = False,
        generation_seconds: float = 3.0,
        heartbeat_seconds: float = 0.5,
        simulator_port: int = 0,
        s3_port: int = 0,
        s3_key_id: str | None = None,
        s3_secret: str | None = None,
        public_read: bool = False,
        **simulator_options: Any,
    ) -> None:
        self.bucket = bucket
        self.public_read = public_read
        self.prefix = prefix
        self.datasets = dict(datasets or {})
        self.separate_processes = separate_processes
        config = SimulatorConfig(
            generation_seconds=generation_seconds,
            heartbeat_seconds=heartbeat_seconds,
            port=simulator_port,
            **simulator_options,
        )
        self.simulator: MiniMaxSimulator | SimulatorProcess = (
            SimulatorProcess(config) if separate_processes else MiniMaxSimulator(config)
        )
        self.s3_server: EmbeddedS3Server | ServerProcess = (
            ServerProcess("s3", {"port": s3_port}) if separate_processes else EmbeddedS3Server(port=s3_port)
        )
        self.s3_endpoint_url = ""
        self._key_id = s3_key_id or "embedded-" + secrets.token_hex(4)
        self._secret = s3_secret or secrets.token_urlsafe(24)

    def __enter__(self) -> EmbeddedServices:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> EmbeddedServices:
        """Start both servers, create the bucket, seed the datasets (everything is stopped on failure)."""
        try:
            self.simulator.start()
            self.s3_server.start()
            self.s3_endpoint_url = (
                self.s3_server.url
                if isinstance(self.s3_server, ServerProcess)
                else self.s3_server.endpoint_url
            )
            s3 = self.s3_client()
            s3.create_bucket(Bucket=self.bucket)
            if self.public_read:
                # Anyone may read the objects (a loopback server, simulated videos), so video links in the UI
                # open in a browser as they would behind a CDN or on a public bucket.
                read = {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": f"arn:aws:s3:::{self.bucket}/*",
                }
                policy = {"Version": "2012-10-17", "Statement": [read]}
                s3.put_bucket_policy(Bucket=self.bucket, Policy=json.dumps(policy))
            for name, rows in self.datasets.items():
                put_json(s3, self.bucket, f"{self.prefix}/datasets/{name}.json", rows)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers (idempotent)."""
        self.s3_server.stop()
        self.simulator.stop()

    def s3_client(self) -> Any:
        """A boto3 client on the embedded S3 server."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint_url,
            region_name=REGION,
            aws_access_key_id=self._key_id,
            aws_secret_access_key=self._secret,
            config=s3_client_config(),
        )

    @property
    def s3_key_id(self) -> str:
        """The S3 access key id the services' clients use (not a secret)."""
        return self._key_id

    def env(self) -> dict[str, str]:
        """Environment variables for :class:`~minimax_dagster.code_location.environment.EnvSettings` and boto3, secrets
        included (for child processes)."""
        return {
            "USEAPI_TOKEN": self.simulator.token,
            "MINIMAX_BASE_URL": self.simulator.base_url,
            "MINIMAX_ALLOWED_DOWNLOAD_HOSTS": self.simulator.origin,
            "MINIMAX_ACCOUNTS": ",".join(f"{a}:{n}" for a, n in self.simulator.config.accounts.items()),
            "MINIMAX_POLL_INTERVAL": "1",
            "MINIMAX_READ_TIMEOUT": "10",
            "MINIMAX_BUCKET": self.bucket,
            "MINIMAX_PREFIX": self.prefix,
            "MINIMAX_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "AWS_ACCESS_KEY_ID": self._key_id,
            "AWS_SECRET_ACCESS_KEY": self._secret,
            "AWS_REGION": REGION,
        }

    def secrets(self) -> list[str]:
        """The secret values (for leak scans in tests)."""
        return [self.simulator.token, self._secret]

    def describe(self) -> str:
        """Where the services are, on one line (no secret)."""
        return json.dumps(
            {"simulator": self.simulator.base_url, "s3": self.s3_endpoint_url, "bucket": self.bucket}
        )

    def __repr__(self) -> str:
        return f"EmbeddedServices({self.describe()})"
