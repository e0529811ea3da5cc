"""What ``dg scaffold defs minimax_dagster.MiniMaxVideoComponent <name>`` writes: a commented ``defs.yaml`` that
``dg check defs`` accepts as it is, its values taken from the environment (``MINIMAX_BUCKET``, ``USEAPI_TOKEN``).

Options (``--json-params`` or one ``--<option>`` each): ``prompts`` (use an upstream asset of yours instead of the
example rows), ``template_id``, ``bucket``.

>>> print(defs_yaml("minimax_dagster.MiniMaxVideoComponent", "videos", MiniMaxVideoScaffoldParams()).splitlines()[0])
type: minimax_dagster.MiniMaxVideoComponent
"""

import json

import dagster as dg
from dagster.components.component_scaffolding import scaffold_component
from pydantic import BaseModel, Field

#: MiniMax's "Run for Life" (image + text; from MiniMax's own template table, second-hand). Pick yours from
#: GET videos/agent-templates.
EXAMPLE_TEMPLATE_ID = "393769180141805569"


class MiniMaxVideoScaffoldParams(BaseModel):
    """Options of the scaffold (``dg scaffold defs ... --json-params '{"template_id": "..."}'``).

    >>> MiniMaxVideoScaffoldParams().bucket
    '{{ env.MINIMAX_BUCKET }}'
    """

    prompts: str | None = Field(
        default=None, description="Key of an upstream asset of prompt rows (default: example rows in YAML)."
    )
    template_id: str = Field(default=EXAMPLE_TEMPLATE_ID, description="Template of the rows.")
    bucket: str = Field(
        default="{{ env.MINIMAX_BUCKET }}", description="S3 bucket (default: from MINIMAX_BUCKET)."
    )


def _quoted(value: str) -> str:
    return json.dumps(value)


def defs_yaml(type_name: str, asset_name: str, params: MiniMaxVideoScaffoldParams) -> str:
    """The scaffolded ``defs.yaml`` text.

    >>> import yaml
    >>> yaml.safe_load(defs_yaml("T", "v", MiniMaxVideoScaffoldParams(prompts="content/prompts")))["attributes"]["prompts"]
    'content/prompts'

    """
    if params.prompts:
        prompts = (
            "  # The upstream asset whose value is the prompt rows (strings, or id / prompt / template_id / image).\n"
            f"  prompts: {_quoted(params.prompts)}\n"
        )
    else:
        prompts = (
            f"  # Rows of the prompts asset this component defines ({asset_name}_prompts). To use an asset of\n"
            "  # yours instead, replace prompt_rows with   prompts: <its asset key>\n"
            "  # A row may add image: (local path, https URL or fileID) when its template takes one.\n"
            "  prompt_rows:\n"
            "    - id: fox-in-snow\n"
            '      prompt: "A red fox runs through fresh snow at dawn"\n'
            "    - id: paper-boat\n"
            '      prompt: "A paper boat drifts down a rainy street"\n'
        )
    return (
        f"type: {type_name}\n"
        "\n"
        "attributes:\n"
        "  # The video asset. Its value is the manifest of its videos, stored as JSON in the bucket.\n"
        f"  asset_key: {_quoted(asset_name)}\n"
        f"{prompts}"
        "  # The template of rows that name none: list yours with GET videos/agent-templates.\n"
        f"  template_id: {_quoted(params.template_id)}\n"
        "  # Videos, posters and manifests go to s3://<bucket>/<prefix>/...\n"
        f"  bucket: {_quoted(params.bucket)}\n"
        "  prefix: minimax\n"
        "  checks:\n"
        "    enabled: true\n"
        "    blocking: false\n"
        "  resources:\n"
        "    minimax:\n"
        "      # A secret: always an environment reference, resolved when a step runs.\n"
        '      api_token: "{{ env.USEAPI_TOKEN }}"\n'
        "    # S3 settings (region_name, endpoint_url, profile_name, ...); {} uses boto3's usual credentials.\n"
        "    s3: {}\n"
    )


class MiniMaxVideoScaffolder(dg.Scaffolder[MiniMaxVideoScaffoldParams]):
    """Writes ``defs.yaml`` (or, with ``--format python``, dagster's ``component.py`` stub).

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "videos"
    >>> folder.mkdir()
    >>> MiniMaxVideoScaffolder().scaffold(dg.ScaffoldRequest(
    ...     type_name="minimax_dagster.MiniMaxVideoComponent", target_path=folder, scaffold_format="yaml",
    ...     project_root=None, params=MiniMaxVideoScaffoldParams()))
    >>> import yaml
    >>> yaml.safe_load((folder / "defs.yaml").read_text())["attributes"]["asset_key"]
    'videos'

    """

    @classmethod
    def get_scaffold_params(cls) -> type[MiniMaxVideoScaffoldParams]:
        """The options ``dg scaffold defs`` accepts.

        >>> MiniMaxVideoScaffolder.get_scaffold_params().__name__
        'MiniMaxVideoScaffoldParams'
        """
        return MiniMaxVideoScaffoldParams

    def scaffold(self, request: dg.ScaffoldRequest[MiniMaxVideoScaffoldParams]) -> None:
        """Write the files of ``request`` into its target folder."""
        params = request.params or MiniMaxVideoScaffoldParams()
        name = request.target_path.name
        if request.scaffold_format != "yaml" or request.append:
            scaffold_component(request, {"asset_key": name, "bucket": params.bucket})
            return
        (request.target_path / "defs.yaml").write_text(
            defs_yaml(request.type_name, name, params), encoding="utf-8"
        )
