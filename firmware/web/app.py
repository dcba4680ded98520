"""The web role's HTTP surface (Starlette): routes, security headers, form parsing.

Starlette + uvicorn + Jinja2: small, well kept, pure-Python wheels (uvicorn without
its C extras runs on h11), no build step; Jinja2 autoescapes every template, and
the pages' scripts set text with ``textContent`` only, so a staff id, service name
or booking code holding HTML stays text. Every asset is package data; the pages
load nothing from another origin (Content-Security-Policy ``default-src 'self'``).

Routes (docs/web.md): ``/display`` and ``/display/events``; ``/t/{ref}``,
``/t/{ref}/events`` and ``POST /t/{ref}/rate``; ``/manage``, ``/manage/login``,
``/manage/logout``, ``/manage/events``, ``POST /manage/action``; ``/static/…``,
``/audio/…``; ``/healthz``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import jinja2
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.web.accounts import csrf_ok, may
from tessera.web.hub import EventStream

if TYPE_CHECKING:
    from tessera.web.role import WebRole

MAX_FORM_BYTES = 4096
MAX_UPLOAD_BYTES = 512 * 1024  # the console's bookings upload (the urlencoded form)
SESSION_COOKIE = "tessera_session"
NAME_RE = re.compile(r"\A[A-Za-z0-9._-]{1,64}\Z")
NUMBER_RE = re.compile(r"\A *[A-Za-z]{0,2}[0-9]{1,9} *\Z")
FIELD_RE = {"counter": NAME_RE, "service": NAME_RE, "staff": NAME_RE,
            "ticket_id": re.compile(r"\A[0-9a-f-]{36}\Z"), "number": NUMBER_RE,
            # a ticket id, or today's number (reprint, undo-no-show)
            "ticket": re.compile(r"\A(?:[0-9a-f-]{36}| *[A-Za-z]{0,2}[0-9]{1,9} *)\Z"),
            "file": re.compile(r"\A[A-Za-z0-9._ ()-]{1,100}\Z"), "dry_run": re.compile(r"\A[01]\Z")}
ACTION_FIELDS = {"open": ("counter",), "close": ("counter",), "pause": ("counter",),
                 "resume": ("counter",), "call": ("counter", "number"),
                 "transfer": ("counter", "service"), "void": ("ticket_id",),
                 "reprint": ("ticket",), "undo-no-show": ("ticket", "counter"),
                 "appointments": ("file", "csv")}
OPTIONAL_FIELDS = {"open": ("staff",), "appointments": ("dry_run",)}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "media-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


class Form(dict[str, str]):
    """A parsed form and the size of its body."""

    size = 0


class FormError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


async def read_form(request: Request, limit: int = MAX_FORM_BYTES) -> Form:
    """A small urlencoded form: 415 for another type, 413 over ``limit`` bytes, 400 for
    a malformed body or a repeated field."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/x-www-form-urlencoded":
        raise FormError(415, "send application/x-www-form-urlencoded")
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise FormError(413, f"form over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise FormError(413, f"form over {limit} bytes")
    try:
        text = bytes(body).decode("utf-8")
        parsed = parse_qs(text, keep_blank_values=True, strict_parsing=bool(text),
                          max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise FormError(400, "malformed form") from None
    if any(len(v) != 1 for v in parsed.values()):
        raise FormError(400, "a field is repeated")
    form = Form({k: v[0] for k, v in parsed.items()})
    form.size = len(body)
    return form


class SecurityHeaders:
    """Headers on every answer: CSP, no sniffing, no referrer (a ticket link is a
    capability and must not leak to another site), no caching of live pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with(message: dict[str, object]) -> None:  # type: ignore[misc]
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))  # type: ignore[call-overload]
                headers += [(b"content-security-policy", CSP.encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY")]
                if not scope["path"].startswith("/static/"):
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)  # type: ignore[arg-type]

        await self.app(scope, receive, send_with)  # type: ignore[arg-type]


def _templates() -> jinja2.Environment:
    root = Path(str(files("tessera.web") / "templates"))
    return jinja2.Environment(loader=jinja2.FileSystemLoader(root), autoescape=True,
                              undefined=jinja2.StrictUndefined)


def not_found() -> Response:
    return PlainTextResponse("Not Found", status_code=404)


def build_app(role: WebRole) -> Starlette:
    """The ASGI app of ``role`` (``tessera.web.role.WebRole``)."""
    env = _templates()
    cfg = role.cfg

    def page(name: str, **ctx: object) -> Response:
        html = env.get_template(name).render(branch=cfg.branch.name,
                                             languages=list(cfg.branch.languages), **ctx)
        return Response(html, media_type="text/html; charset=utf-8")

    def sse(topic: str, request: Request, first: Callable[[], list[object]] | None = None
            ) -> Response:
        hub = role.hub
        last = request.headers.get("last-event-id") or request.query_params.get("last")
        resumed = hub.since(topic, last)
        msgs = resumed if resumed is not None else \
            ([hub.latest[topic]] if topic in hub.latest else [])
        sub = hub.subscribe(topic)
        role.kick()
        return EventStream(hub, sub, msgs, heartbeat_s=role.heartbeat_s,  # type: ignore[return-value]
                           tick=role.tick_json)

    # ------------------------------------------------------------------ hall display

    async def display(request: Request) -> Response:
        return page("display.html", stale_s=role.stale_s)

    async def display_events(request: Request) -> Response:
        return sse("display", request)

    # ------------------------------------------------------------------ mobile ticket

    def ticket_of(request: Request) -> str | None:
        return role.signer.ticket_id(str(request.path_params["ref"]))

    async def ticket_page(request: Request) -> Response:
        tid = ticket_of(request)
        if tid is None or not await role.known_ticket(tid):
            return not_found()
        return page("ticket.html", ref=str(request.path_params["ref"]), stale_s=role.stale_s)

    async def ticket_events(request: Request) -> Response:
        tid = ticket_of(request)
        if tid is None or not await role.known_ticket(tid):
            return not_found()
        return sse(f"ticket:{tid}", request)

    async def ticket_rate(request: Request) -> Response:
        tid = ticket_of(request)
        if tid is None or not await role.known_ticket(tid):
            return not_found()
        try:
            form = await read_form(request)
        except FormError as e:
            return JSONResponse({"status": "rejected", "code": "invalid", "detail": e.detail},
                                status_code=e.status)
        score = form.get("score", "")
        if set(form) != {"score"} or not score.isascii() or not score.isdigit() \
                or len(score) > 2:
            return JSONResponse({"status": "rejected", "code": "invalid",
                                 "detail": "send score=N"}, status_code=400)
        status, body = await role.rate(tid, int(score))
        return JSONResponse(body, status_code=status)

    # ------------------------------------------------------------------ console

    async def manage(request: Request) -> Response:
        s = role.accounts.session(request.cookies.get(SESSION_COOKIE), role.now())
        if s is None:
            return RedirectResponse("/manage/login", status_code=303)
        return page("manage.html", account=s.account, role=s.role, csrf=s.csrf,
                    services=[x.id for x in cfg.services], max_upload=MAX_UPLOAD_BYTES)

    async def login_form(request: Request) -> Response:
        return page("login.html", error="")

    async def login(request: Request) -> Response:
        try:
            form = await read_form(request)
        except FormError as e:
            return PlainTextResponse(e.detail, status_code=e.status)
        name, password = form.get("name", ""), form.get("password", "")
        client = request.client.host if request.client else "?"
        wait = role.accounts.locked([f"name:{name}", f"addr:{client}"], role.now())
        if wait > 0:
            role.audit(name[:64], "", "login", {}, "rejected", "locked-out")
            resp = page("login.html", error=f"Too many failed logins; try again in "
                        f"{wait:.0f} s.")
            resp.status_code = 429
            return resp
        s = await role.login(name, password, client)
        if s is None:
            role.audit(name[:64], "", "login", {}, "rejected", "bad-login")
            resp = page("login.html", error="Wrong name or password.")
            resp.status_code = 401
            return resp
        role.audit(s.account, s.role, "login", {}, "done", "")
        resp = RedirectResponse("/manage", status_code=303)
        resp.set_cookie(SESSION_COOKIE, s.token, max_age=int(role.accounts.session_s),
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
        return resp

    async def logout(request: Request) -> Response:
        s = role.accounts.session(request.cookies.get(SESSION_COOKIE), role.now())
        try:
            form = await read_form(request)
        except FormError as e:
            return PlainTextResponse(e.detail, status_code=e.status)
        if s is None or not csrf_ok(s, form.get("csrf")):
            return PlainTextResponse("Forbidden", status_code=403)
        role.accounts.logout(s.token)
        role.audit(s.account, s.role, "logout", {}, "done", "")
        resp = RedirectResponse("/manage/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    async def manage_events(request: Request) -> Response:
        if role.accounts.session(request.cookies.get(SESSION_COOKIE), role.now()) is None:
            return PlainTextResponse("Unauthorized", status_code=401)
        return sse("manage", request)

    async def action(request: Request) -> Response:
        s = role.accounts.session(request.cookies.get(SESSION_COOKIE), role.now())
        if s is None:
            return JSONResponse({"status": "rejected", "code": "unauthorized",
                                 "detail": "log in first"}, status_code=401)
        try:
            form = await read_form(request, MAX_UPLOAD_BYTES)
            if form.get("action") != "appointments" and form.size > MAX_FORM_BYTES:
                raise FormError(413, f"form over {MAX_FORM_BYTES} bytes")
        except FormError as e:
            return JSONResponse({"status": "rejected", "code": "invalid", "detail": e.detail},
                                status_code=e.status)
        if not csrf_ok(s, form.pop("csrf", None)):
            return JSONResponse({"status": "rejected", "code": "csrf",
                                 "detail": "stale or missing form token; reload the page"},
                                status_code=403)
        name = form.pop("action", "")
        if name not in ACTION_FIELDS:
            return JSONResponse({"status": "rejected", "code": "invalid",
                                 "detail": f"unknown action; valid: "
                                 f"{', '.join(ACTION_FIELDS)}"}, status_code=400)
        need, opt = ACTION_FIELDS[name], OPTIONAL_FIELDS.get(name, ())
        extra = set(form) - set(need) - set(opt)
        missing = [f for f in need if not form.get(f)]
        bad = [f for f, v in form.items() if f in FIELD_RE and v and not FIELD_RE[f].match(v)]
        if extra or missing or bad:
            detail = "; ".join(x for x in (
                f"unknown fields {sorted(extra)}" if extra else "",
                f"missing {missing}" if missing else "",
                f"malformed {bad}" if bad else "") if x)
            return JSONResponse({"status": "rejected", "code": "invalid", "detail": detail},
                                status_code=400)
        if not may(s.role, name):
            role.audit(s.account, s.role, name, audit_args(name, form), "rejected",
                       "forbidden")
            return JSONResponse({"status": "rejected", "code": "forbidden",
                                 "detail": f"a {s.role} may not {name}"}, status_code=403)
        if name == "appointments":
            status, body = await role.load_appointments(s.account, s.role, form)
        else:
            status, body = await role.act(s.account, s.role, name, form)
        return JSONResponse(body, status_code=status)

    # ------------------------------------------------------------------ take a ticket

    async def join_page(request: Request) -> Response:
        if not role.join_enabled:
            return not_found()
        lang = list(cfg.branch.languages)
        return page("join.html", services=[(s.id, " / ".join(dict.fromkeys(
            s.name(x) for x in lang))) for s in cfg.services], error="")

    async def join(request: Request) -> Response:
        if not role.join_enabled:
            return not_found()
        try:
            form = await read_form(request)
        except FormError as e:
            return PlainTextResponse(e.detail, status_code=e.status)
        service = form.get("service", "")
        if set(form) != {"service"} or service not in {s.id for s in cfg.services}:
            return PlainTextResponse("choose one of the services", status_code=400)
        if not role.join_admit(request.client.host if request.client else "?"):
            return PlainTextResponse("Too many tickets from here; please take one at the "
                                     "kiosk or try again later.", status_code=429)
        status, body = await role.join(service)
        if status == 303:
            return RedirectResponse(str(body["location"]), status_code=303)
        return PlainTextResponse(str(body["detail"]), status_code=status)

    # ------------------------------------------------------------------ misc

    async def audio(request: Request) -> Response:
        wav = await role.audio(str(request.path_params["name"]))
        return Response(wav, media_type="audio/wav") if wav else not_found()

    async def healthz(request: Request) -> Response:
        return PlainTextResponse(role.tick_json(), media_type="application/json")

    async def root(request: Request) -> Response:
        return RedirectResponse("/display", status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        text = {404: "Not Found", 405: "Method Not Allowed"}.get(status, "Error")
        return PlainTextResponse(text, status_code=status)

    routes = [
        Route("/", root),
        Route("/display", display),
        Route("/display/events", display_events),
        Route("/t/{ref}", ticket_page),
        Route("/t/{ref}/events", ticket_events),
        Route("/t/{ref}/rate", ticket_rate, methods=["POST"]),
        Route("/manage", manage),
        Route("/manage/login", login_form, methods=["GET"]),
        Route("/manage/login", login, methods=["POST"]),
        Route("/manage/logout", logout, methods=["POST"]),
        Route("/manage/events", manage_events),
        Route("/manage/action", action, methods=["POST"]),
        Route("/join", join_page, methods=["GET"]),
        Route("/join", join, methods=["POST"]),
        Route("/audio/{name}", audio),
        Route("/healthz", healthz),
        # follow_symlink: the strict editable install links each asset into build/
        Mount("/static", StaticFiles(directory=str(files("tessera.web") / "static"),
                                     follow_symlink=True), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.add_middleware(SecurityHeaders)
    return app


def audit_args(action: str, form: dict[str, str]) -> dict[str, str]:
    """An action's fields as its ``console.action`` event records them: an upload's file
    name, line count and dry-run flag, not its contents."""
    if action != "appointments":
        return dict(form)
    return {"file": form.get("file", ""), "lines": str(len(form.get("csv", "").splitlines())),
            "dry_run": form.get("dry_run", "0")}


def json_text(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
