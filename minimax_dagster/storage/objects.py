"""Small S3 objects: bytes and JSON in one request, conditional writes and deletes, HEAD, the first bytes of an
object.

"No object at the key" reads as ``None``, and a write whose condition does not hold as ``None`` or ``False``;
every other S3 error (a missing bucket, say) is raised.

>>> import boto3
>>> from moto import mock_aws
>>> from minimax_dagster.storage import s3_client_config
>>> with mock_aws():
...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
...     _ = s3.create_bucket(Bucket="bkt")
...     _ = put_json(s3, "bkt", "k.json", [1, 2])
...     get_json(s3, "bkt", "k.json"), head_object(s3, "bkt", "missing")
([1, 2], None)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from minimax_dagster.storage.config import KiB
from minimax_dagster.storage.errors import CorruptObject, ObjectTooLarge

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client
    from types_boto3_s3.type_defs import PutObjectRequestTypeDef

__all__ = [
    "condition_failed",
    "delete_if",
    "get_json",
    "head_object",
    "put_bytes",
    "put_bytes_if",
    "put_json",
    "read_head_bytes",
    "read_object",
]

_MAX_METADATA_BYTES = 2 * KiB  # S3's limit on user-defined metadata


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User-defined S3 metadata checked for what S3 sends as HTTP headers, names lower-cased.

    >>> validate_metadata({"Template-Id": "392747428568649728"})
    {'template-id': '392747428568649728'}
    >>> validate_metadata({"prompt": "café"})
    Traceback (most recent call last):
    ...
    ValueError: metadata value of 'prompt' must be printable ASCII (S3 sends it as an HTTP header); hash or percent-encode other text
    """
    result: dict[str, str] = {}
    for name, value in (metadata or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(
                f"metadata keys and values must be strings, got {name!r}: {type(value).__name__}"
            )
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            raise ValueError(f"metadata key {name!r} must be [A-Za-z0-9_-] (it becomes an HTTP header name)")
        if not value.isascii() or not value.isprintable():
            raise ValueError(
                f"metadata value of {name!r} must be printable ASCII (S3 sends it as an HTTP header); "
                "hash or percent-encode other text"
            )
        result[name.lower()] = value
    size = sum(len(k) + len(v) for k, v in result.items())
    if size > _MAX_METADATA_BYTES:
        raise ValueError(f"metadata is {size} bytes; S3 allows {_MAX_METADATA_BYTES}")
    return result


def _is_missing(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    # Not "any 404": NoSuchBucket is a 404 too, and must not read as "no record yet".
    return error.get("Code") in ("NoSuchKey", "404", "NotFound") and status in (404, None)


def put_bytes(
    s3_client: S3Client,
    bucket: str,
    key: str,
    data: bytes,
    *,
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Store a small object in one PUT; return its ETag (without quotes).

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_bytes(s3, "bkt", "p/videos/v1-x.png", b"PNG", content_type="image/png")
    ...     read_head_bytes(s3, "bkt", "p/videos/v1-x.png")
    b'PNG'
    """
    response = s3_client.put_object(
        Bucket=bucket, Key=key, Body=data, ContentType=content_type, Metadata=validate_metadata(metadata)
    )
    return str(response.get("ETag", "")).strip('"')


def condition_failed(exc: ClientError) -> bool:
    """Whether ``exc`` says a conditional write's condition did not hold (rather than that S3 failed).

    412: the condition does not hold; 409: a concurrent conditional write to the key won; 404: ``If-Match`` on a
    key that is gone.

    >>> condition_failed(ClientError({"Error": {"Code": "PreconditionFailed"}}, "PutObject"))
    True
    >>> condition_failed(ClientError({"Error": {"Code": "AccessDenied"}}, "PutObject"))
    False
    """
    code = exc.response.get("Error", {}).get("Code")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey") or status in (409, 412)


def put_bytes_if(
    s3_client: S3Client,
    bucket: str,
    key: str,
    data: bytes,
    *,
    if_match: str | None,
    content_type: str = "application/json",
) -> str | None:
    """Store ``data`` at ``key`` only if no object is there (``if_match=None``: ``If-None-Match: *``) or only if
    the object's ETag is still ``if_match``; the new ETag, or ``None`` when the condition does not hold.

    Of several processes writing the same key with the same condition at once, S3 lets exactly one succeed.
    Needs an S3 that honours conditional writes (AWS S3 since 2024, MinIO, R2; moto 5).

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     first = put_bytes_if(s3, "bkt", "k.json", b"{}", if_match=None)
    ...     again = put_bytes_if(s3, "bkt", "k.json", b"{}", if_match=None)  # an object is there
    ...     moved = put_bytes_if(s3, "bkt", "k.json", b"[]", if_match=first)
    ...     stale = put_bytes_if(s3, "bkt", "k.json", b"[1]", if_match=first)  # no longer its ETag
    >>> first is not None, again, moved is not None, stale
    (True, None, True, None)
    """
    request: PutObjectRequestTypeDef = {
        "Bucket": bucket,
        "Key": key,
        "Body": data,
        "ContentType": content_type,
    }
    if if_match is None:
        request["IfNoneMatch"] = "*"
    else:
        request["IfMatch"] = f'"{if_match}"'
    try:
        response = s3_client.put_object(**request)
    except ClientError as exc:
        if condition_failed(exc):
            return None
        raise
    return str(response.get("ETag", "")).strip('"')


def delete_if(s3_client: S3Client, bucket: str, key: str, etag: str) -> bool:
    """Delete the object at ``key`` only if its ETag is still ``etag``; ``False`` when it is not (or is gone).

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_bytes(s3, "bkt", "k.json", b"{}")
    ...     delete_if(s3, "bkt", "k.json", "not-the-etag"), delete_if(s3, "bkt", "k.json", etag)
    (False, True)
    """
    try:
        s3_client.delete_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
    except ClientError as exc:
        if condition_failed(exc):
            return False
        raise
    return True


def put_json(s3_client: S3Client, bucket: str, key: str, obj: Any) -> str:
    """Store ``obj`` as UTF-8 JSON (pydantic models are dumped in JSON mode); return the ETag.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_json(s3, "bkt", "p/videos/v1-x.json", {"status": "finished"})
    ...     get_json(s3, "bkt", "p/videos/v1-x.json")
    {'status': 'finished'}
    """
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return put_bytes(s3_client, bucket, key, body, content_type="application/json")


def get_json(
    s3_client: S3Client, bucket: str, key: str, *, max_bytes: int | None = None, setting: str = "max_bytes"
) -> Any | None:
    """Load a JSON object; ``None`` when there is no object at the key.

    Raises ``CorruptObject`` when the object is not UTF-8 JSON, and ``ObjectTooLarge`` (naming ``setting``)
    without reading it when it is over ``max_bytes``.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     get_json(s3, "bkt", "p/videos/missing.json") is None
    True
    """
    found = read_object(s3_client, bucket, key, max_bytes=max_bytes, setting=setting)
    if found is None:
        return None
    data, _etag = found
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptObject(bucket, key, f"not UTF-8 JSON ({exc})") from None


def read_object(
    s3_client: S3Client, bucket: str, key: str, *, max_bytes: int | None = None, setting: str = "max_bytes"
) -> tuple[bytes, str] | None:
    """``(body, etag)`` of a small object, ``None`` when there is no object at the key.

    With ``max_bytes``, an object announced larger is refused before its body is read, and one whose body runs
    past it after one byte more (``ObjectTooLarge``, naming ``setting``).

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     etag = put_bytes(s3, "bkt", "k", b"abc")
    ...     read_object(s3, "bkt", "k") == (b"abc", etag), read_object(s3, "bkt", "missing")
    (True, None)
    """
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise
    etag = str(response.get("ETag", "")).strip('"')
    with response["Body"] as body:
        if max_bytes is None:
            return body.read(), etag
        announced = response.get("ContentLength")
        if announced is not None and announced > max_bytes:
            raise ObjectTooLarge(bucket, key, announced, max_bytes, setting)
        data = body.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise ObjectTooLarge(bucket, key, None, max_bytes, setting)
        return data, etag


def head_object(s3_client: S3Client, bucket: str, key: str) -> dict[str, Any] | None:
    """``HeadObject`` response, or ``None`` when there is no object at the key.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = put_bytes(s3, "bkt", "k", b"abc")
    ...     head_object(s3, "bkt", "k")["ContentLength"], head_object(s3, "bkt", "nope")
    (3, None)
    """
    try:
        return dict(s3_client.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if _is_missing(exc):
            return None
        raise


def read_head_bytes(s3_client: S3Client, bucket: str, key: str, n: int = 64) -> bytes | None:
    """The first ``n`` bytes of an object (a Range GET); ``None`` when there is no object.

    >>> import boto3
    >>> from moto import mock_aws
    >>> from minimax_dagster.storage import s3_client_config
    >>> with mock_aws():
    ...     s3 = boto3.client("s3", region_name="us-east-1", config=s3_client_config())
    ...     _ = s3.create_bucket(Bucket="bkt")
    ...     _ = put_bytes(s3, "bkt", "v.mp4", b"\\x00\\x00\\x00\\x18ftypmp42" + bytes(100))
    ...     read_head_bytes(s3, "bkt", "v.mp4", 12)[4:8]
    b'ftyp'
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    try:
        response = s3_client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{n - 1}")
    except ClientError as exc:
        if _is_missing(exc):
            return None
        if exc.response.get("Error", {}).get("Code") == "InvalidRange":  # empty object
            return b""
        raise
    with response["Body"] as body:
        return body.read()[:n]
