"""VideoProducer end to end, against the simulator (or a scripted API) over real sockets and moto's S3 server:
crash-resume after a gateway error, rows in partitions, and input images from S3."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
import requests

from minimax_dagster import MiniMaxClient
from minimax_dagster.api import ReconcilePolicy
from minimax_dagster.production import ManifestEntry, Note, ProducerSettings, VideoProducer, VideoPrompt
from minimax_dagster.simulator.media import VideoSpec, render_poster_png, render_video
from minimax_dagster.storage import DownloadPolicy, VideoKeys, get_json, video_key
from minimax_dagster_tests.producer_support import producer_for
from minimax_dagster_tests.s3_support import recorded_s3_requests
from minimax_dagster_tests.scripted_server import Reply, ScriptedServer

VID = "user:1-minimax:100001-video:42"


def test_gateway_error_on_create_reattaches_to_the_job_it_created(s3_client, bucket):
    prompt = VideoPrompt(id="p1", prompt="A lighthouse", template_id="7")
    key = video_key("7", "A lighthouse", None)
    mp4 = render_video(VideoSpec(width=64, height=48, duration_s=1, fps=4, title="x")).read_all()
    with ScriptedServer() as api:
        origin = api.base_url.removesuffix("/v1/minimax")
        api.on("POST", "videos/agent-create", Reply(504, {"error": "Gateway Timeout"}))
        api.on(
            "GET",
            "scheduler/available",
            Reply(body={"executing": [{"videoId": VID, "replyRef": key}], "available": []}),
        )
        api.on(
            "GET",
            f"videos/{VID}",
            Reply(
                body={
                    "videoId": VID,
                    "status": 2,
                    "videoURL": f"{origin}/cdn/v.mp4",
                    "width": 64,
                    "height": 48,
                }
            ),
        )
        api.on("GET", "/cdn/v.mp4", Reply(body=mp4, headers={"Content-Type": "video/mp4"}))
        settings = ProducerSettings(
            bucket=bucket,
            prefix="minimax",
            policy=DownloadPolicy(allowed_hosts=(origin,)),
            accounts={"100001": 1},
            capacity_wait=0.05,
        )
        producer = VideoProducer(
            lambda: MiniMaxClient("t", base_url=api.base_url, max_retries=0, poll_interval=0.05),
            s3_client,
            settings,
        )
        (entry,) = producer.produce([prompt])
        assert api.count("POST", "videos/agent-create") == 1, "a second create was sent after the 504"
    assert entry.status == "generated" and entry.video_id == VID and entry.bytes == len(mp4)
    assert get_json(s3_client, bucket, VideoKeys("minimax", key).job)["status"] == "finished"


# ------------------------------------------------------------------------------------------------ helpers

TEXT_TEMPLATE = "394100000000000003"  # simulator "Transformers": text optional, no image
DIVING = "392747428568649728"  # image required, no text
RUN_FOR_LIFE = "393769180141805569"  # image and text


def run_collecting(
    producer: VideoProducer, prompts: list[VideoPrompt]
) -> tuple[dict[Any, ManifestEntry], list[Note]]:
    """The entries by (partition, id), and every note the run gave."""
    entries: dict[Any, ManifestEntry] = {}
    notes: list[Note] = []
    for note in producer.run(prompts):
        notes.append(note)
        if note.entry is not None:
            assert (note.partition, note.prompt_id) == (note.entry.partition, note.entry.id)
            assert (note.entry.partition, note.entry.id) not in entries, "one entry per row"
            entries[note.entry.partition, note.entry.id] = note.entry
    return entries, notes


def uploaded_files(sim: Any, account: str) -> list[dict[str, Any]]:
    """The simulator's GET files for one account (what was uploaded to it)."""
    response = requests.get(
        f"{sim.base_url}/files",
        params={"account": account},
        headers={"Authorization": f"Bearer {sim.token}"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


# ------------------------------------------------------------------------------------------------ partitions


def test_the_same_id_in_two_partitions_is_two_rows(simulator: Any, s3_client: Any, bucket: str) -> None:
    prompts = [
        VideoPrompt(id="a", prompt="A fox in snow", template_id=TEXT_TEMPLATE, partition="2024-05-01"),
        VideoPrompt(id="a", prompt="A heron at dawn", template_id=TEXT_TEMPLATE, partition="2024-05-02"),
    ]
    entries, notes = run_collecting(producer_for(simulator, s3_client, bucket), prompts)
    assert sorted(entries) == [("2024-05-01", "a"), ("2024-05-02", "a")]
    first, second = entries["2024-05-01", "a"], entries["2024-05-02", "a"]
    assert first.status == second.status == "generated" and first.video_id != second.video_id
    assert (first.prompt, second.prompt) == ("A fox in snow", "A heron at dawn")
    assert simulator.counters()["creates"] == 2
    lines = [n for n in notes if n.message]
    assert lines and all(n.partition in ("2024-05-01", "2024-05-02") and n.prompt_id == "a" for n in lines)
    assert all(n.message.startswith(f"[{n.partition}/a] ") for n in lines)  # type: ignore[union-attr]
    # produce() keys its answer by (partition, id) too, in prompt order.
    again = producer_for(simulator, s3_client, bucket).produce(prompts)
    assert [(e.partition, e.id, e.status) for e in again] == [
        ("2024-05-01", "a", "reused"),
        ("2024-05-02", "a", "reused"),
    ]


def test_the_same_video_asked_by_two_partitions_is_made_once(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    prompts = [
        VideoPrompt(
            id="a", prompt="A kite over dunes", template_id=TEXT_TEMPLATE, partition="p1", metadata={"n": 1}
        ),
        VideoPrompt(
            id="b", prompt="A kite over dunes", template_id=TEXT_TEMPLATE, partition="p2", metadata={"n": 2}
        ),
        VideoPrompt(id="a", prompt="A kite over dunes", template_id=TEXT_TEMPLATE, partition="p3"),
    ]
    entries, notes = run_collecting(producer_for(simulator, s3_client, bucket), prompts)
    assert simulator.counters()["creates"] == 1
    leader, follower, third = entries["p1", "a"], entries["p2", "b"], entries["p3", "a"]
    assert leader.status == "generated" and follower.status == third.status == "reused"
    assert (follower.partition, follower.id, follower.metadata) == ("p2", "b", {"n": 2})
    assert follower.video_id == leader.video_id and follower.s3_uri == leader.s3_uri
    assert any(n.message == "[p2/b] same video as p1/a: reused" for n in notes)
    assert any(n.message == "[p3/a] same video as p1/a: reused" for n in notes)


def test_a_row_without_a_partition_is_named_by_its_id(simulator: Any, s3_client: Any, bucket: str) -> None:
    prompt = VideoPrompt(id="solo", prompt="A tram at night", template_id=TEXT_TEMPLATE)
    entries, notes = run_collecting(producer_for(simulator, s3_client, bucket), [prompt])
    assert entries[None, "solo"].ok and entries[None, "solo"].partition is None
    assert all(n.message.startswith("[solo] ") for n in notes if n.message)


# ------------------------------------------------------------------------------------------------ s3:// images


@pytest.fixture
def upstream(s3_client: Any) -> str:
    """A second bucket, where an upstream asset keeps its images."""
    name = f"upstream-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=name)
    return name


def test_an_s3_image_becomes_the_videos_input_uploaded_with_its_account(
    simulator: Any, s3_client: Any, bucket: str, upstream: str
) -> None:
    face = render_poster_png(64, 64, "Ada")
    s3_client.put_object(Bucket=upstream, Key="faces/ada.png", Body=face)
    prompt = VideoPrompt(id="ada", template_id=DIVING, image=f"s3://{upstream}/faces/ada.png", partition="d1")
    (entry,) = producer_for(simulator, s3_client, bucket, accounts={"100002": 1}).produce([prompt])
    assert entry.status == "generated" and entry.account == "100002" and entry.partition == "d1"
    counters = simulator.counters()
    assert counters["uploads"] == 1 and counters["creates"] == 1
    assert counters["creates_by_account"] == {"100002": 1}
    (file,) = uploaded_files(simulator, "100002")  # the simulator refuses a file used by another account
    assert requests.get(file["cdn_url"], timeout=10).content == face, "the upstream object is the input"
    assert uploaded_files(simulator, "100001") == []

    # A re-run reuses the video: one HeadObject of the image, never a read of it, no upload, no create.
    with recorded_s3_requests(s3_client) as seen:
        (again,) = producer_for(simulator, s3_client, bucket, accounts={"100002": 1}).produce([prompt])
    assert again.status == "reused" and again.video_id == entry.video_id
    assert [op for op, b, _k in seen if b == upstream] == ["HeadObject"]
    assert simulator.counters()["uploads"] == 1 and simulator.counters()["creates"] == 1

    # The upstream asset writes a new image at the same key: a new video.
    s3_client.put_object(Bucket=upstream, Key="faces/ada.png", Body=render_poster_png(64, 64, "Ada, older"))
    (updated,) = producer_for(simulator, s3_client, bucket, accounts={"100002": 1}).produce([prompt])
    assert updated.status == "generated" and updated.key != entry.key
    assert simulator.counters()["uploads"] == 2 and simulator.counters()["creates"] == 2


def test_one_s3_image_for_several_videos_is_looked_up_read_and_uploaded_once(
    simulator: Any, s3_client: Any, bucket: str, upstream: str
) -> None:
    s3_client.put_object(Bucket=upstream, Key="ada.png", Body=render_poster_png(48, 48, "Ada"))
    image = f"s3://{upstream}/ada.png"
    prompts = [
        VideoPrompt(id="dive", template_id=DIVING, image=image),
        VideoPrompt(id="beach", prompt="on a beach", template_id=RUN_FOR_LIFE, image=image),
        VideoPrompt(id="city", prompt="through a city", template_id=RUN_FOR_LIFE, image=image),
    ]
    with recorded_s3_requests(s3_client) as seen:
        entries = producer_for(simulator, s3_client, bucket, accounts={"100001": 1}).produce(prompts)
    assert [e.status for e in entries] == ["generated"] * 3
    assert [op for op, b, _k in seen if b == upstream] == ["HeadObject", "GetObject"]
    assert simulator.counters()["uploads"] == 1 and simulator.counters()["creates"] == 3


def test_an_s3_image_over_the_limit_is_refused_unread_and_unpaid(
    simulator: Any, s3_client: Any, bucket: str, upstream: str
) -> None:
    s3_client.put_object(Bucket=upstream, Key="huge.png", Body=render_poster_png(64, 64, "big") + bytes(5000))
    prompt = VideoPrompt(id="big", template_id=DIVING, image=f"s3://{upstream}/huge.png")
    with recorded_s3_requests(s3_client) as seen:
        (entry,) = producer_for(simulator, s3_client, bucket, max_image_bytes=4096).produce([prompt])
    assert entry.status == "failed"
    assert entry.error is not None and entry.error.startswith(
        f"SourceObjectTooLarge: cannot read s3://{upstream}/"
    )
    assert "over the limit of 4096 bytes; use a smaller object" in entry.error
    assert [op for op, b, _k in seen if b == upstream] == ["HeadObject"], "the body was never asked for"
    assert simulator.counters()["uploads"] == 0 and simulator.counters()["creates"] == 0


def test_a_missing_s3_image_fails_its_row_alone(
    simulator: Any, s3_client: Any, bucket: str, upstream: str
) -> None:
    prompts = [
        VideoPrompt(id="gone", template_id=DIVING, image=f"s3://{upstream}/nobody.png"),
        VideoPrompt(id="text", prompt="A lantern on a river", template_id=TEXT_TEMPLATE),
    ]
    gone, text = producer_for(simulator, s3_client, bucket).produce(prompts)
    assert gone.status == "failed" and "no such object (HTTP 404); check the bucket and key" in (
        gone.error or ""
    )
    assert text.status == "generated" and simulator.counters()["creates"] == 1


def test_an_s3_object_that_is_no_image_is_refused_before_upload(
    simulator: Any, s3_client: Any, bucket: str, upstream: str
) -> None:
    s3_client.put_object(Bucket=upstream, Key="notes.txt", Body=b"not an image at all")
    prompt = VideoPrompt(id="txt", template_id=DIVING, image=f"s3://{upstream}/notes.txt")
    (entry,) = producer_for(simulator, s3_client, bucket).produce([prompt])
    assert entry.status == "failed"
    assert entry.error == (
        f"InputImageError: image s3://{upstream}/notes.txt is not a PNG, JPEG or WebP image; point image at one"
    )
    assert simulator.counters()["uploads"] == 0 and simulator.counters()["creates"] == 0


def test_with_accounts_unknown_the_create_uses_the_account_the_image_went_to(
    simulator: Any, s3_client: Any, bucket: str, upstream: str
) -> None:
    s3_client.put_object(Bucket=upstream, Key="ada.png", Body=render_poster_png(48, 48, "Ada"))
    prompt = VideoPrompt(id="ada", template_id=DIVING, image=f"s3://{upstream}/ada.png")
    (entry,) = producer_for(simulator, s3_client, bucket, accounts={}, default_capacity=2).produce([prompt])
    assert entry.status == "generated"
    owners = [a for a in simulator.config.accounts if uploaded_files(simulator, a)]
    assert owners == [entry.account], "the create went to the account that holds the uploaded file"


def test_store_concurrency_bounds_how_many_videos_are_stored_at_once(s3_client: Any, bucket: str) -> None:
    from minimax_dagster.simulator import MiniMaxSimulator

    with MiniMaxSimulator(generation_seconds=0.6, heartbeat_seconds=0.1, accounts={"1": 4}) as sim:
        in_flight: list[int] = [0, 0]  # now, most
        lock = threading.Lock()

        def is_video_put(params: dict[str, Any]) -> bool:
            return str(params.get("Key", "")).endswith(".mp4")

        def before(params: dict[str, Any], **_: Any) -> None:
            if is_video_put(params):
                with lock:
                    in_flight[0] += 1
                    in_flight[1] = max(in_flight[1], in_flight[0])

        def after(**kwargs: Any) -> None:
            if str(kwargs["context"].get("video_key", "")).endswith(".mp4"):
                with lock:
                    in_flight[0] -= 1

        def remember_key(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
            context["video_key"] = params.get("Key", "")

        s3_client.meta.events.register("provide-client-params.s3.PutObject", before)
        s3_client.meta.events.register("before-parameter-build.s3.PutObject", remember_key)
        s3_client.meta.events.register("after-call.s3.PutObject", after)
        s3_client.meta.events.register("after-call-error.s3.PutObject", after)
        prompts = [
            VideoPrompt(id=f"v{i}", prompt=f"store gate {i}", template_id=TEXT_TEMPLATE) for i in range(6)
        ]
        entries = producer_for(sim, s3_client, bucket, store_concurrency=1).produce(prompts)
        assert [e.status for e in entries] == ["generated"] * 6
        assert sim.counters()["creates"] == 6
        assert in_flight == [0, 1], "with store_concurrency=1 no two videos were put at once"


# ------------------------------------------------------------------------------------------------ posters


def test_each_stored_poster_is_handed_over_with_the_bytes_stored(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    """What a Dagster step makes its thumbnails of, without reading the posters back from S3."""
    handed: dict[str, tuple[str, bytes]] = {}
    lock = threading.Lock()

    def on_poster(prompt: VideoPrompt, uri: str, image: bytes) -> None:
        with lock:
            handed[prompt.id] = (uri, image)

    prompts = [
        VideoPrompt(id=f"p{i}", prompt=f"A poster {uuid.uuid4().hex}", template_id=TEXT_TEMPLATE)
        for i in range(3)
    ]
    entries, _ = run_collecting(producer_for(simulator, s3_client, bucket, on_poster=on_poster), prompts)
    assert sorted(handed) == ["p0", "p1", "p2"]
    for (_, prompt_id), entry in entries.items():
        uri, image = handed[prompt_id]
        assert uri == entry.poster_uri
        key = uri.removeprefix(f"s3://{bucket}/")
        assert s3_client.get_object(Bucket=bucket, Key=key)["Body"].read() == image
        assert image.startswith(b"\x89PNG")
    # A video already stored is reused: nothing is stored, so nothing is handed over.
    handed.clear()
    again, _ = run_collecting(producer_for(simulator, s3_client, bucket, on_poster=on_poster), prompts)
    assert {e.status for e in again.values()} == {"reused"} and handed == {}


def test_a_failing_poster_handler_costs_no_video(simulator: Any, s3_client: Any, bucket: str) -> None:
    def on_poster(prompt: VideoPrompt, uri: str, image: bytes) -> None:
        raise RuntimeError("the thumbnails are broken")

    prompts = [VideoPrompt(id="a", prompt=f"A heron {uuid.uuid4().hex}", template_id=TEXT_TEMPLATE)]
    entries, _ = run_collecting(producer_for(simulator, s3_client, bucket, on_poster=on_poster), prompts)
    [entry] = entries.values()
    assert entry.status == "generated" and entry.poster_uri and entry.s3_uri
    assert simulator.counters()["creates"] == 1


def test_the_runs_creates_on_one_account_read_its_list_once(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    """Each create reads its account's GET videos/ head first (the baseline a failed create is reconciled
    against); the clients of one run lend it to each other, so a run does not pay a list request per video."""
    lists: list[str | None] = []
    lock = threading.Lock()

    class CountingClient(MiniMaxClient):
        def list_videos(self, account: str | None = None, limit: int = 30, last_video_id: str | None = None):
            with lock:
                lists.append(account)
            return super().list_videos(account, limit, last_video_id)

    account = next(iter(simulator.config.accounts))
    producer = producer_for(simulator, s3_client, bucket, accounts={account: 2})
    producer.client_factory = lambda: CountingClient(
        simulator.token, base_url=simulator.base_url, poll_interval=0.1, read_timeout=5.0
    )
    prompts = [
        VideoPrompt(id=f"p{i}", prompt=f"A list {uuid.uuid4().hex}", template_id=TEXT_TEMPLATE)
        for i in range(6)
    ]
    entries, _ = run_collecting(producer, prompts)
    assert {e.status for e in entries.values()} == {"generated"} and simulator.counters()["creates"] == 6
    assert 1 <= len(lists) < 6 and set(lists) == {account}, lists


# ------------------------------------------------------------------------------------------------ a hostile stream


def test_an_oversized_stream_costs_no_other_video_and_no_second_create(
    simulator: Any, s3_client: Any, bucket: str
) -> None:
    # One create's stream sends a line over ReadLimits.max_sse_line_chars after the video id (recovered by
    # polling), another before it (reconciled: found on the account's list); the third stream is normal.
    prompts = [
        VideoPrompt(id="after", prompt="A crane in reeds [sim:oversized_after=1]", template_id=TEXT_TEMPLATE),
        VideoPrompt(
            id="before", prompt="A moth at a lamp [sim:oversized_after=0]", template_id=TEXT_TEMPLATE
        ),
        VideoPrompt(id="plain", prompt="A boat on a lake", template_id=TEXT_TEMPLATE),
    ]
    fast = {"reconcile": ReconcilePolicy(settle_seconds=0.05)}
    entries = producer_for(simulator, s3_client, bucket, client_options=fast).produce(prompts)
    assert [(e.id, e.status) for e in entries] == [
        ("after", "generated"),
        ("before", "generated"),
        ("plain", "generated"),
    ]
    assert simulator.counters()["creates"] == 3
