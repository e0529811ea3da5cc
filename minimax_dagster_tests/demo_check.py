"""What the demo command must leave behind, checked by its end-to-end test and by ``.ci/run`` after ``make demo``.

``python -m minimax_dagster_tests.demo_check demo_output demo.log`` checks a folder and the command's console:
every video is an MP4 a real H.264 decoder (PyAV, the ``test`` extra) plays, each has its PNG poster, the
console names each video's S3 URI once, the re-run created nothing, and no Dagster banner or debug line reached
the console. It exits non-zero naming the first thing missing.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from minimax_dagster.demo.services import DEMO_DATASETS

#: Three videos of the day plus one per row of every dataset.
EXPECTED_VIDEOS = 3 + sum(len(rows) for rows in DEMO_DATASETS.values())
#: What Dagster prints when the demo's instance or loggers are not set up quietly.
NOISE = (
    "Telemetry:",
    "Welcome to Dagster",
    " - DEBUG - ",
    "STEP_WORKER_STARTED",
    "No dagster instance configuration",
)


def check_demo_output(folder: Path, console: str) -> int:
    """Raise ``AssertionError`` naming what is wrong with the demo's ``folder`` and ``console``; return the
    number of videos checked."""
    import av

    videos = sorted(folder.rglob("*.mp4"))
    assert len(videos) == EXPECTED_VIDEOS, f"{len(videos)} MP4s in {folder}, expected {EXPECTED_VIDEOS}"
    for video in videos:
        with av.open(str(video)) as container:
            frames = sum(1 for _ in container.decode(video=0))
        assert frames > 0, f"{video}: no frame decodes"
        poster = video.with_suffix(".png")
        assert poster.is_file() and poster.read_bytes().startswith(b"\x89PNG"), (
            f"{poster}: missing or not a PNG"
        )
    uris = re.findall(r"s3://minimax-demo/minimax/videos/\S+\.mp4", console)
    assert len(set(uris)) == len(uris) == EXPECTED_VIDEOS, f"{len(uris)} S3 URIs on the console"
    assert f"creates before the re-run: {EXPECTED_VIDEOS}, after: {EXPECTED_VIDEOS}" in console, (
        "the re-run created videos (or did not report its creates)"
    )
    noisy = [line for line in console.splitlines() if any(n in line for n in NOISE)]
    assert not noisy, "Dagster noise on the demo's console:\n" + "\n".join(noisy[:5])
    return len(videos)


def main(argv: list[str]) -> int:
    folder, log = Path(argv[0]), Path(argv[1])
    try:
        count = check_demo_output(folder, log.read_text())
    except AssertionError as error:
        print(f"demo check failed: {error}", file=sys.stderr)
        return 1
    print(
        f"demo check: {count} playable MP4s with PNG posters in {folder.resolve()}, the re-run created nothing"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
