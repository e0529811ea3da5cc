"""Input images: what identifies a prompt's image in its video key, and getting the image to the account.

A prompt's ``image`` is one of five kinds (:attr:`VideoPrompt.image_kind`), identified in the video key as:

- a local ``path``: by its content hash (``sha256:...``), so a renamed file keeps its videos;
- an ``s3://bucket/key`` object: by bucket, key and ETag (``s3:bucket/key@etag``), from one HeadObject. A
  re-run finds the same ETag and reuses the video without reading the image; an image written again with new
  bytes gets a new ETag, so a new video. The ETag rather than a content hash, because a hash needs the whole
  object read on every run, including the re-runs that only reuse; and the object is later read with
  ``IfMatch`` on that ETag, so the bytes uploaded are the ones the key names. (With SSE-KMS or SSE-C the ETag is
  not a digest of the bytes: writing the same bytes again then counts as a new image.)
- an http(s) ``url`` or an uploaded ``file_id``: by the text itself.

Before a create, :class:`InputImages` gives the create its ``fileID`` and ``ossPath``: a fileID row as it is; any
other image read (a URL or S3 object capped at ``ProducerSettings.image_limit``, and checked to be a PNG, JPEG or
WebP image) and uploaded with the account that will create the video (a fileID belongs to one account), once per
image and account for the producer's life.

>>> identify_image(VideoPrompt(id="a", template_id="1", image="https://cdn.example.com/a.png"), s3_client=None)
ImageSource(ref='url:https://cdn.example.com/a.png', s3=None)
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import requests

from minimax_dagster.api.client import MiniMaxClient, sniff_image_type
from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.api.models import UploadedFile, parse_composite_id
from minimax_dagster.production.notes import NoteQueue
from minimax_dagster.production.producer_settings import MAX_IMAGE_BYTES
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import DownloadPolicy, StorageError, open_download, redact_url
from minimax_dagster.storage.source_objects import (
    SourceObject,
    head_source_object,
    parse_s3_uri,
    read_source_object,
)

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client


@dataclass(frozen=True)
class ImageSource:
    """A prompt's input image as identified before production: ``ref`` goes into the video key (``None``
    without an image); ``s3`` is the object found for an ``s3://`` image.

    >>> ImageSource(ref=None).ref is None
    True
    """

    ref: str | None
    s3: SourceObject | None = None


def identify_image(
    prompt: VideoPrompt, s3_client: S3Client | None, *, max_bytes: int = MAX_IMAGE_BYTES
) -> ImageSource:
    """What identifies ``prompt``'s image (see the module docstring). Reads a local file; for an ``s3://`` image,
    one HeadObject through ``s3_client``, refusing an object over ``max_bytes`` before anything is read.

    Raises ``OSError`` for an unreadable file, ``SourceObjectError`` for an unusable S3 object.

    >>> identify_image(VideoPrompt(id="a", template_id="1"), s3_client=None)
    ImageSource(ref=None, s3=None)
    """
    kind = prompt.image_kind
    image = prompt.image or ""
    if kind == "none":
        return ImageSource(None)
    if kind == "path":
        return ImageSource("sha256:" + hashlib.sha256(read_local_image(image, max_bytes)).hexdigest())
    if kind == "s3":
        if s3_client is None:
            raise ValueError(f"image {image!r} is in S3, but no S3 client was given to read it")
        bucket, key = parse_s3_uri(image)
        found = head_source_object(s3_client, bucket, key, max_bytes=max_bytes)
        return ImageSource(f"s3:{bucket}/{key}@{found.etag}", found)
    return ImageSource(f"{kind}:{image}")


_IMAGE_CAP = "ProducerSettings.max_image_bytes"


def read_local_image(path: str, max_bytes: int) -> bytes:
    """A local image's bytes, refused by its size before it is read when over ``max_bytes``.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile(suffix=".png") as f:
    ...     _ = f.write(b"0123456789"); f.flush()
    ...     read_local_image(f.name, 4)
    Traceback (most recent call last):
    ...
    minimax_dagster.production.images.InputImageError: image ... is 10 bytes, over the 4 of ProducerSettings.max_image_bytes; use a smaller image
    """
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        data = file.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise InputImageError(
            f"image {path} is {max(size, len(data))} bytes, over the {max_bytes} of {_IMAGE_CAP}; use a smaller image"
        )
    return data


def image_owner(prompt: VideoPrompt) -> str | None:
    """The account that owns a fileID image (a create with it must use that account); ``None`` otherwise.

    >>> image_owner(VideoPrompt(id="a", template_id="1", image="user:1-minimax:100002-file:7", oss_path="x"))
    '100002'
    """
    if prompt.image_kind != "file_id":
        return None
    return parse_composite_id(prompt.image or "").get("minimax")


def upload_account(client: MiniMaxClient) -> str | None:
    """The account an image goes to when the run knows none: POST files needs one as soon as several accounts
    are configured (doc), and the create then uses that account (the file belongs to it).

    Of the video accounts (the client's ``accounts``, else GET accounts' ``supportVideo`` accounts without
    ``error``), the one with the most free slots in GET scheduler/available, else the first; ``None`` when
    the accounts cannot be listed (then the API decides, which works with one account configured).

    >>> upload_account(MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax", accounts=["100002"]))
    '100002'
    """
    try:
        names = client.video_account_names()
    except MiniMaxError:
        return None
    if len(names) <= 1:
        return names[0] if names else None
    try:
        free = {a.account: a.available or 0 for a in client.get_scheduler().available}
    except MiniMaxError:
        return names[0]
    return max(names, key=lambda name: free.get(name, 0))


@dataclass(frozen=True)
class ImageInput:
    """What a create gets for its image: the fileID and ossPath (``None`` without an image), and the account
    the create must use (the one that owns the file; ``None`` lets the API choose).

    >>> ImageInput(None, None, "100001").account
    '100001'
    """

    file_id: str | None
    oss_path: str | None
    account: str | None


class InputImageError(ValueError):
    """An image cannot be used as an input: not a PNG, JPEG or WebP image, or too large.

    >>> str(InputImageError("image s3://imgs/a.txt is not a PNG, JPEG or WebP image; point image at one"))
    'image s3://imgs/a.txt is not a PNG, JPEG or WebP image; point image at one'
    """


class InputImages:
    """Gives each create its image, uploading (once per image and account in a run) what is not a fileID yet.

    Args:
        s3_client: reads ``s3://`` images (the producer's client).
        policy: the download policy URL images are fetched under.
        max_bytes: the most bytes a URL or S3 image may have (``ProducerSettings.image_limit``).
        client: the calling thread's :class:`MiniMaxClient` (uploads go through it).
        session: the calling thread's ``requests.Session`` (URL images are downloaded with it).
        notes: where "uploaded the input image" is said.

    >>> import boto3
    >>> images = InputImages(
    ...     boto3.client("s3", region_name="us-east-1"),
    ...     DownloadPolicy(allowed_hosts=("x.com",)),
    ...     client=lambda: MiniMaxClient("token"),
    ...     session=requests.Session,
    ...     notes=NoteQueue(),
    ... )
    >>> fox = VideoPrompt(id="fox", template_id="1", image="user:1-minimax:100002-file:7", oss_path="https://o/7.png")
    >>> images.for_create(fox, identify_image(fox, s3_client=None), "100002")
    ImageInput(file_id='user:1-minimax:100002-file:7', oss_path='https://o/7.png', account='100002')
    """

    def __init__(
        self,
        s3_client: S3Client,
        policy: DownloadPolicy,
        *,
        max_bytes: int = MAX_IMAGE_BYTES,
        client: Callable[[], MiniMaxClient],
        session: Callable[[], requests.Session],
        notes: NoteQueue,
    ) -> None:
        self._s3 = s3_client
        self._policy = policy
        self._max_bytes = max_bytes
        self._client = client
        self._session = session
        self._notes = notes
        self._lock = threading.Lock()
        # (what names the bytes, account) -> the upload: "sha256:<digest>" always, "s3:<bucket>/<key>@<etag>"
        # too for S3 images (their ETag names their bytes), so a second video of the same object reads it no more.
        self._uploaded: dict[tuple[str, str | None], UploadedFile] = {}

    def for_create(self, prompt: VideoPrompt, source: ImageSource, account: str | None) -> ImageInput:
        """The image input of a create on ``account`` (``None``: the API chooses, and the create then uses the
        account the image was uploaded to)."""
        kind = prompt.image_kind
        if kind == "none":
            return ImageInput(None, None, account)
        if kind == "file_id":
            return ImageInput(prompt.image, prompt.oss_path, account)
        uploaded = self._upload(prompt, source, account)
        return ImageInput(uploaded.file_id, uploaded.oss_path, account or uploaded.account)

    def _upload(self, prompt: VideoPrompt, source: ImageSource, account: str | None) -> UploadedFile:
        names = [source.ref] if source.s3 is not None and source.ref else []
        cached = self._cached(names, account)
        if cached is not None:
            return cached
        data = self._read(prompt, source)
        names.append("sha256:" + hashlib.sha256(data).hexdigest())
        cached = self._cached(names, account)
        if cached is not None:
            return cached
        client = self._client()
        target = account or upload_account(client)
        uploaded = client.upload_file(data, account=target)
        self._notes.say(prompt, f"uploaded the input image as {uploaded.file_id}")
        with self._lock:
            for name in names:
                self._uploaded[name, account] = uploaded
        return uploaded

    def _cached(self, names: list[str], account: str | None) -> UploadedFile | None:
        with self._lock:
            found = next((self._uploaded[n, account] for n in names if (n, account) in self._uploaded), None)
            if found is not None:
                for name in names:
                    self._uploaded[name, account] = found
            return found

    def _read(self, prompt: VideoPrompt, source: ImageSource) -> bytes:
        """The image's bytes, checked to be an image the API takes."""
        kind = prompt.image_kind
        image = prompt.image or ""
        limit = self._max_bytes
        if kind == "path":
            data = read_local_image(image, limit)
            shown = image
        elif kind == "s3":
            if source.s3 is None:
                raise ValueError(f"image {image!r} is in S3, but it was not identified with an S3 client")
            data = read_source_object(self._s3, source.s3, max_bytes=limit)
            shown = source.s3.uri
        else:
            response = open_download(image, policy=self._policy, session=self._session())
            with response:
                data = response.raw.read(limit + 1, decode_content=True)
            shown = redact_url(image)
            if len(data) > limit:
                raise StorageError(f"image {shown} is over {limit} bytes ({_IMAGE_CAP}); use a smaller image")
        if sniff_image_type(data) is None:
            raise InputImageError(f"image {shown} is not a PNG, JPEG or WebP image; point image at one")
        return data
