"""The documented MiniMax agent-create event sequence, as a reusable SSE test fixture.

Each entry of ``SEED_EVENTS`` is the JSON payload of one event; on the wire each is one
``data:`` line followed by a blank line. ``seed_stream_bytes`` renders the stream.

>>> seed_stream_bytes("\\r\\n").startswith(b'data: {"status":"created"')
True
"""

from __future__ import annotations

__all__ = ["SEED_EVENTS", "seed_stream_bytes"]

SEED_EVENTS: list[str] = [
    '{"status":"created","videoId":"user:1234-minimax:1234567-video:7654321","projectID":"\u2026","chatID":"\u2026","message":{"msgContent":"Futuristic sports car","msgType":1},"code":200,"timestamp":1755800001000}',
    '{"status":"connected","videoId":"user:1234-minimax:1234567-video:7654321","projectID":"\u2026","chatID":"\u2026","code":200,"timestamp":1755800002000}',
    '{"status":"heartbeat","timestamp":1755800012000}',
    '{"status":"progress","type":1,"message":{"msgContent":"Generating image...","msgType":2},"timestamp":1755800015000}',
    '{"status":"progress","type":2,"message":{"attachmentInfo":{"attachments":[{"file":{"fileName":"processing"},"status":2}]}},"timestamp":1755800017000}',
    '{"status":"progress","type":2,"message":{"attachmentInfo":{"attachments":[{"file":{"fileName":"car.png","fileUrl":"https://cdn.hailuoai.video/moss/prod/.../car.png"},"status":3}]}},"timestamp":1755800025000}',
    '{"status":"progress","type":1,"message":{"msgContent":"Generating video...","msgType":2},"timestamp":1755800026000}',
    '{"status":"progress","type":2,"message":{"attachmentInfo":{"type":3,"attachments":[{"file":{"fileName":"processing"},"status":2}]}},"timestamp":1755800028000}',
    '{"status":"progress","type":2,"message":{"attachmentInfo":{"type":3,"attachments":[{"file":{"fileName":"final_video.mp4","fileUrl":"https://cdn.hailuoai.video/moss/prod/.../final.mp4"},"status":3}]}},"timestamp":1755800055000}',
    '{"status":"progress","type":3,"isFinished":true,"recTemplateList":[{"id":"template_vlog_1","name":"Vlog Interview"},{"id":"template_tf_2","name":"Transformers"}],"timestamp":1755800056000}',
    '{"status":"finished","videoId":"user:1234-minimax:1234567-video:7654321","projectID":"\u2026","chatID":"\u2026","message":{"msgContent":"Futuristic sports car","msgType":1},"code":200,"timestamp":1755800057000}',
]


def seed_stream_bytes(line_end: str = "\n") -> bytes:
    """The seed stream as UTF-8 bytes, every line ended with ``line_end``.

    >>> seed_stream_bytes().count(b"\\n\\n")
    11
    """
    return "".join(f"data: {payload}{line_end}{line_end}" for payload in SEED_EVENTS).encode("utf-8")
