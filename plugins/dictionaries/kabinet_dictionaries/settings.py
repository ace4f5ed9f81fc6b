"""The dictionaries app's settings: the ``[dictionaries]`` section of settings.toml."""

from __future__ import annotations

import msgspec


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[dictionaries]`` section."""

    max_file_size_mb: int = 20
    """The largest document or field file accepted (and the upload routes' body limit)."""
    allowed_file_types: list[str] = msgspec.field(
        default_factory=lambda: [
            "pdf",
            "docx",
            "xlsx",
            "doc",
            "xls",
            "odt",
            "ods",
            "png",
            "jpg",
            "csv",
            "txt",
            "zip",
        ]
    )
    """File kinds accepted, by extension; each is checked by the file's content."""
    page_size: int = 50
    """Entries per page in lists."""
    max_import_mb: int = 10
    """The largest CSV or XLSX table accepted for import."""
