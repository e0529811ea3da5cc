"""minimax_dagster: useapi.net MiniMax video generation as a first-class Dagster asset.

Every public name of both layers is importable from here. The API layer (client, models, errors) works on its
own: the Dagster layer's names are loaded on first use, so ``from minimax_dagster import MiniMaxClient`` does not
import dagster.

>>> from minimax_dagster import AgentCreateRequest
>>> AgentCreateRequest(template_id="393769180141805569", prompt="A fox runs").template_id
'393769180141805569'
>>> from minimax_dagster import MiniMaxResource
>>> MiniMaxResource.__name__
'MiniMaxResource'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from minimax_dagster.api import (
    AgentCreateRequest,
    FinalVideo,
    GenerationResult,
    MiniMaxClient,
    MiniMaxError,
    StreamEvent,
    VideoStatus,
)

if TYPE_CHECKING:
    from minimax_dagster.assets.checks import build_video_checks
    from minimax_dagster.assets.factory import build_minimax_video_asset
    from minimax_dagster.components.video.component import MiniMaxVideoComponent
    from minimax_dagster.resources.io_manager import PartitionedValues, S3JsonIOManager
    from minimax_dagster.resources.minimax import AccountConfig, MiniMaxResource, MiniMaxS3Resource

__version__ = "0.1.0"

# The Dagster layer, imported lazily (PEP 562) so the API layer stays free of dagster.
_DAGSTER_LAYER = {
    "AccountConfig": "minimax_dagster.resources.minimax",
    "MiniMaxResource": "minimax_dagster.resources.minimax",
    "MiniMaxS3Resource": "minimax_dagster.resources.minimax",
    "build_minimax_video_asset": "minimax_dagster.assets.factory",
    "build_video_checks": "minimax_dagster.assets.checks",
    "MiniMaxVideoComponent": "minimax_dagster.components.video.component",
    "PartitionedValues": "minimax_dagster.resources.io_manager",
    "S3JsonIOManager": "minimax_dagster.resources.io_manager",
}


def __getattr__(name: str) -> Any:
    module = _DAGSTER_LAYER.get(name)
    if module is None:
        raise AttributeError(f"module 'minimax_dagster' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    # dg finds components by dir() of the registry module (the `dagster_dg_cli.registry_modules` entry point).
    return sorted({*globals(), *_DAGSTER_LAYER})


__all__ = [
    "AccountConfig",
    "AgentCreateRequest",
    "FinalVideo",
    "GenerationResult",
    "MiniMaxClient",
    "MiniMaxError",
    "MiniMaxResource",
    "MiniMaxS3Resource",
    "MiniMaxVideoComponent",
    "PartitionedValues",
    "S3JsonIOManager",
    "StreamEvent",
    "VideoStatus",
    "__version__",
    "build_minimax_video_asset",
    "build_video_checks",
]
