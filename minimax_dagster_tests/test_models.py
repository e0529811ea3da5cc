"""Models: request validation rules, the stream event model and its helpers, statuses, ids."""

import json

import pytest
from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from minimax_dagster import AgentCreateRequest, StreamEvent
from minimax_dagster.api.errors import (
    AccountOnHoldError,
    BadRequestError,
    CapacityError,
    MiniMaxError,
    NotFoundError,
    error_from_response,
)
from minimax_dagster.api.models import (
    ApiError,
    FileExtra,
    FileInfo,
    SchedulerAvailable,
    TemplateDetail,
    TemplateList,
    VideoPage,
    VideoStatus,
    VideoStatusCode,
    parse_composite_id,
)
from minimax_dagster_tests.seed_stream import SEED_EVENTS


def _fields(exc: ValidationError) -> set[str]:
    return {".".join(str(p) for p in e["loc"]) for e in exc.errors()}


def test_both_spellings_accepted_and_wire_uses_api_names():
    a = AgentCreateRequest(templateId="1", fileID="f", ossPath="o", replyUrl="https://x/cb", maxJobs=2)
    b = AgentCreateRequest(template_id="1", file_id="f", oss_path="o", reply_url="https://x/cb", max_jobs=2)
    assert a == b
    assert a.to_payload() == {
        "templateId": "1",
        "fileID": "f",
        "ossPath": "o",
        "replyUrl": "https://x/cb",
        "maxJobs": 2,
    }


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({}, "templateId", "required"),
        ({"template_id": ""}, "templateId", "at least 1"),
        ({"template_id": "1", "file_id": "f"}, "", "ossPath is required with fileID"),
        ({"template_id": "1", "oss_path": "o"}, "", "ossPath cannot be given without fileID"),
        ({"template_id": "1", "reply_url": "https://x/" + "a" * 1100}, "replyUrl", "1024"),
        ({"template_id": "1", "reply_ref": "r" * 1025}, "replyRef", "1024"),
        ({"template_id": "1", "reply_url": "ftp://x/cb"}, "replyUrl", "http"),
        ({"template_id": "1", "reply_url": "not a url"}, "replyUrl", "http"),
        ({"template_id": "1", "max_jobs": 0}, "maxJobs", "greater than or equal to 1"),
        ({"template_id": "1", "max_jobs": 11}, "maxJobs", "less than or equal to 10"),
        ({"template_id": "1", "prompt": "p" * 2001}, "prompt", "2000"),
        ({"template_id": "1", "prompt": ""}, "prompt", "empty"),
        ({"template_id": "1", "promt": "typo"}, "promt", "Extra inputs"),
    ],
)
def test_each_request_rule_names_the_field(kwargs, field, words):
    with pytest.raises(ValidationError) as info:
        AgentCreateRequest(**kwargs)
    if field:
        # The error is located under the spelling the caller used (the API's name or the Python one).
        assert _fields(info.value) & {field, to_snake(field)}
    assert words in str(info.value)


def test_limits_are_inclusive():
    req = AgentCreateRequest(
        template_id=393769180141805569,
        prompt="p" * 2000,
        reply_ref="r" * 1024,
        reply_url="https://x/" + "a" * 1014,
        max_jobs=10,
    )
    assert req.template_id == "393769180141805569" and len(req.reply_url) == 1024


def test_seed_events_parse_and_helpers():
    events = [StreamEvent.model_validate_json(s) for s in SEED_EVENTS]
    assert events[0].video_id == "user:1234-minimax:1234567-video:7654321"
    assert events[0].project_id == "\u2026" and events[0].message.msg_content == "Futuristic sports car"
    assert events[2].is_heartbeat and events[2].progress_text is None
    assert [e.progress_text for e in events[3:9]] == [
        "Generating image...",
        "image: processing",
        "image: car.png ready",
        "Generating video...",
        "video: processing",
        "video: final_video.mp4 ready",
    ]
    assert events[5].images[0].file_name == "car.png" and events[5].final_video is None
    assert events[8].final_video.url.endswith("final.mp4") and events[8].images == []
    assert events[9].is_finished and [t.name for t in events[9].rec_template_list] == [
        "Vlog Interview",
        "Transformers",
    ]
    assert events[10].status == "finished" and events[10].code == 200


