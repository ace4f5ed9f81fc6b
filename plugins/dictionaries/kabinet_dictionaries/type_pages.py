"""The list of dictionaries and the structure editor (admins), under ``/dictionaries/``."""

from __future__ import annotations

from typing import Any

from litestar import Response, get, post
from litestar.params import FromPath

from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.pages import page, picker_source, shell_of
from kabinet.roles.services import ROLES
from kabinet_dictionaries import kinds
from kabinet_dictionaries.errors import DictionaryError
from kabinet_dictionaries.forms import (
    FieldForm,
    Move,
    NewType,
    Publication,
    TypeChange,
    choices_text,
)
from kabinet_dictionaries.pages import (
    ADMIN,
    READ,
    Req,
    actor,
    lang,
    organization_names,
    svc,
    texts,
    who,
)


async def _index(request: Req, *, status: int = 200, form: FormView | None = None) -> Response[Any]:
    principal = who(request)
    return await page(
        request,
        "dictionaries/index.html",
        status_code=status,
        t=texts(request),
        types=await svc(request).types(principal),
        can_manage=await svc(request).can_manage(principal),
        form=form,
    )


@get("/", access=READ)
async def index(request: Req) -> Response[Any]:
    return await _index(request)


@post("/", access=ADMIN)
async def create(request: Req) -> Response[Any]:
    try:
        data = await read_form(request, NewType)
        code = data.code.strip()
        await svc(request).create_type(
            code=code, name_ru=data.name_ru.strip(), name_en=data.name_en.strip()
        )
    except FieldError as exc:
        return await _index(request, status=exc.status, form=await form_view(request, exc))
    return redirect(request, f"/dictionaries/{code}/structure", flash=texts(request)["created"])


async def _structure(
    request: Req,
    code: str,
    *,
    status: int = 200,
    form: FormView | None = None,
    form_of: str = "",
) -> Response[Any]:
    """The editor; ``form`` (a refused form) is shown in the form ``form_of`` names:
    ``type``, ``publish``, ``new`` (a new field) or a field's code."""
    found = await svc(request).get_type(code)
    language = lang(request)
    roles = await shell_of(request).host.services.of(ROLES).roles()
    names = await organization_names(request, found.organizations)
    return await page(
        request,
        "dictionaries/structure.html",
        status_code=status,
        t=texts(request),
        type=found,
        entries=await svc(request).count_entries(code),
        kinds=[(k, kinds.KIND_LABELS[k][0 if language == "ru" else 1]) for k in kinds.KINDS],
        references=[(t.code, t.name(language)) for t in await svc(request).types()],
        role_options=[(r.code, r.name(language)) for r in roles],
        choices_text=choices_text,
        form=form,
        form_of=form_of,
        picker=picker_source(request, "organizations"),
        published_to=[(o, names.get(o, f"#{o}")) for o in found.organizations],
    )


async def _refused(request: Req, code: str, exc: FieldError, form_of: str) -> Response[Any]:
    form = await form_view(request, exc)
    return await _structure(request, code, status=exc.status, form=form, form_of=form_of)


def _back(request: Req, code: str, said: str) -> Response[Any]:
    return redirect(request, f"/dictionaries/{code}/structure", flash=texts(request)[said])


@get("/{code:str}/structure", access=ADMIN)
async def structure(request: Req, code: FromPath[str]) -> Response[Any]:
    return await _structure(request, code)


@post("/{code:str}/structure", access=ADMIN)
async def rename(request: Req, code: FromPath[str]) -> Response[Any]:
    try:
        data = await read_form(request, TypeChange)
        await svc(request).update_type(
            code, name_ru=data.name_ru, name_en=data.name_en, editor_roles=data.editor_roles
        )
    except FieldError as exc:
        return await _refused(request, code, exc, "type")
    return _back(request, code, "saved")


@post("/{code:str}/publication", access=ADMIN)
async def publication(request: Req, code: FromPath[str]) -> Response[Any]:
    try:
        data = await read_form(request, Publication)
        ids = data.ids()
        if any(not o.isdigit() for o in ids):
            raise DictionaryError("organization", "organizations")
        await svc(request).set_publication(code, data.publish, [int(o) for o in ids])
    except FieldError as exc:
        return await _refused(request, code, exc, "publish")
    return _back(request, code, "saved")


@post("/{code:str}/fields", access=ADMIN)
async def add_field(request: Req, code: FromPath[str]) -> Response[Any]:
    try:
        data = await read_form(request, FieldForm)
        await svc(request).add_field(code, data.definition(), actor=actor(request))
    except FieldError as exc:
        return await _refused(request, code, exc, "new")
    return _back(request, code, "saved")


@post("/{code:str}/fields/{field:str}", access=ADMIN)
async def change_field(request: Req, code: FromPath[str], field: FromPath[str]) -> Response[Any]:
    try:
        data = await read_form(request, FieldForm)
        await svc(request).change_field(code, field, data.definition(), actor=actor(request))
    except FieldError as exc:
        if exc.status == 404:
            raise
        return await _refused(request, code, exc, field)
    return _back(request, code, "saved")


@post("/{code:str}/fields/{field:str}/remove", access=ADMIN)
async def remove_field(request: Req, code: FromPath[str], field: FromPath[str]) -> Response[Any]:
    await svc(request).remove_field(code, field, actor=actor(request))
    return _back(request, code, "removed")


@post("/{code:str}/fields/{field:str}/move", access=ADMIN)
async def move_field(request: Req, code: FromPath[str], field: FromPath[str]) -> Response[Any]:
    data = await read_form(request, Move)
    await svc(request).move_field(code, field, -1 if data.to == "up" else 1)
    return redirect(request, f"/dictionaries/{code}/structure")


@post("/{code:str}/delete", access=ADMIN)
async def delete_type(request: Req, code: FromPath[str]) -> Response[Any]:
    try:
        await svc(request).delete_type(code)
    except DictionaryError as exc:
        if exc.status == 404:
            raise
        return await _refused(request, code, exc, "type")
    return redirect(request, "/dictionaries/", flash=texts(request)["deleted"])


HANDLERS = [
    index,
    create,
    structure,
    rename,
    publication,
    add_field,
    change_field,
    remove_field,
    move_field,
    delete_type,
]
