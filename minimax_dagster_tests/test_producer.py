"""VideoProducer against a scripted API over real sockets and moto's S3 server."""

from minimax_dagster import MiniMaxClient
from minimax_dagster.production import ProducerSettings, VideoProducer
from minimax_dagster.production.prompts import VideoPrompt
from minimax_dagster.simulator.media import VideoSpec, render_video
from minimax_dagster.storage import DownloadPolicy, VideoKeys, get_json, video_key
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
