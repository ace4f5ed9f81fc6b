"""Registration pages: step 1 (register, confirm e-mail and phone), the consent to
personal data (agreeing again to a new version; its text, for admins), and accepting an
invitation (the invitee's side; staff send them from the organization's card)."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromQuery

from kabinet.access import permission, public, signed_in
from kabinet.forms import FieldError, FormErrors, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity.middleware import address_of
from kabinet.pages import flash, shell_of
from kabinet_companies.forms import AcceptInvitation, Agree, Confirm, ConsentText, Register
from kabinet_companies.pages import Req, lang, my_id, render, svc, tr

CONSENT = "companies.consent.manage"
AGREE = "Agree to the processing of personal data to register."


def _at(exc: FieldError, field: str) -> FieldError:
    """``exc`` shown beside ``field`` when it names none (identity's refusals of a login,
    a rate limit): the field the form is about."""
    if exc.field is None and not isinstance(exc, FormErrors):
        exc.field = field
    return exc


# -- step 1: registration -------------------------------------------------------------------


@get("/register", access=public, include_in_schema=False)
async def register_page(request: Req) -> Response[str]:
    consent = await svc(request).registration.consent()
    return await render(request, "companies/register.html", form=None, consent=consent)


@post("/register", access=public, include_in_schema=False)
async def register(request: Req) -> Response[Any]:
    reg = svc(request).registration
    try:
        data = await read_form(request, Register)
        await reg.register(
            full_name=data.full_name,
            email=data.email,
            phone=data.phone,
            password=data.password,
            password2=data.password2,
            agreed=data.consent,
            address=address_of(request.scope),
            language=lang(request),
        )
    except FieldError as exc:  # every field at fault (FormErrors), a rate limit (429)
        return await render(
            request,
            "companies/register.html",
            status_code=exc.status,
            form=await form_view(request, _at(exc, "email")),
            consent=await reg.consent(),
        )
    return await _sign_in(request, data.email, data.password)


async def _sign_in(request: Req, login: str, password: str) -> Response[Any]:
    """Start the new person's session, as identity's own login does."""
    identity = svc(request).registration.identity
    result = await identity.login(
        login,
        password,
        address=address_of(request.scope),
        user_agent=request.headers.get("user-agent", ""),
    )
    response = redirect(request, "/companies/register/confirm")
    response.set_cookie(
        identity.cookie_name,
        result.token,
        max_age=identity.settings.absolute_timeout,
        httponly=True,
        samesite="lax",
        secure=shell_of(request).host.settings.host.base_url.startswith("https://"),
        path="/",
    )
    return response


async def _confirm(
    request: Req, *, form: FormView | None = None, status_code: int = 200
) -> Response[str]:
    identity = svc(request).registration.identity
    account = await identity.get_account(my_id(request))
    if account is None:
        raise NotFoundException()
    return await render(
        request, "companies/confirm.html", status_code=status_code, account=account, form=form
    )


@get("/register/confirm", access=signed_in, include_in_schema=False)
async def confirm_page(request: Req) -> Response[Any]:
    if not await svc(request).registration.pending(my_id(request)):
        return redirect(request, "/companies/my")
    return await _confirm(request)


@post("/register/confirm", access=signed_in, include_in_schema=False)
async def confirm(request: Req) -> Response[Any]:
    reg = svc(request).registration
    field = "phone_code"
    try:
        data = await read_form(request, Confirm)
        field = "email_code" if data.purpose == "confirm_email" else "phone_code"
        if data.action == "resend":
            await reg.identity.send_code(
                my_id(request), data.purpose, address=address_of(request.scope)
            )
            flash(request, tr(request, "We sent you a new code."), "success")
        else:
            await reg.identity.check_code(
                my_id(request), data.purpose, data.code, address=address_of(request.scope)
            )
    except FieldError as exc:
        # The page has two forms posting ``code``: the error goes beside the one sent.
        shown = FormView(errors={field: " ".join(e.text(lang(request)) for e in exc.errors)})
        return await _confirm(request, form=shown, status_code=exc.status)
    if await reg.confirmed(my_id(request)):
        return redirect(
            request,
            "/companies/my",
            flash=tr(request, "Registration complete: ask to join your company."),
        )
    return redirect(request, "/companies/register/confirm")


# -- the consent: agreeing to a new version --------------------------------------------------


@get("/consent", access=signed_in, include_in_schema=False)
async def consent_page(request: Req) -> Response[str]:
    return await render(
        request,
        "companies/consent.html",
        consent=await svc(request).registration.consent(),
        form=None,
    )


@post("/consent", access=signed_in, include_in_schema=False)
async def consent_agree(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, Agree)
        if not data.consent:
            raise FieldError(AGREE, "consent")
    except FieldError as exc:
        return await render(
            request,
            "companies/consent.html",
            status_code=exc.status,
            consent=await svc(request).registration.consent(),
            form=await form_view(request, exc),
        )
    await svc(request).registration.agree(my_id(request), address_of(request.scope))
    return redirect(request, "/")


# -- invitations (the invitee's side) ---------------------------------------------------------


@get("/invitation", access=public, include_in_schema=False)
async def invitation_page(request: Req, token: FromQuery[str] = "") -> Response[str]:
    reg = svc(request).registration
    found = await reg.by_token(token, any_status=True) if token else None
    usable = found if found is not None and found.status == "pending" else None
    return await render(
        request,
        "companies/invitation.html",
        status_code=200 if usable else (410 if found else 404),
        invitation=usable,
        gone=found.status if found else "unknown",
        token=token,
        form=None,
        consent=await reg.consent(),
    )


@post("/invitation", access=public, include_in_schema=False)
async def invitation_accept(request: Req) -> Response[Any]:
    reg = svc(request).registration
    token = ""
    try:
        data = await read_form(request, AcceptInvitation)
        token = data.token
        account = await reg.accept_invitation(
            token,
            phone=data.phone,
            password=data.password,
            password2=data.password2,
            agreed=data.consent,
            address=address_of(request.scope),
        )
    except FieldError as exc:
        return await render(
            request,
            "companies/invitation.html",
            status_code=400,
            invitation=await reg.by_token(token),
            gone=getattr(await reg.by_token(token, any_status=True), "status", "unknown"),
            token=token,
            form=await form_view(request, _at(exc, "phone")),
            consent=await reg.consent(),
        )
    return await _sign_in(request, account.email or "", data.password)


# -- admin: the consent's text ---------------------------------------------------------------


async def _consent_edit(
    request: Req, *, form: FormView | None = None, status_code: int = 200
) -> Response[str]:
    reg = svc(request).registration
    return await render(
        request,
        "companies/consent_edit.html",
        status_code=status_code,
        consent=await reg.consent(),
        versions=await reg.consent_versions(),
        form=form,
    )


@get("/consent/edit", access=permission(CONSENT, scope="global"), include_in_schema=False)
async def consent_edit_page(request: Req) -> Response[str]:
    return await _consent_edit(request)


@post("/consent/edit", access=permission(CONSENT, scope="global"), include_in_schema=False)
async def consent_edit(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, ConsentText)
        await svc(request).registration.publish_consent(data.text_ru, data.text_en, my_id(request))
    except FieldError as exc:
        return await _consent_edit(
            request, form=await form_view(request, exc), status_code=exc.status
        )
    return redirect(
        request,
        "/companies/consent/edit",
        flash=tr(request, "A new version is published; people will be asked again."),
    )


HANDLERS = [
    register_page,
    register,
    confirm_page,
    confirm,
    consent_page,
    consent_agree,
    invitation_page,
    invitation_accept,
    consent_edit_page,
    consent_edit,
]
