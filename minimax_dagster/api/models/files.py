"""Image files: the answer of POST files and the items of GET files.

>>> UploadedFile.model_validate({"fileID": "user:1-minimax:2-file:3", "ossPath": "https://o/p.png"}).account
'2'
"""

from __future__ import annotations

from pydantic import ConfigDict, Field

from minimax_dagster.api.models.base import ApiModel, parse_composite_id


class UploadedFile(ApiModel):
    """The answer of POST files (doc: ``{"ossPath": "<url>", "fileID": "user:<id>-minimax:<account>-file:<id>"}``).

    >>> UploadedFile.model_validate({"fileID": "user:1-minimax:2-file:3", "ossPath": "https://o/p.png"}).file_id
    'user:1-minimax:2-file:3'
    """

    file_id: str = Field(..., alias="fileID")
    oss_path: str = Field(..., alias="ossPath")

    @property
    def account(self) -> str | None:
        """The MiniMax account that owns the file (parsed from the fileID), or None."""
        return parse_composite_id(self.file_id).get("minimax")


class FileInfo(ApiModel):
    """An item of GET files; the API spells these fields in snake_case (doc: the get-minimax-files page).

    doc: ``file_type`` is the image format (``"jpeg"``), ``oss_path`` a storage path distinct from ``cdn_url``,
    ``file_status`` a number (``1``). GUESS: the type of ``file_scene`` (the page shows no value).

    >>> info = FileInfo.model_validate({"file_id": "user:1-minimax:2-file:3", "file_type": "jpeg", "file_status": 1})
    >>> (info.file_type, info.file_status, info.account)
    ('jpeg', 1, '2')
    """

    model_config = ConfigDict(alias_generator=None, populate_by_name=True)

    file_id: str | None = None
    file_name: str | None = None
    file_type: str | None = None
    cdn_url: str | None = None
    oss_path: str | None = None
    file_scene: int | str | None = None
    file_status: int | None = None

    @property
    def account(self) -> str | None:
        """The MiniMax account that owns the file (parsed from ``file_id``), or None."""
        return parse_composite_id(self.file_id).get("minimax") if self.file_id else None
