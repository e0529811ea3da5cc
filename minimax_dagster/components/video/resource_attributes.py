"""The component's ``resources:`` attributes: the MiniMax and S3 resources written in YAML.

Secrets must be written ``"{{ env.NAME }}"``: they become ``dg.EnvVar("NAME")``, resolved in the step, so the
value is in no definition snapshot, the UI or a log line, and ``dg check defs`` passes where the variable is not
set.

>>> import dagster as dg
>>> from dagster.components.resolved.context import ResolutionContext
>>> ctx = ResolutionContext.default()
>>> resource = resolve_minimax_resource(ctx, MiniMaxResourceAttributes(api_token="{{ env.USEAPI_TOKEN }}"))
>>> isinstance(resource.api_token, dg.EnvVar), resource.api_token.env_var_name
(True, 'USEAPI_TOKEN')
"""

import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, ValidationError, create_model

from minimax_dagster.assets.yaml_values import env_reference, located_error, render
from minimax_dagster.resources.minimax import MiniMaxResource, MiniMaxS3Resource


class ResourceKeysModel(dg.Model):
    """The resource keys the video asset asks for. Change them to give two components different resources.

    >>> ResourceKeysModel(minimax="minimax_eu").io_manager
    'minimax_io_manager'
    """

    minimax: str = Field(default="minimax", description="Key of the MiniMaxResource.")
    s3: str = Field(default="s3", description="Key of the S3 resource (dagster-aws S3Resource or ours).")
    io_manager: str = Field(
        default="minimax_io_manager", description="Key of the IO manager storing the manifests (S3 JSON)."
    )


def _is_secret(info: Any) -> bool:
    return bool((info.json_schema_extra or {}).get("is_secret"))


def _templatable(annotation: Any) -> Any:
    """The YAML type of a resource field: the field's own type, a nested model's YAML model, or a template."""
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _attributes_model(annotation, f"{annotation.__name__}Attributes", required=True)
    if origin is list and args:
        return list[_templatable(args[0])]  # type: ignore[misc]
    return annotation


def _attributes_model(source: type[BaseModel], name: str, *, required: bool = False) -> type[dg.Model]:
    """A ``dg.Model`` with ``source``'s fields and descriptions, each also accepting a ``{{ ... }}`` template.

    Top-level fields are all optional (unset means the resource's default); nested models keep required ones.
    """
    fields: dict[str, Any] = {}
    for field_name, info in source.model_fields.items():
        # A secret takes any value here, so that no schema error can echo it; the resolver then insists on an
        # environment reference.
        yaml_type: Any = (
            Any if _is_secret(info) else Union[_templatable(info.annotation), str]  # noqa: UP007 (runtime-built)
        )
        keep_required = required and info.is_required()
        fields[field_name] = (
            yaml_type if keep_required else yaml_type | None,
            Field(
                default=... if keep_required else None,
                description=info.description,
                json_schema_extra=info.json_schema_extra,
            ),
        )
    doc = f"The YAML attributes of ``{source.__name__}``: its fields, each also accepting a template."
    return create_model(name, __base__=dg.Model, __doc__=doc, **fields)


MiniMaxResourceAttributes = _attributes_model(MiniMaxResource, "MiniMaxResourceAttributes")


MiniMaxS3ResourceAttributes = _attributes_model(MiniMaxS3Resource, "MiniMaxS3ResourceAttributes")


def _is_text(annotation: Any) -> bool:
    return annotation is str or (
        get_origin(annotation) in (Union, types.UnionType) and str in get_args(annotation)
    )