def test_full_model_fields_and_unknown_fields_kept():
    raw = {
        "status": "progress",
        "type": 2,
        "sectionID": "s1",
        "needUserInput": False,
        "errCode": 0,
        "errMsg": "",
        "newTopLevel": 1,
        "message": {
            "msgId": "m1",
            "parentMsgId": "m0",
            "msgType": 2,
            "isQuota": True,
            "timestamp": 5,
            "files": [{"fileName": "a.png", "fileUrl": "https://c/a.png", "posterUrl": "", "type": "image"}],
            "toolCall": {"toolName": "render", "toolCallStatus": 1, "toolCallArgs": "{}"},
            "attachmentInfo": {
                "attachmentInfoID": "ai",
                "type": 3,
                "createTime": 9,
                "attachments": [
                    {
                        "attachmentID": "at",
                        "status": 3,
                        "file": {
                            "fileName": "v.mp4",
                            "fileUrl": "https://c/v.mp4",
                            "posterUrl": "https://c/v.png",
                            "type": "video",
                            "extra": {
                                "width": "1280",
                                "height": "720",
                                "duration": "6",
                                "fps": "24",
                                "no_watermark_url": "https://c/n.mp4",
                                "frames": '["https://c/f1.png"]',
                                "brandNew": "kept",
                            },
                        },
                    }
                ],
            },
        },
    }
    event = StreamEvent.model_validate(raw)
    assert event.section_id == "s1" and event.model_extra == {"newTopLevel": 1}
    assert event.message.tool_call.tool_name == "render" and event.message.files[0].file_name == "a.png"
    video = event.final_video
    assert (video.width, video.height, video.duration_s, video.fps) == (1280, 720, 6.0, 24.0)
    assert video.best_url == "https://c/n.mp4" and video.poster_url == "https://c/v.png"
    extra = event.message.attachment_info.attachments[0].file.extra
    assert extra.frame_urls == ["https://c/f1.png"] and extra.model_extra == {"brandNew": "kept"}
    assert (
        json.loads(event.model_dump_json(by_alias=True))["message"]["attachmentInfo"]["attachmentInfoID"]
        == "ai"
    )


def test_file_extra_numbers_accept_numbers_and_garbage():
    assert FileExtra.model_validate({"width": 1280}).width_px == 1280
    assert FileExtra(width="wide").width_px is None and FileExtra(frames="{").frame_urls == []


def test_error_event():
    event = StreamEvent.model_validate({"status": "finished", "errCode": 1026, "errMsg": "sensitive"})
    assert event.is_error


@pytest.mark.parametrize(
    ("code", "final", "failed", "moderated"),
    [
        (0, False, False, False),
        (1, False, False, False),
        (2, True, False, False),
        (3, True, True, False),
        (5, True, False, True),
        (7, True, False, True),
        (11, False, False, False),
        (12, False, False, False),
        (14, True, False, True),
    ],
)
def test_video_status_codes(code, final, failed, moderated):
    status = VideoStatus.model_validate({"status": code})
    assert (status.is_final, status.is_failed, status.is_moderated) == (final, failed, moderated)
    assert VideoStatusCode(code).label


def test_video_status_unknown_code_and_final_flag():
    assert VideoStatus(status=99).code is None and not VideoStatus(status=99).is_final
    assert VideoStatus(status=99, status_final=True).is_final


def test_templates_and_ids():
    page = TemplateList.model_validate(
        {"videoList": [{"id": "x", "videoAsset": {"agentTemplateID": "42", "title": "T", "tags": ["a"]}}]}
    )
    assert page.video_list[0].template_id == "42" and page.video_list[0].name == "T"
    assert page.video_list[0].video_asset.tags[0].tag_text == "a"  # a plain-string tag is read as its text
    detail = TemplateDetail.model_validate(
        {"needTextInput": True, "textRequired": True, "needImageInput": False}
    )
    assert detail.requires_prompt and detail.accepts_prompt and not detail.requires_image
    assert parse_composite_id("user:1-minimax:2-file:3") == {"user": "1", "minimax": "2", "file": "3"}
    assert ApiError.model_validate({"error": "x", "code": 429}).code == 429


def test_error_mapping_and_pickling():
    import pickle

    err = error_from_response(429, {"error": "busy"}, retry_after=3)
    assert isinstance(err, CapacityError) and err.retry_after == 3
    assert isinstance(error_from_response(596, {"error": "hold"}), AccountOnHoldError)
    copy = pickle.loads(pickle.dumps(NotFoundError("gone", status=404, video_id="v")))
    assert isinstance(copy, MiniMaxError) and copy.status == 404 and copy.video_id == "v"


# Documented example answers (the pages named in each test); each field's type as the page shows it.

TEMPLATE_ITEM = {  # get-minimax-videos-agent-templates
    "id": "1122334455667788",
    "createTime": 1702953600000,
    "videoAsset": {
        "id": "video_asset_id",
        "desc": "Template description",
        "coverURL": "https://example.com/cover.jpg",
        "videoURL": "https://example.com/video.mp4",
        "status": 2,
        "width": 1280,
        "height": 720,
        "duration": 10,
        "resolution": 1,
        "title": "Template Title",
        "agentTemplateID": "1122334455667788",
        "agentTemplateName": "Template Name",
        "downloadURL": "https://example.com/download.mp4",
        "hasVoice": True,
        "modelID": "model_123",
        "useOriginPrompt": False,
        "isBookmarked": False,
        "disableGenerateSimilar": False,
        "postStatus": 1,
        "userID": 123456,
        "createType": 1,
        "promptImgURL": "https://example.com/prompt.jpg",
        "aspectRatio": "16:9",
        "tags": [{"type": "style", "tagIcon": "https://example.com/icon.png", "tagText": "Cinematic"}],
        "humanCheckStatus": 1,
        "userIDStr": "123456",
    },
    "like": {"likes": 42, "likeStatus": 0},
    "author": {"userID": "user123", "name": "Author Name", "avatar": "https://example.com/avatar.jpg"},
    "cardType": 1,
    "tabID": "template",
}


