"""The roles page: roles, the permission matrix, and a person's grants.

Thin routes on the page kit: read the form into a struct (:func:`read_form`), call
:class:`~kabinet.roles.services.RolesService`, redirect with a flash, or render the page
again with the refusal (a :class:`~kabinet.forms.FieldError`) next to the field it names.
Texts are in :data:`TEXT` (Russian and English), like permission labels.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from litestar import Request, Response, Router, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery

from kabinet import i18n
from kabinet.access import permission
from kabinet.forms import FieldError, FormView, form_view, read_form
from kabinet.htmx import redirect
from kabinet.identity.services import IDENTITY, IdentityService
from kabinet.pages import page, picker_source, principal_of, shell_of
from kabinet.roles.forms import Grant, Matrix, NewRole, Rename
from kabinet.roles.services import ROLES, Actor, RoleError, RoleInfo, RolesService
from kabinet.services import inject

MANAGE = permission("roles.manage", scope="global")
Req = Request[Any, Any, Any]
Roles = NamedDependency[RolesService]
"""The roles service, injected (the router's ``dependencies``)."""
Identity = NamedDependency[IdentityService]

TEXT: dict[str, dict[str, str]] = {
    "ru": {
        "roles": "Роли",
        "role": "Роль",
        "builtin": "встроенная",
        "custom": "своя",
        "code": "Код",
        "name_ru": "Название (рус.)",
        "name_en": "Название (англ.)",
        "assigned_only": "Только назначенные организации (как у менеджера)",
        "create": "Создать роль",
        "new_role": "Новая роль",
        "matrix": "Права ролей",
        "permission": "Право",
        "save": "Сохранить",
        "rename": "Переименовать",
        "delete": "Удалить роль",
        "delete_confirm": "Удалить роль и отозвать все её назначения?",
        "reset": "Вернуть права по умолчанию",
        "people": "Назначения человека",
        "find": "Найти",
        "find_hint": "E-mail, телефон или номер учётной записи",
        "grants": "Назначения",
        "give": "Назначить роль",
        "organization": "Организация",
        "organization_hint": "Пусто — глобально (для сотрудников)",
        "global": "глобально",
        "revoke": "Отозвать",
        "none": "Назначений нет.",
        "saved": "Сохранено.",
        "created": "Роль создана.",
        "deleted": "Роль удалена.",
        "given": "Роль назначена.",
        "revoked": "Назначение отозвано.",
        "no_person": "Человек не найден.",
        "scope_global": "только глобально (сотрудники)",
        "back": "← Все роли",
    },
    "en": {
        "roles": "Roles",
        "role": "Role",
        "builtin": "built-in",
        "custom": "custom",
        "code": "Code",
        "name_ru": "Name (Russian)",
        "name_en": "Name (English)",
        "assigned_only": "Assigned organizations only (like a manager)",
        "create": "Create the role",
        "new_role": "New role",
        "matrix": "Permissions of roles",
        "permission": "Permission",
        "save": "Save",
        "rename": "Rename",
        "delete": "Delete the role",
        "delete_confirm": "Delete the role and revoke all its grants?",
        "reset": "Restore the default permissions",
        "people": "A person's grants",
        "find": "Find",
        "find_hint": "E-mail, phone or account number",
        "grants": "Grants",
        "give": "Give a role",
        "organization": "Organization",
        "organization_hint": "Empty: globally (staff)",
        "global": "globally",
        "revoke": "Revoke",
        "none": "No grants.",
        "saved": "Saved.",
        "created": "The role was created.",
        "deleted": "The role was deleted.",
        "given": "The role was given.",
        "revoked": "The grant was revoked.",
        "no_person": "No such person.",
        "scope_global": "staff-wide",
        "back": "← All roles",
    },
}


def texts(request: Req) -> dict[str, str]:
    return TEXT.get(shell_of(request).language(request), TEXT["en"])


def actor(request: Req) -> Actor:
    address = request.client.host if request.client else ""
    return Actor(person_id=principal_of(request.scope).person_id, address=address)


def groups(request: Req) -> list[dict[str, Any]]:
    """Declared permissions grouped by app, with labels in the person's language."""
    host = shell_of(request).host
    lang = shell_of(request).language(request)
    by_plugin: dict[str, list[dict[str, str]]] = defaultdict(list)
    for code, (plugin, perm) in sorted(host.permissions.items()):
        by_plugin[plugin.name].append(
            {"code": code, "label": i18n.localized(perm.label, lang), "scope": perm.scope}
        )
    return [
        {
            "plugin": name,
            "title": i18n.localized(host.plugins.by_name[name].manifest.title, lang),
            "permissions": perms,
        }
        for name, perms in by_plugin.items()
    ]


# --- roles and the matrix (``/roles/``: staff only, ``roles.manage`` held globally) ----------


async def _index(
    request: Req, roles: RolesService, *, status: int = 200, form: FormView | None = None
) -> Response[Any]:
    return await page(
        request,
        "roles/index.html",
        status_code=status,
        t=texts(request),
        roles=await roles.roles(),
        groups=groups(request),
        form=form,
    )


@get("/", access=MANAGE)
async def index(request: Req, roles: Roles) -> Response[Any]:
    return await _index(request, roles)


@post("/", access=MANAGE)
async def create(request: Req, roles: Roles) -> Response[Any]:
    try:
        data = await read_form(request, NewRole)
        await roles.create_role(
            code=data.code,
            name_ru=data.name_ru,
            name_en=data.name_en,
            assigned_only=data.assigned_only,
            actor=actor(request),
        )
    except FieldError as exc:
        return await _index(request, roles, status=exc.status, form=await form_view(request, exc))
    return redirect(request, "/roles/", flash=texts(request)["created"])


@post("/matrix", access=MANAGE)
async def matrix(request: Req, roles: Roles) -> Response[Any]:
    """Every role's permissions from the matrix; roles that did not change stay as they are."""
    svc = roles
    try:
        data = await read_form(request, Matrix)
        chosen: dict[int, set[str]] = defaultdict(set)
        for value in data.p:
            role_id, _, code = value.partition(":")
            if role_id.isdigit():
                chosen[int(role_id)].add(code)
        shown = set(data.roles)
        for role in await svc.roles():
            # Only the roles the page showed: one created meanwhile keeps its permissions.
            if role.id in shown and chosen[role.id] != _declared(request, role):
                await svc.set_permissions(role.id, chosen[role.id], actor=actor(request))
    except FieldError as exc:
        return await _index(request, roles, status=exc.status, form=await form_view(request, exc))
    return redirect(request, "/roles/", flash=texts(request)["saved"])


async def _role(roles: RolesService, role_id: int) -> RoleInfo:
    try:
        return await roles.role(role_id)
    except RoleError:
        raise NotFoundException(f"no role {role_id}") from None


async def _role_refused(request: Req, role: RoleInfo, exc: FieldError) -> Response[Any]:
    return await page(
        request,
        "roles/role.html",
        status_code=exc.status,
        t=texts(request),
        role=role,
        form=await form_view(request, exc),
    )


@get("/{role_id:int}", access=MANAGE)
async def role_card(request: Req, roles: Roles, role_id: FromPath[int]) -> Response[Any]:
    return await page(
        request,
        "roles/role.html",
        t=texts(request),
        role=await _role(roles, role_id),
        form=None,
    )


@post("/{role_id:int}", access=MANAGE)
async def rename(request: Req, roles: Roles, role_id: FromPath[int]) -> Response[Any]:
    role = await _role(roles, role_id)
    try:
        data = await read_form(request, Rename)
        await roles.rename_role(
            role.id, name_ru=data.name_ru, name_en=data.name_en, actor=actor(request)
        )
        if not role.builtin:
            await roles.set_permissions(
                role.id,
                role.permissions,
                assigned_only=data.assigned_only,
                actor=actor(request),
            )
    except FieldError as exc:
        return await _role_refused(request, role, exc)
    return redirect(request, f"/roles/{role.id}", flash=texts(request)["saved"])


@post("/{role_id:int}/delete", access=MANAGE)
async def delete(request: Req, roles: Roles, role_id: FromPath[int]) -> Response[Any]:
    role = await _role(roles, role_id)
    try:
        await roles.delete_role(role.id, actor=actor(request))
    except FieldError as exc:
        return await _role_refused(request, role, exc)
    return redirect(request, "/roles/", flash=texts(request)["deleted"])


@post("/{role_id:int}/reset", access=MANAGE)
async def reset(request: Req, roles: Roles, role_id: FromPath[int]) -> Response[Any]:
    role = await _role(roles, role_id)
    try:
        await roles.reset_defaults(role.id, actor=actor(request))
    except FieldError as exc:
        return await _role_refused(request, role, exc)
    return redirect(request, f"/roles/{role.id}", flash=texts(request)["saved"])


# --- a person's grants ----------------------------------------------------------------------


@get("/people", access=MANAGE)
async def find_person(request: Req, identity: Identity, q: FromQuery[str] = "") -> Response[Any]:
    query = q.strip()
    account = None
    if query.isdigit():
        account = await identity.get_account(int(query))
    elif query:
        account = await identity.find_by_login(query)
    if account is None:
        return redirect(request, "/roles/", flash=texts(request)["no_person"], category="error")
    return redirect(request, f"/roles/people/{account.id}")


async def _person(
    request: Req,
    roles: RolesService,
    identity: IdentityService,
    person_id: int,
    *,
    status: int = 200,
    form: FormView | None = None,
) -> Response[Any]:
    account = await identity.get_account(person_id)
    if account is None:
        raise NotFoundException(f"no person {person_id}")
    grants = await roles.grants_of(person_id)
    # Organizations by name (from the app that owns them), never bare numbers: the
    # grants' and the one chosen in the form.
    host = shell_of(request).host
    lang = shell_of(request).language(request)
    ids = {g.organization_id for g in grants if g.organization_id is not None}
    typed = str(form.value("organization")).strip() if form is not None else ""
    if typed.isdigit() and len(typed) < 10:
        ids.add(int(typed))
    names: dict[int, str] = {}
    for found in await host.plugins.acall("organization_names", host=host, ids=sorted(ids)):
        names.update(found.value)
    return await page(
        request,
        "roles/person.html",
        status_code=status,
        t=texts(request),
        person=account,
        grants=grants,
        role_options=[(r.code, r.name(lang)) for r in await roles.roles()],
        form=form,
        organization_names=names,
        picker=picker_source(request, "organizations"),
    )


@get("/people/{person_id:int}", access=MANAGE)
async def person(
    request: Req,
    roles: Roles,
    identity: Identity,
    person_id: FromPath[int],
) -> Response[Any]:
    return await _person(request, roles, identity, person_id)


@post("/people/{person_id:int}/grants", access=MANAGE)
async def give(
    request: Req,
    roles: Roles,
    identity: Identity,
    person_id: FromPath[int],
) -> Response[Any]:
    try:
        data = await read_form(request, Grant)
        await roles.grant(person_id, data.role, data.organization, actor=actor(request))
    except FieldError as exc:
        if exc.field == "person":
            raise NotFoundException(exc.message) from None
        form = await form_view(request, exc)
        return await _person(request, roles, identity, person_id, status=exc.status, form=form)
    return redirect(request, f"/roles/people/{person_id}", flash=texts(request)["given"])


@post("/people/{person_id:int}/grants/{grant_id:int}/revoke", access=MANAGE)
async def revoke(
    request: Req,
    roles: Roles,
    person_id: FromPath[int],
    grant_id: FromPath[int],
) -> Response[Any]:
    grants = await roles.grants_of(person_id)
    if grant_id not in {g.id for g in grants}:
        raise NotFoundException(f"no grant {grant_id} of person {person_id}")
    await roles.revoke(grant_id, actor=actor(request))
    return redirect(request, f"/roles/people/{person_id}", flash=texts(request)["revoked"])


def _declared(request: Req, role: RoleInfo) -> set[str]:
    """The role's permissions the matrix shows (those of installed, enabled plugins)."""
    known = shell_of(request).host.permissions
    return {p for p in role.permissions if p in known}


def router() -> Router:
    """``/roles/``: staff only (``roles.manage`` held globally)."""
    return Router(
        "/roles",
        include_in_schema=False,
        dependencies={"roles": inject(ROLES), "identity": inject(IDENTITY)},
        route_handlers=[
            index,
            create,
            matrix,
            role_card,
            rename,
            delete,
            reset,
            find_person,
            person,
            give,
            revoke,
        ],
    )
