"""Agent templates: GET videos/agent-templates (a page of templates) and ?templateId=... (one template's needs).

List fields are doc (the get-minimax-videos-agent-templates page's example, which is cut off: other keys are kept
in ``model_extra``); the detail's field names are GUESS (the page does not show them).

>>> page = TemplateList.model_validate({"videoList": [{"id": "1", "videoAsset": {"agentTemplateID": "42"}}]})
>>> page.video_list[0].template_id
'42'
"""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, field_validator

from minimax_dagster.api.models.base import ApiModel, as_float


class TemplateTag(ApiModel):
    """A tag of a template (doc: ``{type, tagIcon, tagText}``).

    >>> TemplateTag.model_validate({"type": "style", "tagIcon": "https://c/i.png", "tagText": "Cinematic"}).tag_text
    'Cinematic'
    """

    type: str | None = None
    tag_icon: str | None = None
    tag_text: str | None = None


class TemplateLike(ApiModel):
    """The likes of a template (doc: ``{likes, likeStatus}``).

    >>> TemplateLike.model_validate({"likes": 42, "likeStatus": 0}).likes
    42
    """

    likes: int | None = None
    like_status: int | None = None


class TemplateAuthor(ApiModel):
    """The author of a template (doc: ``{userID, name, avatar}``).

    >>> TemplateAuthor.model_validate({"userID": "user123", "name": "Ann"}).user_id
    'user123'
    """

    user_id: str | None = Field(None, alias="userID")
    name: str | None = None
    avatar: str | None = None


class TemplateAsset(ApiModel):
    """``videoAsset`` of a template in GET videos/agent-templates (every field doc).

    >>> asset = TemplateAsset.model_validate({"id": "va1", "resolution": 1, "tags": [{"tagText": "Cinematic"}]})
    >>> (asset.resolution, asset.tags[0].tag_text)
    (1, 'Cinematic')
    """

    # ``modelID`` is a field of the API, not pydantic's model_ namespace.
    model_config = ConfigDict(protected_namespaces=())

    id: str | None = None  # doc: the asset's own id, not the template id
    desc: str | None = None
    cover_url: str | None = Field(None, alias="coverURL")
    video_url: str | None = Field(None, alias="videoURL")
    download_url: str | None = Field(None, alias="downloadURL")
    status: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    resolution: int | None = None  # doc: a number (1 in the example), not "720p"
    title: str | None = None
    agent_template_id: str | None = Field(None, alias="agentTemplateID")
    agent_template_name: str | None = None
    has_voice: bool | None = None
    model_id: str | None = Field(None, alias="modelID")
    use_origin_prompt: bool | None = None
    is_bookmarked: bool | None = None
    disable_generate_similar: bool | None = None
    post_status: int | None = None
    user_id: int | str | None = Field(None, alias="userID")  # doc: a number (userIDStr holds the text)
    user_id_str: str | None = Field(None, alias="userIDStr")
    create_type: int | None = None
    prompt_img_url: str | None = Field(None, alias="promptImgURL")
    aspect_ratio: str | None = None
    tags: list[TemplateTag] | None = None
    human_check_status: int | None = None

    @field_validator("resolution", mode="before")
    @classmethod
    def _resolution_number(cls, value: Any) -> Any:
        # A resolution that is not a number (an older answer said "720p") must not break a template look-up.
        if isinstance(value, str):
            number = as_float(value)
            return int(number) if number is not None else None
        return value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_as_objects(cls, value: Any) -> Any:
        # GUESS: a plain-string tag (seen from older answers) is read as its text.
        if isinstance(value, list):
            return [{"tagText": tag} if isinstance(tag, str) else tag for tag in value]
        return value


class AgentTemplate(ApiModel):
    """One item of the template list (every field doc).

    >>> t = AgentTemplate.model_validate({"id": "1", "tabID": "template", "like": {"likes": 3},
    ...     "videoAsset": {"agentTemplateID": "1", "agentTemplateName": "Diving"}})
    >>> (t.template_id, t.name, t.tab_id, t.like.likes)
    ('1', 'Diving', 'template', 3)
    """

    id: str
    create_time: int | None = None  # milliseconds since the epoch
    video_asset: TemplateAsset | None = None
    like: TemplateLike | None = None
    author: TemplateAuthor | None = None
    card_type: int | None = None
    tab_id: str | None = Field(None, alias="tabID")  # doc: a string ("template")

    @property
    def template_id(self) -> str:
        """The id to pass as ``templateId`` (the asset's ``agentTemplateID`` when present)."""
        return (self.video_asset.agent_template_id if self.video_asset else None) or self.id

    @property
    def name(self) -> str | None:
        """The template's display name."""
        asset = self.video_asset
        return (asset.agent_template_name or asset.title) if asset else None


class TemplateList(ApiModel):
    """A page of GET videos/agent-templates (``videoList`` doc; ``hasNext`` 2nd).

    >>> TemplateList.model_validate({"videoList": [], "hasNext": False}).has_next
    False
    """

    video_list: list[AgentTemplate] = Field(default_factory=list)
    has_next: bool | None = None


class TemplateDetail(ApiModel):
    """GET videos/agent-templates?templateId=...: what a template needs.

    Every field name here is GUESS (the page says the detail tells the "input requirements" without showing
    them); unknown fields are kept.

    >>> TemplateDetail(template_id="1", need_text_input=False, need_image_input=True).accepts_prompt
    False
    """

    template_id: str | None = None
    name: str | None = None
    desc: str | None = None
    need_text_input: bool | None = None
    need_image_input: bool | None = None
    text_required: bool | None = None
    prompt_placeholder: str | None = None
    credits: int | None = None
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    fps: float | None = None

    @property
    def accepts_prompt(self) -> bool:
        """False only when the template is known to take no text."""
        return self.need_text_input is not False

    @property
    def requires_prompt(self) -> bool:
        """True when the template needs a text prompt."""
        return bool(self.text_required)

    @property
    def requires_image(self) -> bool:
        """True when the template needs an image (fileID)."""
        return bool(self.need_image_input)
