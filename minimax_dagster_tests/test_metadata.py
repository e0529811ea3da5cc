"""The materialization metadata a person reads (issue 13.2 and 13.4): human sizes and durations, a table of small
posters and links that open in a browser, the recommended templates as a small table, nothing repeated.

Links and thumbnails are checked against moto's S3 server over a real socket: the link is fetched as a browser
would, the poster is read from S3 and shrunk.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re

import boto3
import pytest
import requests
from markdown_it import MarkdownIt
from PIL import Image

from minimax_dagster.metadata.links import MAX_PRESIGN_SECONDS, VideoLinks
from minimax_dagster.metadata.markdown import WORD_CHARS, ZERO_WIDTH_SPACE, human_bytes, human_seconds
from minimax_dagster.metadata.tables import (
    TABLE_ROWS,
    TEMPLATE_ROWS,
    manifest_column_schema,
    materialization_metadata,
    recommended_templates,
    templates_table,
    video_table,
)
from minimax_dagster.metadata.thumbnails import (
    MAX_POSTER_BYTES,
    THUMBNAIL_BOX,
    THUMBNAIL_ROWS,
    PosterThumbnails,
    poster_thumbnail,
)
from minimax_dagster.production.manifest import ManifestEntry
from minimax_dagster.storage import put_bytes
from minimax_dagster_tests.conftest import S3_KEY_ID, S3_SECRET
from minimax_dagster_tests.s3_support import recorded_s3_requests


def entry(n: int, **fields) -> ManifestEntry:
    values = {
        "id": f"clip-{n:02d}",
        "prompt": f"A lighthouse number {n} in a storm",
        "template_id": "1",
        "status": "generated",
        "video_id": f"user:1-minimax:2-video:{n}",
        "s3_uri": f"s3://media/minimax/videos/v{n}.mp4",
        "poster_uri": f"s3://media/minimax/posters/v{n}.png",
        "width": 1280,
        "height": 720,
        "duration_s": 6.0,
        "bytes": 1_400_000 + n,
        "generation_seconds": 60.0 + n,
        "recommended_templates": [{"id": "42", "name": "Diving"}, {"id": "7", "name": "Vlog"}],
    }
    values.update(fields)
    return ManifestEntry(**values)


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), "teal").save(buf, "PNG")
    return buf.getvalue()


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("|")]


# ---- units --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (1023, "1023 bytes"),
        (1024, "1.0 KiB"),
        (23_660_581, "22.6 MiB"),
        (5 * 1024**4, "5.0 TiB"),
    ],
)
def test_sizes_read_as_a_person_says_them(n, text):
    assert human_bytes(n) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.25, "0.25 s"), (9.994, "9.99 s"), (61.0, "61.0 s"), (119.94, "119.9 s"), (3725, "62 min 5 s")],
)
def test_durations_carry_their_unit(seconds, text):
    assert human_seconds(seconds) == text


# ---- links --------------------------------------------------------------------------------------------------


def test_without_an_endpoint_a_link_opens_the_object_in_the_aws_console():
    aws = boto3.client("s3", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s")
    links = VideoLinks.from_s3_client(aws)
    url = links.url("s3://media/minimax/videos/v1-abc.mp4")
    assert url == (
        "https://s3.console.aws.amazon.com/s3/object/media?region=eu-west-1&prefix=minimax%2Fvideos%2Fv1-abc.mp4"
    )
    assert "AWS S3 console" in links.describe()


def test_a_cdn_base_wins_and_keys_are_percent_encoded():
    links = VideoLinks(public_base_url="https://cdn.example.com/media/", endpoint_url="http://127.0.0.1:1")
    assert (
        links.url("s3://b/minimax/videos/a b#c.mp4")
        == "https://cdn.example.com/media/minimax/videos/a%20b%23c.mp4"
    )
    assert links.url(None) is None and links.url("https://not-s3/x") is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"presign_seconds": MAX_PRESIGN_SECONDS + 1}, "7 days"),
        ({"presign_seconds": 60}, "needs s3_client"),
        ({"public_base_url": "javascript:alert(1)"}, "public_base_url must be an http(s) URL"),
        ({"endpoint_url": "s3://bucket"}, "endpoint_url must be an http(s) URL"),
    ],
)
def test_bad_link_settings_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        VideoLinks(**kwargs)


def test_an_endpoint_link_opens_the_video_when_the_bucket_is_readable(s3_client, bucket):
    put_bytes(
        s3_client, bucket, "minimax/videos/v1.mp4", b"\x00\x00\x00\x18ftypmp42video", content_type="video/mp4"
    )
    links = VideoLinks.from_s3_client(s3_client)
    url = links.url(f"s3://{bucket}/minimax/videos/v1.mp4")
    assert url.startswith(s3_client.meta.endpoint_url)
    assert requests.get(url, timeout=10).status_code == 403, "a private bucket must not open anonymously"
    policy = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{bucket}/*",
    }
    s3_client.put_bucket_policy(
        Bucket=bucket, Policy=json.dumps({"Version": "2012-10-17", "Statement": [policy]})
    )
    response = requests.get(url, timeout=10)
    assert response.status_code == 200 and response.content.startswith(b"\x00\x00\x00\x18ftyp")


def test_a_presigned_link_opens_a_private_object_and_says_when_it_stops(s3_client, bucket):
    put_bytes(s3_client, bucket, "v.mp4", b"\x00\x00\x00\x18ftypmp42", content_type="video/mp4")
    links = VideoLinks.from_s3_client(s3_client, presign_seconds=3600)
    response = requests.get(links.url(f"s3://{bucket}/v.mp4"), timeout=10)
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"
    now = dt.datetime(2026, 11, 27, 9, 30, tzinfo=dt.timezone.utc)
    assert links.describe(now) == "Links are presigned and stop working at 2026-11-27 10:30 UTC."


def test_by_default_no_credential_reaches_the_metadata(s3_client):
    links = VideoLinks.from_s3_client(s3_client)
    md = materialization_metadata([entry(1)], links=links, manifest_uri="s3://media/minimax/assets/v/p.json")
    text = json.dumps({k: str(getattr(v, "value", v)) for k, v in md.items()})
    assert S3_KEY_ID not in text and S3_SECRET not in text and "Signature" not in text


# ---- thumbnails ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "thumb"), [((1280, 720), (160, 90)), ((960, 960), (90, 90)), ((720, 1280), (51, 90))]
)
def test_posters_become_small_inline_jpegs(size, thumb):
    uri = poster_thumbnail(png(*size))
    assert uri.startswith("data:image/jpeg;base64,")
    picture = Image.open(io.BytesIO(base64.b64decode(uri.removeprefix("data:image/jpeg;base64,"))))
    assert picture.format == "JPEG" and picture.size == thumb
    assert picture.size[0] <= THUMBNAIL_BOX[0] and picture.size[1] <= THUMBNAIL_BOX[1]
    assert len(uri) < 6000, "a thumbnail must stay a few kB: it is stored in every materialization event"


def test_thumbnails_are_read_from_s3_and_what_cannot_be_read_is_skipped(s3_client, bucket):
    put_bytes(s3_client, bucket, "p/good.png", png(1280, 720), content_type="image/png")
    put_bytes(s3_client, bucket, "p/junk.png", b"<html>not an image</html>", content_type="image/png")
    entries = [
        entry(1, poster_uri=f"s3://{bucket}/p/good.png"),
        entry(2, poster_uri=f"s3://{bucket}/p/junk.png"),
        entry(3, poster_uri=f"s3://{bucket}/p/missing.png"),
        entry(4, poster_uri=None),
        entry(5, status="failed", error="moderated", poster_uri=f"s3://{bucket}/p/good.png"),
    ]
    with PosterThumbnails(s3_client) as thumbnails:
        thumbs = thumbnails.for_entries(entries)
    assert list(thumbs) == ["clip-01"] and thumbs["clip-01"].startswith("data:image/jpeg;base64,")


def test_thumbnails_stop_after_their_row_budget(s3_client, bucket):
    put_bytes(s3_client, bucket, "p/good.png", png(320, 180), content_type="image/png")
    entries = [entry(n, poster_uri=f"s3://{bucket}/p/good.png") for n in range(THUMBNAIL_ROWS + 3)]
    with PosterThumbnails(s3_client) as thumbnails:
        assert len(thumbnails.for_entries(entries)) == THUMBNAIL_ROWS
    with PosterThumbnails(s3_client, rows=2) as thumbnails:
        assert len(thumbnails.for_entries(entries)) == 2


def test_background_thumbnails_are_made_when_added_and_read_each_poster_once(s3_client, bucket):
    """Made as each video is stored (``add``), so the report only collects them: here the posters are gone
    from S3 by then, and the thumbnails are still there. Two prompts of one video share its poster."""
    for n in range(3):
        put_bytes(s3_client, bucket, f"p/{n}.png", png(1280, 720), content_type="image/png")
    entries = [entry(n, poster_uri=f"s3://{bucket}/p/{n}.png") for n in range(3)]
    twin = entry(9, poster_uri=f"s3://{bucket}/p/0.png")
    with PosterThumbnails(s3_client) as thumbnails:
        for e in [*entries, twin]:
            thumbnails.add(e)
        thumbnails.wait()
        for n in range(3):
            s3_client.delete_object(Bucket=bucket, Key=f"p/{n}.png")
        made = thumbnails.for_entries([*entries, twin])
    assert list(made) == ["clip-00", "clip-01", "clip-02", "clip-09"]
    assert made["clip-09"] == made["clip-00"] and made["clip-00"].startswith("data:image/jpeg;base64,")


def test_a_poster_offered_with_its_bytes_is_never_read_from_s3(s3_client, bucket):
    """The producer hands over each poster it just stored: its thumbnail is the same as one read from S3, and
    no request is made for it (here the poster is not even in S3). A poster over the read limit is not taken
    that way."""
    put_bytes(s3_client, bucket, "p/stored.png", png(1280, 720), content_type="image/png")
    stored = entry(1, poster_uri=f"s3://{bucket}/p/stored.png")
    offered = entry(2, poster_uri=f"s3://{bucket}/p/never-stored.png")
    with PosterThumbnails(s3_client) as thumbnails, recorded_s3_requests(s3_client) as seen:
        thumbnails.offer(offered.poster_uri or "", png(1280, 720))
        thumbnails.offer(f"s3://{bucket}/p/huge.png", b"x" * (MAX_POSTER_BYTES + 1))
        thumbnails.add(offered)
        made = thumbnails.for_entries([offered])
        assert seen == []
        from_s3 = thumbnails.for_entries([stored])
    assert made["clip-02"] == from_s3["clip-01"] and made["clip-02"].startswith("data:image/jpeg;base64,")
    assert seen == [("GetObject", bucket, "p/stored.png")]


def test_background_thumbnails_skip_what_cannot_be_shown(s3_client, bucket):
    """Unreadable, missing and failed rows skipped (the next rows take their place, made when asked), the row
    budget kept; an S3 error only leaves its row without one."""
    put_bytes(s3_client, bucket, "p/good.png", png(320, 180), content_type="image/png")
    put_bytes(s3_client, bucket, "p/junk.png", b"<html>not an image</html>", content_type="image/png")
    entries = [
        entry(1, poster_uri=f"s3://{bucket}/p/junk.png"),
        entry(2, poster_uri=f"s3://{bucket}/p/missing.png"),
        entry(3, poster_uri="s3://not a bucket!/p/good.png"),
        entry(4, status="failed", error="moderated", poster_uri=f"s3://{bucket}/p/good.png"),
        *(entry(n, poster_uri=f"s3://{bucket}/p/good.png") for n in range(10, 14)),
    ]
    with PosterThumbnails(s3_client, rows=3) as thumbnails:
        thumbnails.add(entries[0])  # started early, like the first rows of a run
        made = thumbnails.for_entries(entries)
    assert list(made) == ["clip-10", "clip-11", "clip-12"]
    assert len(set(made.values())) == 1 and made["clip-10"].startswith("data:image/jpeg;base64,")


# ---- the table ----------------------------------------------------------------------------------------------


def test_a_ten_row_table_has_one_readable_row_per_video():
    entries = [entry(n) for n in range(10)]
    thumbs = {e.id: "data:image/jpeg;base64,AAAA" for e in entries}
    links = VideoLinks(endpoint_url="http://127.0.0.1:9000")
    markdown = video_table(entries, links=links, thumbnails=thumbs)
    rows = table_rows(markdown)
    assert rows[0] == "| poster | id | prompt | status | resolution | duration | size | video |"
    assert len(rows) == 2 + 10
    for e, row in zip(entries, rows[2:], strict=True):
        cells = [c.strip() for c in row.strip("|").split(" | ")]
        assert len(cells) == 8
        assert cells[0] == f"[![poster](data:image/jpeg;base64,AAAA)](<{links.url(e.s3_uri)}>)"
        assert cells[1] == e.id.replace("-", "\\-") and cells[3] == "generated" and cells[4] == "1280x720"
        assert (
            cells[5] == "6\u00a0s"
            and cells[6] == "1.3\u00a0MiB"
            and cells[7] == f"[open](<{links.url(e.s3_uri)}>)"
        )
    assert markdown.endswith("Links open the objects on 127.0.0.1:9000.")
    html = MarkdownIt("commonmark").enable("table").render(markdown)
    assert html.count("<tr>") == 11 and html.count("<img") == 10


def test_no_cell_has_a_word_long_enough_to_widen_the_table():
    long = "x" * 300
    e = entry(1, id="id" + long, prompt="see " + long, status="failed", error="E" + long, s3_uri=None)
    row = table_rows(video_table([e]))[2]
    for word in row.replace("\\", "").split():
        for piece in word.split(ZERO_WIDTH_SPACE):
            assert len(piece) <= WORD_CHARS + 1, piece


def test_a_failed_row_says_why_and_links_nothing():
    row = table_rows(video_table([entry(1, status="failed", error="moderated (status 7)", s3_uri=None)]))[2]
    assert "failed: moderated \\(status 7\\)" in row and "open" not in row and "](<" not in row


def test_rows_past_the_budget_are_counted_not_shown():
    entries = [entry(n) for n in range(TABLE_ROWS + 7)]
    markdown = video_table(entries)
    assert len(table_rows(markdown)) == 2 + TABLE_ROWS
    assert "7 more in the manifest." in markdown


# ---- the whole metadata -------------------------------------------------------------------------------------


def test_the_metadata_a_person_reads(s3_client):
    entries = [
        entry(1),
        entry(2),
        entry(3, status="reused", generation_seconds=None),
        entry(4, status="failed"),
    ]
    links = VideoLinks(endpoint_url="http://127.0.0.1:9000")
    md = materialization_metadata(
        entries, {"created": 3, "finished": 3}, {"100001": 5}, links=links, manifest_uri="s3://media/m/p.json"
    )
    assert (md["requested"], md["generated"], md["reused"], md["failed"]) == (4, 2, 1, 1)
    assert list(md)[:7] == [
        "requested",
        "generated",
        "reused",
        "failed",
        "videos",
        "size_total",
        "generation_time",
    ]
    assert md["dagster/row_count"] == 4
    assert md["bytes_total"] == 3 * 1_400_000 + 6 and md["size_total"] == "4.0 MiB"
    assert md["generation_time"] == "median 61.5 s, longest 62.0 s, 2 min 3 s in all (2 generated)"
    assert md["generation_seconds_median"] == 61.5
    assert md["first_video"].value == "http://127.0.0.1:9000/media/minimax/videos/v1.mp4"
    assert md["manifest"].value == "http://127.0.0.1:9000/media/m/p.json"
    assert md["video_ids"].value == [
        "user:1-minimax:2-video:1",
        "user:1-minimax:2-video:2",
        "user:1-minimax:2-video:3",
    ]
    assert md["stream_events"].value == {"created": 3, "finished": 3} and md["capacity"].value == {
        "100001": 5
    }
    assert md["failed_prompts"].value == [{"id": "clip-04", "error": None}]
    templates = md["recommended_templates"].value
    assert table_rows(templates) == [
        "| template | name | videos |",
        "|---|---|---|",
        "| 42 | Diving | 3 |",
        "| 7 | Vlog | 3 |",
    ]
    assert not any("s3://" in str(getattr(v, "value", v)) for k, v in md.items() if k != "failed_prompts")


def test_run_wide_values_and_the_templates_are_left_out_when_not_asked_for():
    md = materialization_metadata([entry(1)], templates=False)
    assert not {"stream_events", "capacity", "recommended_templates", "manifest"} & set(md)
    assert md["generation_time"].startswith("median ")


def test_nothing_generated_says_so():
    md = materialization_metadata([entry(1, status="reused", generation_seconds=None)])
    assert md["generation_time"] == "nothing generated in this run" and md["reused"] == 1


def test_recommended_templates_count_videos_not_mentions():
    e = entry(
        1,
        recommended_templates=[{"id": "42", "name": "Diving"}, {"id": "42", "name": "Diving"}, {"id": None}],
    )
    assert recommended_templates([e, entry(2, status="failed")]) == {("42", "Diving"): 1}


def test_the_manifest_column_schema_names_every_manifest_field():
    schema = manifest_column_schema()
    assert [c.name for c in schema.columns] == list(ManifestEntry.model_fields)
    types = {c.name: c.type for c in schema.columns}
    assert (types["id"], types["bytes"], types["duration_s"], types["recovered"]) == (
        "string",
        "int",
        "float",
        "bool",
    )
    assert types["recommended_templates"] == "json" and types["status"] == "string"
    assert all(c.description for c in schema.columns)


def test_the_templates_table_stays_small():
    many = {(str(n), f"T{n}"): 100 - n for n in range(15)}
    markdown = templates_table(many)
    assert len(table_rows(markdown)) == 2 + TEMPLATE_ROWS and markdown.endswith("and 5 more.")
    assert table_rows(markdown)[2] == "| 0 | T0 | 100 |"
