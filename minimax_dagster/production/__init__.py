"""Production: prompt rows, the manifest, and the producer that turns prompts into videos in S3.

It composes the API layer and storage and never imports dagster, so it runs in any Python process.

>>> from minimax_dagster.production import VideoPrompt
>>> VideoPrompt(id="fox", prompt="A fox runs", template_id="393769180141805569").id
'fox'
"""

from minimax_dagster.production.manifest import ManifestEntry, VideoManifest
from minimax_dagster.production.notes import Note
from minimax_dagster.production.preview import PlannedOutcome, ProductionPlan
from minimax_dagster.production.producer import VideoProducer
from minimax_dagster.production.producer_settings import ProducerSettings
from minimax_dagster.production.prompts import PromptValidationError, VideoPrompt, validate_prompt_rows

__all__ = [
    "ManifestEntry",
    "Note",
    "PlannedOutcome",
    "ProducerSettings",
    "ProductionPlan",
    "PromptValidationError",
    "VideoManifest",
    "VideoProducer",
    "VideoPrompt",
    "validate_prompt_rows",
]
