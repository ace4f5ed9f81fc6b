"""htmx and redirects of the page kit, on Litestar's HTMX support (``litestar.plugins.htmx``).

The app installs :class:`~litestar.plugins.htmx.HTMXPlugin`, so every request is an
:class:`~litestar.plugins.htmx.HTMXRequest` whose ``request.htmx`` says what htmx sent;
the helpers here read it (and still work on a plain ``Request``, in a unit test):

- :func:`is_htmx`: the request comes from htmx (``HX-Request``).
- :func:`wants_fragment`: answer a fragment rather than the whole page: htmx asked, and
  not to restore history or for a boosted link (those want the whole page).
  :func:`kabinet.pages.page` takes ``fragment=`` and uses it then::

      return await page(request, "identity/accounts.html",
                        fragment="identity/accounts_table.html", ...)

- :func:`redirect`: after a form post, 303 See Other to ``to`` for the browser; for htmx,
  ``HX-Redirect`` (:class:`~litestar.plugins.htmx.ClientRedirect`: a whole-page visit) or
  with ``swap=True`` ``HX-Location`` (:class:`~litestar.plugins.htmx.HXLocation`: htmx
  fetches ``to`` and swaps it into the body, no reload). ``flash=`` shows a message on
  the page it leads to (:func:`kabinet.pages.flash`, carried in a cookie).
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response
from litestar.plugins.htmx import ClientRedirect, ClientRefresh, HTMXDetails, HXLocation
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_303_SEE_OTHER


def htmx_of(request: Request[Any, Any, Any]) -> HTMXDetails:
    """What htmx sent with ``request`` (falsy when it is not an htmx request)."""
    found = getattr(request, "htmx", None)
    return found if isinstance(found, HTMXDetails) else HTMXDetails(request)


def is_htmx(request: Request[Any, Any, Any]) -> bool:
    """Whether htmx sent ``request`` (``HX-Request: true``)."""
    return bool(htmx_of(request))


def wants_fragment(request: Request[Any, Any, Any]) -> bool:
    """Whether to answer a fragment: an htmx request that is neither a boosted link nor
    a history restore (both replace the whole page)."""
    hx = htmx_of(request)
    return bool(hx) and not hx.boosted and not hx.history_restore_request


def redirect(
    request: Request[Any, Any, Any],
    to: str,
    *,
    flash: str | None = None,
    category: str = "success",
    swap: bool = False,
) -> Response[Any]:
    """Send the browser to ``to`` (a path on this site) after a form post.

    A browser gets 303 See Other; htmx gets ``HX-Redirect`` (or ``HX-Location`` with
    ``swap``), since it would follow a 303 itself and swap the next page into the
    element that asked. ``flash`` is shown on the page it leads to, as ``category``
    (``success``, ``info``, ``warning``, ``error``).
    """
    if flash:
        from kabinet.pages import flash as remember

        remember(request, flash, category)
    if is_htmx(request):
        response: Response[Any] = HXLocation(to) if swap else ClientRedirect(to)
        response.status_code = HTTP_200_OK  # not the handler's 201 for a post
        return response
    return Redirect(to, status_code=HTTP_303_SEE_OTHER)


def refresh(request: Request[Any, Any, Any], *, flash: str | None = None) -> Response[Any]:
    """Reload the page the person is on: ``HX-Refresh`` for htmx, else 303 to the page
    that sent the form (``Referer`` when it is on this site, else ``/``)."""
    from kabinet.pages import flash as remember
    from kabinet.pages import safe_next

    if flash:
        remember(request, flash, "success")
    if is_htmx(request):
        response: Response[Any] = ClientRefresh()
        response.status_code = HTTP_200_OK
        return response
    back = htmx_of(request).current_url_abs_path or _referer_path(request)
    return Redirect(safe_next(back), status_code=HTTP_303_SEE_OTHER)


def _referer_path(request: Request[Any, Any, Any]) -> str:
    from urllib.parse import urlsplit

    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    if parts.netloc and parts.netloc != request.headers.get("host"):
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


__all__ = ["htmx_of", "is_htmx", "redirect", "refresh", "wants_fragment"]
