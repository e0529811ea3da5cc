"""minimax_dagster: useapi.net MiniMax video generation as a first-class Dagster asset.

The API layer (models, event-stream reader, client) works on its own, without Dagster:

>>> from minimax_dagster import AgentCreateRequest
>>> AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs").template_id
'393769180141805569'
"""

from minimax_dagster.client import GenerationResult, MiniMaxClient
from minimax_dagster.errors import MiniMaxError
from minimax_dagster.models import AgentCreateRequest, FinalVideo, StreamEvent, VideoStatus

__version__ = "0.1.0"

__all__ = [
    "AgentCreateRequest",
    "FinalVideo",
    "GenerationResult",
    "MiniMaxClient",
    "MiniMaxError",
    "StreamEvent",
    "VideoStatus",
    "__version__",
]
