"""The API layer: typed models, the event-stream decoder, errors and the HTTP client. It never imports dagster.

>>> from minimax_dagster.api import AgentCreateRequest
>>> AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs").prompt
'A fox runs'
"""

from minimax_dagster.api.client import GenerationResult, MiniMaxClient
from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.api.models import AgentCreateRequest, FinalVideo, StreamEvent, VideoStatus

__all__ = [
    "AgentCreateRequest",
    "FinalVideo",
    "GenerationResult",
    "MiniMaxClient",
    "MiniMaxError",
    "StreamEvent",
    "VideoStatus",
]
