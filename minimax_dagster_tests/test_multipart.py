"""Finding and aborting open multipart uploads (minimax_dagster.storage.multipart) against moto's S3 server."""

from __future__ import annotations

import datetime as dt

from minimax_dagster.storage import abort_stale_multipart_uploads
from minimax_dagster_tests.storage_support import open_uploads


def test_abort_stale_multipart_uploads(s3_client, bucket) -> None:
    s3_client.create_multipart_upload(Bucket=bucket, Key="minimax/videos/v1-a.mp4")
    s3_client.create_multipart_upload(Bucket=bucket, Key="minimax/videos/v1-b.mp4")
    s3_client.create_multipart_upload(Bucket=bucket, Key="other/v1-c.mp4")
    s3_client.upload_part(
        Bucket=bucket,
        Key="minimax/videos/v1-a.mp4",
        UploadId=open_uploads(s3_client, bucket)[0]["UploadId"],
        PartNumber=1,
        Body=b"x" * 10,
    )
    # moto reports a fixed Initiated time (2010-11-10T20:48:33Z) for every upload, so the age
    # filter is checked against a clock placed relative to what the server reports.
    initiated = max(u["Initiated"] for u in open_uploads(s3_client, bucket))
    soon_after = lambda: initiated + dt.timedelta(minutes=30)  # noqa: E731
    later = lambda: initiated + dt.timedelta(hours=2)  # noqa: E731
    hour = dt.timedelta(hours=1)
    assert abort_stale_multipart_uploads(s3_client, bucket, "minimax/", older_than=hour, now=soon_after) == 0
    assert len(open_uploads(s3_client, bucket)) == 3
    assert abort_stale_multipart_uploads(s3_client, bucket, "minimax/", older_than=hour, now=later) == 2
    assert [u["Key"] for u in open_uploads(s3_client, bucket)] == ["other/v1-c.mp4"]
    assert abort_stale_multipart_uploads(s3_client, bucket, "minimax/") == 0
    assert abort_stale_multipart_uploads(s3_client, bucket, "") == 1
    assert open_uploads(s3_client, bucket) == []
