"""Values written in ``defs.yaml``: templates rendered without changing plain text, errors at the line they are
on. Used by the options model (:mod:`~minimax_dagster.assets.options`) and the component's attributes.

>>> from dagster.components.resolved.context import ResolutionContext
>>> render(ResolutionContext.default(), "{{ 2 * 3 }}")
6
"""

import re
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster.components.resolved.errors import ResolutionException

from minimax_dagster import compat

#: ``{{ env.NAME }}`` or ``{{ env('NAME') }}`` and nothing else: a reference to one environment variable.
_ENV_REFERENCE = re.compile(
    r"""^\s*\{\{\s*env(?:\.(?P<attr>[A-Za-z_][A-Za-z0-9_]*)|\(\s*['"](?P<call>[A-Za-z_][A-Za-z0-9_]*)['"]\s*\))\s*\}\}\s*$"""
)


def env_reference(value: Any) -> str | None:
    """The variable a ``"{{ env.NAME }}"`` template names, or ``None`` for any other value.

    >>> env_reference("{{ env.USEAPI_TOKEN }}"), env_reference("{{ env('AWS_SECRET') }}"), env_reference("abc")
    ('USEAPI_TOKEN', 'AWS_SECRET', None)
    """
    if not isinstance(value, str):
        return None
    match = _ENV_REFERENCE.match(value)
    return (match.group("attr") or match.group("call")) if match else None


def render(context: dg.ResolutionContext, value: Any) -> Any:
    """``value`` with its ``{{ ... }}`` templates rendered. Unlike ``context.resolve_value``, a plain string stays
    a string: jinja's native rendering would turn ``"1234567"`` (an account id) into an int.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> render(ResolutionContext.default(), {"account": "1234567", "day": "{{ 1 + 1 }}"})
    {'account': '1234567', 'day': 2}
    """
    if isinstance(value, str):
        return (
            compat.with_dg_scope(context).resolve_value(value) if ("{{" in value or "{%" in value) else value
        )
    if isinstance(value, Mapping):
        return {k: render(context.at_path(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(context.at_path(i), v) for i, v in enumerate(value)]
    return value


def located_error(
    context: dg.ResolutionContext, message: str, *, show_line: bool = True
) -> ResolutionException:
    """An error that says ``message`` after the file, line and snippet of ``context``'s place in ``defs.yaml``
    (the message alone when the attributes did not come from a file). ``show_line=False`` leaves the snippet
    out: for a secret written in the file, which must not be echoed.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> str(located_error(ResolutionContext.default(), "bucket: it is empty"))
    'bucket: it is empty'
    """
    tree = context.source_position_tree
    if tree is None:
        return ResolutionException(message)
    source = tree.source_error(yaml_path=context.path, inline_error_message=message, value_error=True)
    snippet = f"{source.snippet}\n" if show_line else ""
    return ResolutionException(
        f"{source.file_name}:{source.start_line_no} - {source.location}\n{snippet}{message}"
    )


def text_field(
    context: dg.ResolutionContext, field: str, raw: Any, fix: str, *, allow_empty: bool = False
) -> str:
    """Render a text attribute; an unset environment variable or an empty value is an error naming the fix.

    >>> from dagster.components.resolved.context import ResolutionContext
    >>> ctx = ResolutionContext.default()
    >>> text_field(ctx, "bucket", "{{ env.SURELY_UNSET_VARIABLE }}", "export it")
    Traceback (most recent call last):
    ...
    dagster.components.resolved.errors.ResolutionException: bucket: environment variable SURELY_UNSET_VARIABLE is not set; export it
    """
    value = render(context, raw)
    if value is None or (not allow_empty and str(value).strip() == ""):
        variable = env_reference(raw)
        why = f"environment variable {variable} is not set" if variable else "it is empty"
        raise located_error(context, f"{field}: {why}; {fix}")
    return str(value)
