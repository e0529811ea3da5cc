"""Each asset option is described once (``AssetOptions``): the factory takes it, the YAML component accepts it
with its description, the docs' table shows it, and a value set either way reaches the run's options."""

from __future__ import annotations

import dataclasses
import inspect

import dagster as dg
import pytest

from minimax_dagster import MiniMaxVideoComponent
from minimax_dagster.assets.factory import build_minimax_video_asset
from minimax_dagster.assets.options import OPTION_NAMES, AssetOptions, option_descriptions
from tools.mkdocs_hooks import OPTIONS_MARKER, on_page_markdown

#: A value other than the default for each option (a new option gets one here).
SET_VALUES = {
    "bucket": "other-bucket",
    "template_id": "393769180141805569",
    "prefix": "media/videos",
    "description": "Daily clips for the landing page.",
    "pool": "minimax_eu",
    "allow_partial": True,
    "regenerate_failed": True,
    "check_templates": False,
    "max_new_videos": 7,
    "log_heartbeats": True,
    "summary_interval": 5.0,
    "video_link_base_url": "https://cdn.example.com/",
    "presign_links_seconds": 3600,
}


def test_every_option_has_a_test_value_a_description_and_a_row_in_the_docs() -> None:
    assert set(SET_VALUES) == set(OPTION_NAMES)
    table = on_page_markdown(f"before\n{OPTIONS_MARKER}\nafter", None, None, None)  # type: ignore[arg-type]
    for name, _default, description in option_descriptions():
        assert len(description) > 10, name
        assert f"| `{name}` |" in table
    assert OPTIONS_MARKER not in table


def test_component_inherits_every_option_with_its_description() -> None:
    schema = MiniMaxVideoComponent.get_model_cls().model_json_schema()["properties"]
    for name, _default, description in option_descriptions():
        assert schema[name]["description"] == description


def _run_options(asset: dg.AssetsDefinition) -> AssetOptions:
    """The options a built asset's run starts from (the closure the factory made)."""
    closure = inspect.getclosurevars(asset.op.compute_fn.decorated_fn).nonlocals  # type: ignore[attr-defined]
    return closure["run_options"].asset_options()


@pytest.mark.parametrize("name", OPTION_NAMES)
def test_an_option_set_in_the_factory_or_in_yaml_reaches_the_run(name: str) -> None:
    base = {"bucket": "b", name: SET_VALUES[name]}
    by_factory = _run_options(build_minimax_video_asset("videos", prompts="prompts", **base))
    component = MiniMaxVideoComponent.resolve_from_dict({"asset_key": "videos", "prompts": "prompts", **base})
    by_yaml = _run_options(component.build_video_asset())
    expected = AssetOptions(**base)
    assert getattr(expected, name) != getattr(AssetOptions(bucket="b"), name) or name == "bucket"
    assert by_factory == expected == by_yaml


def test_the_description_option_is_the_assets_description() -> None:
    written = "Daily clips for the landing page."
    by_factory = build_minimax_video_asset("videos", prompts="prompts", bucket="b", description=written)
    component = MiniMaxVideoComponent.resolve_from_dict(
        {"asset_key": "videos", "prompts": "prompts", "bucket": "b", "description": written}
    )
    for asset in (by_factory, component.build_video_asset()):
        assert asset.specs_by_key[asset.key].description == written
    default = build_minimax_video_asset("videos", prompts="prompts", bucket="b")
    assert (
        default.specs_by_key[default.key].description == "Videos made by MiniMax from prompts, stored in S3."
    )


def test_the_factory_takes_options_as_an_object_and_keywords_override_them() -> None:
    options = AssetOptions(bucket="b", max_new_videos=3, allow_partial=True)
    asset = build_minimax_video_asset("videos", prompts="prompts", options=options, max_new_videos=5)
    assert _run_options(asset) == dataclasses.replace(options, max_new_videos=5)
    assert asset.op.pools == {"minimax"}  # type: ignore[attr-defined]


def test_an_unknown_option_is_refused_naming_the_options() -> None:
    with pytest.raises(TypeError, match="unknown argument\\(s\\) buket; the options are bucket, template_id"):
        build_minimax_video_asset("videos", prompts="prompts", bucket="b", buket="c")
