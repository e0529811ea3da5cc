"""The API layer: typed models, the event-stream decoder, errors and the HTTP client. It never imports dagster.

=================  ====================================================================================
``models/``        the API's bodies, one module per subject (requests, events, videos, templates, ...)
``sse``            the exact event-stream decoder
``errors``         the exception hierarchy (``retryable``; never holds the token)
``retry``          what the transport may send again on its own (never a create answered 502/503/504)
``transport``      the pooled session, the token header, errors mapped
``endpoints``      one method per endpoint
``create_stream``  reading the create's stream; the events made up when a video is recovered
``reconcile``      looking for the job a failed create may have made, before any second create
``client``         ``MiniMaxClient``: create, follow, recover, reattach
=================  ====================================================================================

>>> from minimax_dagster.api import AgentCreateRequest
>>> AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs").prompt
'A fox runs'
"""

from minimax_dagster.api.client import GenerationResult, MiniMaxClient
from minimax_dagster.api.errors import MiniMaxError
from minimax_dagster.api.limits import ReadLimits
from minimax_dagster.api.models import AgentCreateRequest, FinalVideo, StreamEvent, VideoStatus
from minimax_dagster.api.reconcile import ReconcilePolicy

__all__ = [
    "AgentCreateRequest",
    "FinalVideo",
    "GenerationResult",
    "MiniMaxClient",
    "MiniMaxError",
    "ReadLimits",
    "ReconcilePolicy",
    "StreamEvent",
    "VideoStatus",
]
