"""Content keys and object keys (minimax_dagster.storage.keys): deterministic, pinned, never steered by input."""

from __future__ import annotations

import hashlib

import pytest

from minimax_dagster.storage import VideoKeys, s3_uri, safe_key_part, video_key


def test_video_key_is_deterministic_and_distinct() -> None:
    k = video_key("392747428568649728", "a cat surfing", None)
    assert k == video_key("392747428568649728", "a cat surfing", None)
    assert k.startswith("v1-") and len(k) == 35
    int(k[3:], 16)
    others = {
        video_key("392747428568649728", "a cat surfing ", None),
        video_key("392747428568649728", None, None),
        video_key("392747428568649728", "", None),
        video_key("392747428568649728", "a cat surfing", "file-1"),
        video_key("393769180141805569", "a cat surfing", None),
        # field boundaries are part of the hash: moving text between fields changes the key
        video_key("392747428568649728", None, "a cat surfing"),
    }
    assert k not in others and len(others) == 6


def test_video_key_pinned() -> None:
    # The key scheme must never change silently: stored videos are found by it.
    assert (
        video_key("t", "p", None)
        == "v1-"
        + hashlib.sha256(b'{"file_ref":null,"prompt":"p","template_id":"t","v":"v1"}').hexdigest()[:32]
    )


@pytest.mark.parametrize(
    "prompt",
    ["../../../etc/passwd", "/absolute/path", "a\x00b\r\nc", "x" * 100_000, "🎬 ñ \u202e", "a/b/../../.."],
)
def test_prompts_never_reach_the_key_path(prompt: str) -> None:
    keys = VideoKeys("minimax", video_key("../../t", prompt, "../f"))
    for path in (keys.video, keys.poster, keys.sidecar, keys.job):
        assert path.startswith("minimax/")
        assert ".." not in path and "\\" not in path and len(path) < 100
        assert path.split("/")[-1].startswith(keys.key)


def test_video_key_input_types() -> None:
    with pytest.raises(ValueError, match="template_id"):
        video_key("", "p", None)
    with pytest.raises(ValueError, match="prompt"):
        video_key("t", 5, None)  # type: ignore[arg-type]


def test_video_keys_paths() -> None:
    keys = VideoKeys("/".join(["minimax", "prod"]) + "//", "v1-abc")
    assert keys.prefix == "minimax/prod"
    assert keys.video == "minimax/prod/videos/v1-abc.mp4"
    assert keys.poster == "minimax/prod/videos/v1-abc.png"
    assert keys.sidecar == "minimax/prod/videos/v1-abc.json"
    assert keys.job == "minimax/prod/_jobs/v1-abc.json"
    assert VideoKeys("", "v1-abc").video == "videos/v1-abc.mp4"
    assert VideoKeys("date=2024-01-01", "v1-abc").video.startswith("date=2024-01-01/")


@pytest.mark.parametrize(
    "prefix",
    [
        "../x",
        "a/../b",
        "a/./b",
        "..",
        "/abs",
        "/",
        "//",
        "a//b",
        "a\\b",
        "C:/x",
        "s3://bucket/x",
        "a\x00b",
        "a\nb",
        "a\u200bb",
        "sp ace",
        "x" * 600,
    ],
)
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix") as info:
        VideoKeys(prefix, "v1-abc")
    assert "such as" in str(info.value)  # says how to fix it


@pytest.mark.parametrize("key", ["../x", ".hidden", "a/b", "", "a..b", "x" * 201, "a b"])
def test_bad_keys(key: str) -> None:
    with pytest.raises(ValueError, match="key"):
        VideoKeys("p", key)


def test_video_keys_frozen() -> None:
    keys = VideoKeys("p", "v1-abc")
    with pytest.raises(AttributeError):
        keys.prefix = "q"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Run for Life!", "Run-for-Life"),
        ("../../etc/passwd", "etc-passwd"),
        ("..", None),
        ("Café", "Cafe"),
        ("a" * 100, "a" * 64),
        ("", None),
    ],
)
def test_safe_key_part(text: str, expected: str | None) -> None:
    part = safe_key_part(text)
    if expected is not None:
        assert part == expected
    else:
        assert part.startswith("h-")
    VideoKeys(part, "v1-x")  # always usable as a prefix segment
    VideoKeys("p", part)  # and as a key


def test_s3_uri() -> None:
    assert s3_uri("b", "p/videos/v1-x.mp4") == "s3://b/p/videos/v1-x.mp4"
