"""GET videos/agent-templates: the template list (``limit``, ``lastId``) and one template's detail (``templateId``).

doc (get-minimax-videos-agent-templates page): ``account`` required when several accounts are configured,
``limit`` default 30, ``lastId`` pages on, ``templateId`` gives the detail "including input requirements"; the
list item fields and their types are those of the page's example. ``hasNext`` is 2nd-hand (useapi.net's MCP tool
description: "pass the last id as lastId for the next page while hasNext is true"); the detail's field names are
not documented at all (GUESS).
"""

from __future__ import annotations

import hashlib
from typing import Any

from aiohttp import web

from ..catalogue import TEMPLATES, Template, get_template
from .common import (
    TEMPLATE_NOT_FOUND,
    ApiError,
    json_response,
    origin_of,
    query_limit,
    state_of,
    target_account,
)

__all__ = ["list_templates", "template_detail", "template_item"]


def template_item(t: Template, origin: str) -> dict[str, Any]:
    """One ``videoList`` item, with the documented keys and JSON types.

    >>> item = template_item(get_template("392747428568649728"), "http://h")
    >>> item["videoAsset"]["resolution"], item["videoAsset"]["tags"][0], item["like"], item["tabID"]
    (1, {'type': 'normal', 'tagIcon': '', 'tagText': 'sport'}, {'likes': 6, 'likeStatus': 0}, 'template')
    """
    cover = f"{origin}/cdn/templates/{t.template_id}.png"
    video = f"{origin}/cdn/templates/{t.template_id}.mp4"
    likes = hashlib.sha256(t.template_id.encode()).digest()[0]  # GUESS: any stable count will do
    return {
        "id": t.template_id,
        "createTime": t.create_time,
        "videoAsset": {
            "id": t.asset_id,
            "desc": t.desc,
            "coverURL": cover,
            "videoURL": video,
            "status": 2,
            "width": t.width,
            "height": t.height,
            "duration": t.duration,
            "resolution": t.resolution,
            "title": t.name,
            "agentTemplateID": t.template_id,
            "agentTemplateName": t.name,
            "downloadURL": video,
            # doc: these keys exist with these types; the values are GUESSES.
            "hasVoice": False,
            "modelID": "sim-agent-01",
            "useOriginPrompt": False,
            "isBookmarked": False,
            "disableGenerateSimilar": False,
            "postStatus": 1,
            "userID": 0,
            "createType": 1,
            "promptImgURL": cover,
            "aspectRatio": t.aspect_ratio,
            # doc: tags are {type, tagIcon, tagText}; type "normal" is a GUESS (seen on GET images).
            "tags": [{"type": "normal", "tagIcon": "", "tagText": tag} for tag in t.tags],
            "humanCheckStatus": 1,
            "userIDStr": "0",
        },
        "like": {"likes": likes, "likeStatus": 0},  # doc: {likes, likeStatus}
        "author": {"userID": "0", "name": "MiniMax", "avatar": ""},  # doc: {userID (a string), name, avatar}
        "cardType": 1,
        "tabID": "template",  # doc: a string
    }


def template_detail(t: Template) -> dict[str, Any]:
    """GUESS: the detail's field names are invented; the page only says it gives the input requirements.

    >>> template_detail(get_template("392747428568649728"))["needTextInput"]
    False
    """
    return {
        "templateId": t.template_id,
        "name": t.name,
        "desc": t.desc,
        "needTextInput": t.allows_prompt,
        "needImageInput": t.image_required,
        "textRequired": t.requires_prompt,
        "promptPlaceholder": t.prompt_placeholder,
        "credits": t.credits,
        "width": t.width,
        "height": t.height,
        "duration": t.duration,
        "fps": t.fps,
    }


async def list_templates(request: web.Request) -> web.Response:
    """GET videos/agent-templates."""
    state = state_of(request)
    target_account(state, request.query.get("account"))
    template_id = request.query.get("templateId")
    if template_id:
        t = get_template(template_id)
        if t is None:
            raise ApiError(404, TEMPLATE_NOT_FOUND)
        return json_response(template_detail(t))
    limit = query_limit(request, default=30)  # doc: default 30
    items = list(TEMPLATES)
    last_id = request.query.get("lastId")
    if last_id:
        ids = [t.template_id for t in items]
        if last_id not in ids:
            # GUESS: the real API's answer to an unknown lastId is undocumented.
            raise ApiError(400, f"lastId {last_id} is not a template id")
        items = items[ids.index(last_id) + 1 :]
    origin = origin_of(request)
    return json_response(
        {
            "videoList": [template_item(t, origin) for t in items[:limit]],
            "hasNext": len(items) > limit,  # 2nd / GUESS (see the module docstring)
        }
    )