def test_documented_template_item_parses_with_its_types():
    [item] = TemplateList.model_validate({"videoList": [TEMPLATE_ITEM]}).video_list
    asset = item.video_asset
    assert (item.template_id, item.name, item.tab_id, item.create_time) == (
        "1122334455667788",
        "Template Name",
        "template",
        1702953600000,
    )
    assert asset.id == "video_asset_id" != item.id
    assert (asset.resolution, asset.has_voice, asset.model_id, asset.user_id, asset.prompt_img_url) == (
        1,
        True,
        "model_123",
        123456,
        "https://example.com/prompt.jpg",
    )
    assert (asset.tags[0].type, asset.tags[0].tag_icon, asset.tags[0].tag_text) == (
        "style",
        "https://example.com/icon.png",
        "Cinematic",
    )
    assert (item.like.likes, item.like.like_status, item.author.name) == (42, 0, "Author Name")
    assert item.model_extra == {} and asset.model_extra == {}  # every documented field is modelled
    # Written back, every key has the documented spelling (ids become text, numbers stay numbers).
    wire = item.to_wire()
    assert set(wire) == set(TEMPLATE_ITEM) and set(wire["videoAsset"]) == set(TEMPLATE_ITEM["videoAsset"])


def test_documented_scheduler_answer_parses():  # get-minimax-scheduler-available
    answer = {
        "executing": [
            {
                "videoId": "user:user_id-minimax:account-video:id1",
                "started": "2024-09-25T01:55:16.128Z",
                "elapsed": "03:57",
                "replyUrl": "<optional callback URL>",
                "replyRef": "<optional reference>",
            },
            {"imageId": "user:user_id-minimax:account-image:inN", "started": "2024-09-25T01:58:18.555Z"},
        ],
        "available": [{"account": "<account_1>", "maxJobs": 5, "executing": 0, "available": 5}],
    }
    scheduler = SchedulerAvailable.model_validate(answer)
    video, image = scheduler.executing
    assert video.started.microsecond == 128000 and video.started.utcoffset().total_seconds() == 0
    assert (video.elapsed, video.elapsed_seconds, video.is_video, video.account) == (
        "03:57",
        237.0,
        True,
        "account",
    )
    assert not image.is_video and image.image_id.endswith("image:inN")
    assert scheduler.available[0].max_jobs == 5


def test_documented_video_list_parses():  # get-minimax-videos: a JSON array
    answer = [
        {
            "id": "video_id_#1",
            "desc": "",
            "status": 1,
            "statusLabel": "processing",
            "statusFinal": False,
            "message": "<Message>",
            "width": 0,
            "height": 0,
            "originFiles": [],
            "canAppeal": False,
            "canRetry": False,
            "videoId": "user:user_id-minimax:account-video:video_id_#1",
        },
        {
            "id": "video_id_#2",
            "desc": "<prompt>",
            "downloadURL": "<no watermark>",
            "videoURL": "<watermark>",
            "status": 2,
            "statusFinal": True,
            "originFiles": [
                {"id": "user:user_id-minimax:account-file:file_id", "url": "<file url>", "type": "png"}
            ],
            "videoId": "user:user_id-minimax:account-video:video_id_#2",
        },
    ]
    page = VideoPage.from_answer(answer)
    first, second = page.videos
    assert (first.is_final, second.is_completed, second.desc, page.has_next) == (
        False,
        True,
        "<prompt>",
        None,
    )
    assert second.origin_files[0].type == "png" and second.origin_file_ids == [
        "user:user_id-minimax:account-file:file_id"
    ]
    assert page.next_key == "user:user_id-minimax:account-video:video_id_#2" and page.more_after(limit=2)
    assert not page.more_after(limit=30)
    with pytest.raises(ValueError, match="not a list"):
        VideoPage.from_answer("oops")


def test_documented_file_item_parses():  # get-minimax-files
    info = FileInfo.model_validate(
        {
            "file_id": "user:1-minimax:2-file:3",
            "file_name": "a.jpg",
            "file_type": "jpeg",
            "cdn_url": "https://cdn/a.jpg",
            "oss_path": "moss/prod/a.jpg",
            "file_scene": 1,
            "file_status": 1,
        }
    )
    assert (info.file_type, info.oss_path, info.file_status, info.account) == (
        "jpeg",
        "moss/prod/a.jpg",
        1,
        "2",
    )
    assert info.oss_path != info.cdn_url and info.to_wire()["file_id"] == "user:1-minimax:2-file:3"


def test_documented_error_bodies():
    # agent-create's 400 has no code; GET videos/{id}'s 404 and 401 have one.
    bad = error_from_response(400, {"error": "templateId is required"})
    assert isinstance(bad, BadRequestError) and ApiError.model_validate(bad.body).code is None
    gone = error_from_response(404, {"error": "Not found.", "code": 404})
    assert isinstance(gone, NotFoundError) and ApiError.model_validate(gone.body).code == 404
