"""The other inputs a worker reads, under a broken or hostile source, over real sockets (a raw HTTP source,
moto's S3 server): the CDN download, input images (local, https, s3://) and prompt datasets in S3. Each is bounded
by its cap, refused with an error naming the cap and its setting, and leaves nothing behind.
"""

from __future__ import annotations

import pytest
import requests

from minimax_dagster.api import MiniMaxClient
from minimax_dagster.production.images import InputImageError, InputImages, identify_image, read_local_image
from minimax_dagster.production.notes import NoteQueue
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.storage import (
    DownloadPolicy,
    DownloadTooLarge,
    ObjectTooLarge,
    StorageError,
    get_json,
    put_bytes,
)
from minimax_dagster.storage.source_objects import SourceObjectTooLarge
from minimax_dagster_tests.http_source import MiB
from minimax_dagster_tests.storage_support import assert_nothing_left, upload

PNG = b"\x89PNG\r\n\x1a\n" + bytes(100)


def test_a_gzip_video_expanding_past_max_bytes_is_cut_there(
    s3_client, bucket, http_source, http_session
) -> None:
    # 1 GiB of zeros in about 1 MiB on the wire, although identity was asked: decoded bytes count.
    policy = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=8 * MiB)
    with pytest.raises(DownloadTooLarge) as info:
        upload(s3_client, bucket, f"{http_source}/gzip-zeros/{1024 * MiB}", policy, http_session)
    assert "max_bytes 8388608 (DownloadPolicy.max_bytes, set by max_download_bytes)" in str(info.value)
    assert_nothing_left(s3_client, bucket)


def test_a_gzip_video_under_max_bytes_is_stored_decoded(s3_client, bucket, http_source, http_session) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=8 * MiB)
    assert (
        upload(s3_client, bucket, f"{http_source}/gzip-zeros/{3 * MiB}", policy, http_session).bytes
        == 3 * MiB
    )


def test_a_content_length_over_max_bytes_names_the_setting(
    s3_client, bucket, http_source, http_session
) -> None:
    policy = DownloadPolicy(allowed_hosts=(http_source,), max_bytes=MiB)
    with pytest.raises(
        DownloadTooLarge, match=r"Content-Length 2097152 exceeds max_bytes 1048576 \(DownloadPolicy"
    ):
        upload(s3_client, bucket, f"{http_source}/bytes/{2 * MiB}", policy, http_session)
    assert_nothing_left(s3_client, bucket)


def test_a_local_image_over_the_cap_is_refused_by_its_size(tmp_path) -> None:
    image = tmp_path / "big.png"
    image.write_bytes(PNG + bytes(5000))
    with pytest.raises(InputImageError, match=r"over the 4096 of ProducerSettings\.max_image_bytes"):
        read_local_image(str(image), 4096)
    prompt = VideoPrompt(id="a", template_id="1", image=str(image))
    with pytest.raises(InputImageError, match="max_image_bytes"):
        identify_image(prompt, s3_client=None, max_bytes=4096)
    assert read_local_image(str(image), 10_000)[:8] == PNG[:8]


def images(s3_client, policy: DownloadPolicy, max_bytes: int) -> InputImages:
    return InputImages(
        s3_client,
        policy,
        max_bytes=max_bytes,
        client=lambda: MiniMaxClient("t", base_url="http://127.0.0.1:9/v1/minimax"),
        session=requests.Session,
        notes=NoteQueue(),
    )


def test_an_https_image_expanding_past_the_cap_is_refused(s3_client, http_source, download_policy) -> None:
    prompt = VideoPrompt(id="a", template_id="1", image=f"{http_source}/gzip-zeros/{512 * MiB}")
    reader = images(s3_client, download_policy, 2 * MiB)
    with pytest.raises(StorageError, match=r"over 2097152 bytes \(ProducerSettings\.max_image_bytes\)"):
        reader.for_create(prompt, identify_image(prompt, s3_client), "1")


def test_an_s3_image_over_the_cap_is_refused_before_it_is_read(s3_client, bucket) -> None:
    put_bytes(s3_client, bucket, "img/big.png", PNG + bytes(10_000))
    prompt = VideoPrompt(id="a", template_id="1", image=f"s3://{bucket}/img/big.png")
    with pytest.raises(SourceObjectTooLarge, match="over the limit of 4096 bytes"):
        identify_image(prompt, s3_client, max_bytes=4096)


def test_a_dataset_over_its_cap_is_refused_before_it_is_read(s3_client, bucket) -> None:
    put_bytes(s3_client, bucket, "datasets/big.json", b"[" + b'{"id":"x","prompt":"p"},' * 5000 + b"{}]")
    with pytest.raises(ObjectTooLarge) as info:
        get_json(s3_client, bucket, "datasets/big.json", max_bytes=64 * 1024, setting="max_dataset_bytes")
    assert "over the limit of 65536 bytes (max_dataset_bytes); it was not read" in str(info.value)
    assert len(get_json(s3_client, bucket, "datasets/big.json", max_bytes=MiB)) == 5001
