"""The ``MiniMaxVideoComponent`` (laid out as dagster-sling lays out its component): the component, its
attributes, and its scaffolder."""

from minimax_dagster.components.video.component import MiniMaxVideoComponent

__all__ = ["MiniMaxVideoComponent"]
