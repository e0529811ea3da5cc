"""Where a video's link points: a CDN, the S3-compatible endpoint (presigned when asked), or the AWS console.

>>> VideoLinks(region="eu-west-1").url("s3://media/v.mp4").startswith("https://")
True
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

#: The longest a presigned S3 URL can live (SigV4).
MAX_PRESIGN_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class VideoLinks:
    """How an ``s3://bucket/key`` becomes a link a person can open in a browser.

    In order of preference:

    1. ``public_base_url``: a CDN (e.g. CloudFront) in front of the bucket; ``<base>/<key>``. Permanent and
       opens for whoever the CDN lets in. The best choice when there is one.
    2. ``presign_seconds`` with ``s3_client``: a presigned GET URL, valid that long (at most 7 days, said next
       to the table). Off by default: metadata stays in the event log for good, the link does not, and while it
       lives it is a bearer credential (it carries the access key id) readable by everyone who sees the run.
    3. ``endpoint_url`` of an S3-compatible server (MinIO, Ceph, moto): path-style ``<endpoint>/<bucket>/<key>``;
       it opens when the bucket allows the browser to read (the demo's moto server does).
    4. Otherwise (AWS, no CDN) the object's page in the S3 console: permanent, nothing in it grants access, and
       it opens for a person signed in to the account with read permission (where the video plays or downloads).

    >>> VideoLinks(region="eu-west-1").url("s3://media/minimax/videos/v1 a.mp4")
    'https://s3.console.aws.amazon.com/s3/object/media?region=eu-west-1&prefix=minimax%2Fvideos%2Fv1%20a.mp4'
    >>> VideoLinks(endpoint_url="http://127.0.0.1:9000").url("s3://media/v.mp4")
    'http://127.0.0.1:9000/media/v.mp4'
    >>> VideoLinks(public_base_url="https://cdn.example.com/").url("s3://media/minimax/v.mp4")
    'https://cdn.example.com/minimax/v.mp4'
    """

    public_base_url: str | None = None
    endpoint_url: str | None = None
    region: str | None = None
    presign_seconds: int = 0
    s3_client: Any = None

    def __post_init__(self) -> None:
        if not 0 <= self.presign_seconds <= MAX_PRESIGN_SECONDS:
            raise ValueError(
                f"presign_seconds must be between 0 and {MAX_PRESIGN_SECONDS} (7 days), got {self.presign_seconds}"
            )
        if self.presign_seconds and self.s3_client is None:
            raise ValueError("presign_seconds needs s3_client (the client that signs the URLs)")
        for name in ("public_base_url", "endpoint_url"):
            value = getattr(self, name)
            if value and urlsplit(value).scheme not in ("http", "https"):
                raise ValueError(f"{name} must be an http(s) URL, got {value!r}")

    @classmethod
    def from_s3_client(
        cls, s3_client: Any, *, public_base_url: str | None = None, presign_seconds: int = 0
    ) -> VideoLinks:
        """The links for a boto3 S3 client: its endpoint unless it is AWS's own, and its region.

        >>> import boto3
        >>> aws = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
        >>> VideoLinks.from_s3_client(aws).endpoint_url is None
        True
        >>> local = boto3.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9000",
        ...                      aws_access_key_id="k", aws_secret_access_key="s")
        >>> VideoLinks.from_s3_client(local).endpoint_url
        'http://127.0.0.1:9000'
        """
        endpoint = getattr(s3_client.meta, "endpoint_url", None)
        host = urlsplit(endpoint or "").hostname or ""
        if host.endswith((".amazonaws.com", ".amazonaws.com.cn")):
            endpoint = None
        return cls(
            public_base_url=public_base_url,
            endpoint_url=endpoint,
            region=getattr(s3_client.meta, "region_name", None),
            presign_seconds=presign_seconds,
            s3_client=s3_client if presign_seconds else None,
        )

    def url(self, s3_uri: str | None) -> str | None:
        """The browser link of ``s3_uri`` (``None`` for none)."""
        if not s3_uri or not s3_uri.startswith("s3://"):
            return None
        bucket, _, key = s3_uri.removeprefix("s3://").partition("/")
        if self.public_base_url:
            return f"{self.public_base_url.rstrip('/')}/{quote(key)}"
        if self.presign_seconds:
            return str(
                self.s3_client.generate_presigned_url(
                    "get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=self.presign_seconds
                )
            )
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}/{quote(bucket)}/{quote(key)}"
        # The console's object page (the form the console itself links to; not an API contract).
        query = urlencode({"region": self.region or "us-east-1", "prefix": key}, quote_via=quote)
        return f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}?{query}"

    def describe(self, now: dt.datetime | None = None) -> str:
        """One sentence for the reader: where the links lead and for how long.

        >>> VideoLinks().describe()
        'Links open the object in the AWS S3 console (sign in to the account).'
        """
        if self.public_base_url:
            return f"Links open the videos through {urlsplit(self.public_base_url).netloc}."
        if self.presign_seconds:
            until = (now or dt.datetime.now(dt.timezone.utc)) + dt.timedelta(seconds=self.presign_seconds)
            return f"Links are presigned and stop working at {until:%Y-%m-%d %H:%M} UTC."
        if self.endpoint_url:
            return f"Links open the objects on {urlsplit(self.endpoint_url).netloc}."
        return "Links open the object in the AWS S3 console (sign in to the account)."
