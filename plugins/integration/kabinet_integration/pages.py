"""Staff pages: sync runs (with progress and "run now"), quarantine with filters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Request, Response, Router, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Redirect

from kabinet.access import permission
from kabinet_integration import services
from kabinet_integration.jobs import SYNC_ACTOR
from kabinet_integration.mapping import ORDER
from kabinet_integration.texts import Texts

if TYPE_CHECKING:
    from kabinet.host import Host

VIEW = permission("integration.runs.view", scope="global")
MANAGE = permission("integration.runs.manage", scope="global")
Form = Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)]
Filter = Annotated[str, QueryParameter(description="Filter value; empty: all.")]


def routers(host: Host) -> list[Any]:
    from kabinet.pages import flash, language, page, principal_of

    def t(request: Request[Any, Any, Any]) -> Texts:
        return Texts(language(request))

    @get("/runs", access=VIEW)
    async def runs_page(
        request: Request[Any, Any, Any],
        source: Filter = "",
        after: Annotated[
            int | None,
            QueryParameter(description="A run was asked for after this one: poll until it is."),
        ] = None,
    ) -> Response[str]:
        rows = await services.runs(host, source=source)
        waiting = after is not None and not any(r.id > after for r in rows)
        return await page(
            request,
            "integration/runs.html",
            t=t(request),
            runs=rows,
            sources=sorted(host.plugin_settings("integration").sources),
            running=waiting or any(r.state == "running" for r in rows),
            poll_url="/integration/runs" + (f"?after={after}" if after is not None else ""),
            outbound=await services.outbound(host),
            writes_back=services.RequestStates(host).connected(),
            files=await services.failing_files(host),
            can_manage=await host.access.can(principal_of(request.scope), MANAGE.code),
        )

    @post("/runs/sync", access=MANAGE)
    async def run_now(request: Request[Any, Any, Any], data: Form) -> Redirect:
        source = str(data.get("source", ""))
        mode = "full" if data.get("mode") == "full" else "delta"
        if source not in host.plugin_settings("integration").sources:
            flash(request, t(request).no_source_named, "error")
            return Redirect("/integration/runs")
        latest = await services.runs(host, limit=1)
        await host.jobs.send(SYNC_ACTOR, source=source, mode=mode)
        flash(request, t(request).started_flash, "success")
        # The page polls until the run asked for has started and ended.
        return Redirect(f"/integration/runs?after={latest[0].id if latest else 0}")

    @post("/outbound/{item_id:int}/retry", access=MANAGE)
    async def retry_outbound(request: Request[Any, Any, Any], item_id: FromPath[int]) -> Redirect:
        from kabinet_integration.outbound import send_due

        await send_due(host, force_ids=(item_id,))
        return Redirect("/integration/runs")

    @get("/quarantine", access=VIEW)
    async def quarantine_page(
        request: Request[Any, Any, Any],
        source: Filter = "",
        entity: Filter = "",
        show: Annotated[
            str, QueryParameter(description="open, dismissed, or empty: all.")
        ] = "open",
    ) -> Response[str]:
        return await page(
            request,
            "integration/quarantine.html",
            t=t(request),
            items=await services.quarantined(host, source=source, entity=entity, state=show),
            sources=sorted(host.plugin_settings("integration").sources),
            entities=ORDER,
            chosen={"source": source, "entity": entity, "state": show},
        )

    @post("/quarantine/{item_id:int}/{action:str}", access=MANAGE)
    async def quarantine_action(
        request: Request[Any, Any, Any], item_id: FromPath[int], action: FromPath[str]
    ) -> Redirect:
        from kabinet_integration.locks import Busy
        from kabinet_integration.sync import integration

        svc = integration(host)
        items = [i for i in await services.quarantined(host, state="") if i.id == item_id]
        if not items or action not in ("retry", "dismiss"):
            flash(request, t(request).no_record, "error")
            return Redirect("/integration/quarantine")
        if action == "dismiss":
            await svc.dismiss([item_id])
        else:
            try:
                outcome = await svc.retry(items[0].source, [item_id])
                said = f"{t(request).retry_done}: {t(request).of(outcome.state)}"
                flash(request, f"{said}. {outcome.error}" if outcome.error else said, "info")
            except Busy:
                flash(request, t(request).busy, "error")
        return Redirect("/integration/quarantine")

    return [
        Router(
            "/integration",
            route_handlers=[runs_page, run_now, retry_outbound, quarantine_page, quarantine_action],
            include_in_schema=False,
        )
    ]
