"""The forms of the integration pages, read by the page kit (:func:`kabinet.forms.read_form`),
and the page's own refusal (:class:`PageRefusal`, in the app's words of :mod:`.texts`)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from kabinet.forms import FieldError
from kabinet_integration.texts import LABELS, Texts


class RunNow(msgspec.Struct):
    """ "Run now" on the runs page: a source's delta, or its full reconciliation."""

    source: Annotated[str, msgspec.Meta(max_length=64)] = ""
    mode: Literal["delta", "full"] = "delta"


class PageRefusal(FieldError):
    """A refusal of the integration pages, said from :data:`~.texts.LABELS` (``key``)."""

    def __init__(self, key: str, field: str | None = None, *, status: int = 400) -> None:
        super().__init__(LABELS[key][1], field, status=status)
        self.key = key

    def text(self, lang: str) -> str:
        return Texts(lang).of(self.key)

    def english(self) -> str:
        return LABELS[self.key][1]
