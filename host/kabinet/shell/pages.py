"""The shell's pages: the home page, the language switch, the installed plugins."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.status_codes import HTTP_303_SEE_OTHER

from kabinet import i18n
from kabinet.access import permission, public
from kabinet.pages import is_staff, page, principal_of, safe_next, shell_of

PLUGINS_PERMISSION = "host.plugins.view"
ONE_YEAR = 365 * 24 * 3600


class LanguageForm(msgspec.Struct):
    lang: str
    next: str = "/"


@get("/", access=public, include_in_schema=False)
async def home(request: Request[Any, Any, Any]) -> Response[str]:
    """What the portal is, with an entry per installed app."""
    shell = shell_of(request)
    lang = shell.language(request)
    apps = [
        {
            "name": p.name,
            "title": i18n.localized(p.manifest.title, lang),
            "description": p.manifest.description,
            "summary": i18n.localized(p.manifest.summary, lang) if p.manifest.summary else "",
        }
        for p in shell.host.plugins
        if not p.builtin
    ]
    return await page(request, "shell/home.html", apps=apps, staff=await is_staff(request))


@post("/shell/language", access=public, include_in_schema=False)
async def switch_language(
    request: Request[Any, Any, Any],
    data: Annotated[LanguageForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response[str]:
    """Remember the chosen language in a cookie and go back where the person was."""
    languages = shell_of(request).host.settings.host.languages
    response: Response[str] = Response(
        "", status_code=HTTP_303_SEE_OTHER, headers={"Location": safe_next(data.next)}
    )
    if data.lang in languages:
        response.set_cookie(
            i18n.LANG_COOKIE, data.lang, max_age=ONE_YEAR, samesite="lax", httponly=True
        )
        person = principal_of(request.scope).person_id
        if person is not None:  # a signed-in person keeps it beyond this browser's cookie
            from kabinet.identity.services import identity_service

            await identity_service(shell_of(request).host).set_language(person, data.lang)
    return response


@get(
    "/shell/plugins",
    access=permission(PLUGINS_PERMISSION, scope="global"),
    include_in_schema=False,
)
async def plugins_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Admins see what is installed: name, version, enabled, requirements."""
    host = shell_of(request).host
    lang = shell_of(request).language(request)
    rows = [
        {
            "name": p.name,
            "title": i18n.localized(p.manifest.title, lang),
            "version": p.version,
            "enabled": p.enabled,
            "builtin": p.builtin,
            "requires": list(p.manifest.requires),
            "distribution": p.distribution or "",
        }
        for p in host.plugins.installed
    ]
    return await page(request, "shell/plugins.html", plugins=rows)
