"""Models: request validation rules, the stream event model and its helpers, statuses, ids."""

import json

import pytest
from pydantic import ValidationError
from pydantic.alias_generators import to_snake

from minimax_dagster import AgentCreateRequest, StreamEvent
from minimax_dagster.api.errors import (
    AccountOnHoldError,
    CapacityError,
    MiniMaxError,
    NotFoundError,
    error_from_response,
)
from minimax_dagster.api.models import (
    ApiError,
    FileExtra,
    TemplateDetail,
    TemplateList,
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
