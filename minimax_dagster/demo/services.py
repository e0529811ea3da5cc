"""The embedded services of the demo: the MiniMax simulator and moto's S3 server, on free loopback ports.

>>> # with EmbeddedServices() as services: print(services.env()["MINIMAX_BASE_URL"])
"""

import json
import secrets
from typing import Any

import boto3

from minimax_dagster.simulator import MiniMaxSimulator
from minimax_dagster.storage import put_json, s3_client_config

#: Prompt datasets the demo seeds into S3 (one dynamic partition each).
DEMO_DATASETS: dict[str, list[Any]] = {
    "autumn-campaign": [
        {"id": "leaves", "prompt": "Maple leaves falling over a quiet lake"},
        {"id": "harvest", "prompt": "A farmer's market at dawn, steam rising from cider"},
        {
            "id": "scarf",
            "prompt": "A knitted red scarf blowing in the wind",
            "template_id": "394100000000000003",
        },
    ],
    "product-launch": [
        {
            "id": "watch",
            "prompt": "A titanium watch turning slowly on a pedestal",
            "template_id": "394100000000000005",
        },
        {"id": "headphones", "prompt": "Wireless headphones floating in zero gravity"},
    ],
    "city-timelapse": [
        {"id": "tokyo", "prompt": "Tokyo crossing from dusk to night", "template_id": "394100000000000010"},
        {
            "id": "lisbon",
            "prompt": "Lisbon trams climbing a hill at sunset",
            "template_id": "394100000000000010",
        },
    ],
}


class EmbeddedServices:
    """Starts the simulator and a moto S3 server, creates the bucket and seeds the prompt datasets.

    ``env()`` gives the environment variables that point the demo definitions at them. The S3 credentials
    are random per start and only ever travel through the environment.
    """

    def __init__(
        self,
        *,
        bucket: str = "minimax-demo",
        prefix: str = "minimax",
        generation_seconds: float = 3.0,
        heartbeat_seconds: float = 0.5,
        simulator_port: int = 0,
        s3_port: int = 0,
        seed_datasets: bool = True,
        **simulator_options: Any,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.seed_datasets = seed_datasets
        self.simulator = MiniMaxSimulator(
            generation_seconds=generation_seconds,
            heartbeat_seconds=heartbeat_seconds,
            port=simulator_port,
            **simulator_options,
        )
        self._s3_port = s3_port
        self._moto: Any = None
        self.s3_endpoint_url = ""
        self._key_id = "demo-" + secrets.token_hex(4)
        self._secret = secrets.token_urlsafe(24)

    def __enter__(self) -> "EmbeddedServices":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> "EmbeddedServices":
        """Start both servers, create the bucket, seed the datasets."""
        from moto.server import ThreadedMotoServer

        self.simulator.start()
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self._s3_port, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.s3_endpoint_url = f"http://{host}:{port}"
        s3 = self.s3_client()
        s3.create_bucket(Bucket=self.bucket)
        # Anyone may read the demo's objects (a loopback server, simulated videos), so the video links in the UI
        # open in a browser as they would behind a CDN or on a public bucket.
        read = {
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": f"arn:aws:s3:::{self.bucket}/*",
        }
        s3.put_bucket_policy(
            Bucket=self.bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [read]})
        )
        if self.seed_datasets:
            for name, rows in DEMO_DATASETS.items():
                put_json(s3, self.bucket, f"{self.prefix}/datasets/{name}.json", rows)
        return self

    def stop(self) -> None:
        """Stop both servers."""
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        self.simulator.stop()

    def s3_client(self) -> Any:
        """A boto3 client on the embedded S3 server."""
        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=self._key_id,
            aws_secret_access_key=self._secret,
            config=s3_client_config(),
        )

    def env(self) -> dict[str, str]:
        """Environment variables for the demo definitions (including the secrets, for child processes)."""
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
            "AWS_REGION": "us-east-1",
        }

    def secrets(self) -> list[str]:
        """The secret values (for leak scans in tests)."""
        return [self.simulator.token, self._secret]

    def describe(self) -> str:
        """One line per service."""
        return json.dumps(
            {"simulator": self.simulator.base_url, "s3": self.s3_endpoint_url, "bucket": self.bucket}
        )