def resolve_resource_fields(
    context: dg.ResolutionContext, resource_cls: type[dg.ConfigurableResource], model: BaseModel, where: str
) -> dict[str, Any]:
    """The keyword arguments of ``resource_cls`` that ``model`` sets: ``{{ env.NAME }}`` on a text field becomes
    ``dg.EnvVar("NAME")``; a secret field must be such a reference (never a literal); the rest is rendered.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> fields = resolve_resource_fields(
    ...     ctx, MiniMaxS3Resource, MiniMaxS3ResourceAttributes(region_name="eu-west-1",
    ...     aws_secret_access_key="{{ env.AWS_SECRET_ACCESS_KEY }}"), "resources.s3")
    >>> fields["region_name"], fields["aws_secret_access_key"].env_var_name
    ('eu-west-1', 'AWS_SECRET_ACCESS_KEY')
    """
    out: dict[str, Any] = {}
    for name, value in model.model_dump(exclude_unset=True).items():
        info = resource_cls.model_fields[name]
        variable = env_reference(value)
        if _is_secret(info) and value is not None and variable is None:
            raise located_error(
                context.at_path(name),
                show_line=False,
                message=f"{where}.{name} is a secret: write it as '{{{{ env.VARIABLE }}}}' (e.g. "
                f"'{{{{ env.{_suggest_variable(name)} }}}}') and set the variable; a value written in "
                "defs.yaml would end up in version control",
            )
        if variable is not None and _is_text(info.annotation):
            out[name] = dg.EnvVar(variable)
            continue
        rendered = render(context.at_path(name), value)
        out[name] = (
            str(rendered) if _is_text(info.annotation) and isinstance(rendered, (int, float)) else rendered
        )
    return out


def _suggest_variable(field: str) -> str:
    return {"api_token": "USEAPI_TOKEN"}.get(field, field.upper())


def _build_resource(
    context: dg.ResolutionContext, resource_cls: type[dg.ConfigurableResource], model: Any, where: str
) -> Any:
    if model is None or isinstance(model, resource_cls):
        return model
    kwargs = resolve_resource_fields(context, resource_cls, model, where)
    try:
        return resource_cls(**kwargs)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems = "; ".join(f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors)
        at = context
        for part in errors[0]["loc"] if errors else ():
            at = at.at_path(part)
        raise located_error(at, problems) from None


def resolve_minimax_resource(context: dg.ResolutionContext, model: Any) -> MiniMaxResource | None:
    """``resources.minimax:`` → :class:`~minimax_dagster.resources.MiniMaxResource`.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> resolve_minimax_resource(ctx, MiniMaxResourceAttributes(api_token="{{ env.USEAPI_TOKEN }}", read_timeout=20)).read_timeout
    20.0
    """
    return _build_resource(context, MiniMaxResource, model, "resources.minimax")


def resolve_s3_resource(context: dg.ResolutionContext, model: Any) -> MiniMaxS3Resource | None:
    """``resources.s3:`` → :class:`~minimax_dagster.resources.minimax.MiniMaxS3Resource` (``{}``: boto3's usual chain).

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> resolve_s3_resource(ctx, MiniMaxS3ResourceAttributes(endpoint_url="http://127.0.0.1:9000")).endpoint_url
    'http://127.0.0.1:9000'
    """
    return _build_resource(context, MiniMaxS3Resource, model, "resources.s3")


@dataclass
class MiniMaxResources(dg.Resolvable):
    """``resources:`` the component binds for its asset, under ``resource_keys``. Leave a resource out to bind it
    elsewhere in the project (one place for several components).

    The fields hold a :class:`MiniMaxResource` and a :class:`MiniMaxS3Resource`; they are annotated with their
    base class because dagster's schema derivation refuses pydantic models with constrained fields.

    >>> resources = MiniMaxResources.resolve_from_dict({"minimax": {"api_token": "{{ env.USEAPI_TOKEN }}"}})
    >>> type(resources.minimax).__name__, resources.s3
    ('MiniMaxResource', None)
    """

    minimax: Annotated[
        dg.ConfigurableResource | None,
        dg.Resolver(
            resolve_minimax_resource,
            model_field_type=MiniMaxResourceAttributes,
            description="MiniMaxResource settings; api_token as '{{ env.USEAPI_TOKEN }}'.",
        ),
    ] = None
    s3: Annotated[
        dg.ConfigurableResource | None,
        dg.Resolver(
            resolve_s3_resource,
            model_field_type=MiniMaxS3ResourceAttributes,
            description="S3 settings (region_name, endpoint_url, profile_name, ...); {} uses boto3's usual chain. "
            "Also binds the IO manager that stores the manifests as JSON in the bucket.",
        ),
    ] = None
