"""The staff dashboard (/admin/dashboard): login and logout, the page, and attaching a question from it.

Server-rendered from templates/dashboard.html with the charts of `charts`; sign-in as in `auth`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from admin_api import accounts, clusters, question_log, reports, staff_kb, trends
from admin_api.auth import SESSION_COOKIE, StaffAuth
from admin_api.charts import (
    OUTCOME_COLOURS,
    OUTCOME_LABELS,
    PALETTE,
    fmt,
    line_chart,
    outcome_bars,
    pattern_charts,
    share_bar,
    sparkline,
    swatch,
)
from bot.service import Service, rate_limiter
from bot.settings import Settings
from knowledge.registry import review_flags
from knowledge.topics import TOPICS

TEMPLATES = Path(__file__).resolve().parent / "templates"
LOGIN_ATTEMPTS_PER_MINUTE = 10  # per IP address


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


def _review_list(kb: Any, max_age_days: int) -> list[dict[str, Any]]:
    """Entries to re-review, one row per entry (errors first), for the dashboard panel."""
    rows: dict[str, dict[str, Any]] = {}
    for f in review_flags(kb, max_age_days=max_age_days):
        row = rows.setdefault(f.entry_id, {"entry_id": f.entry_id, "file": f.file, "error": False,
                                           "reviewed_on": f.reviewed_on.isoformat(), "reasons": []})
        row["error"] |= f.severity == "error"
        row["reasons"].append(f.reason)
    return sorted(rows.values(), key=lambda r: (not r["error"], r["reviewed_on"], r["entry_id"]))


def page_context(service: Service, settings: Settings, days: int, channel: str | None) -> dict[str, Any]:
    store, engine = service.store, service.engine
    report = trends.topic_trends(store, days, channel)
    chart_days = min(max(days * 2, 14), 180)
    series = trends.daily_series(store, chart_days, channel)
    window = slice(chart_days - min(days, chart_days), chart_days)
    by_topic = sorted(TOPICS, key=lambda t: -sum(series.topics[t]))
    rising = {t.topic for t in report.topics if t.rising}
    shown = by_topic[:len(PALETTE)]
    lines = [(t, TOPICS[t], series.topics[t], t in rising) for t in shown]
    answered = sum(series.outcomes["answered"][window])
    total = sum(series.total[window]) - sum(series.outcomes["law_lookup"][window])  # a lookup asks no entry
    unanswered = clusters.unanswered(store, engine, min(days, 90), channel, limit=8, examples=4)
    feedback = question_log.feedback_counts(store, engine, days)
    spark = {t: series.topics[t][window] for t in TOPICS}
    hour_chart, weekday_chart = pattern_charts(reports.patterns(store, days, channel, province=settings.province))
    return {
        "hour_chart": hour_chart, "weekday_chart": weekday_chart,
        "days": days, "channel": channel or "", "channels": trends.channels(store),
        "trends": report, "rising": [t for t in report.topics if t.rising],
        "legend": [(TOPICS[t], swatch(c), t in rising) for t, c in zip(shown, PALETTE, strict=False)],
        "line_chart": line_chart(series, lines, min(days, chart_days)), "chart_days": chart_days,
        "outcome_chart": outcome_bars(trends.DailySeries(
            days=series.days[window], channel=channel, topics={}, total=series.total[window],
            outcomes={o: v[window] for o, v in series.outcomes.items()})),
        "outcome_legend": [(OUTCOME_LABELS[o], swatch(OUTCOME_COLOURS[o])) for o in trends.OUTCOMES],
        "sparks": {t: sparkline(v) for t, v in spark.items()},
        "review": _review_list(engine.kb, settings.review_age_days),
        "kpi": {
            "total": report.total_current, "previous": report.total_previous,
            "change_pct": (round(100 * (report.total_current - report.total_previous) / report.total_previous)
                           if report.total_previous else None),
            "answered_pct": round(100 * answered / total) if total else None,
            "unanswered": unanswered.questions, "clusters": unanswered.clusters_total,
            "up": feedback.up, "down": feedback.down, "rising": len(rising),
        },
        "unanswered": unanswered, "feedback": feedback.entries[:10],
        "share_bar": share_bar, "fmt": fmt, "topic_label": TOPICS,
        "updated": (trends.utc_now() + trends.LOCAL_OFFSET).strftime("%H:%M %d/%m/%Y"),
        "test": trends.RISING_TEST_VI,
    }


def router(service: Service, auth: StaffAuth, settings: Settings) -> APIRouter:
    """The dashboard's pages (not in the OpenAPI schema)."""
    routes = APIRouter(prefix="/admin", include_in_schema=False)
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    login_limiter = rate_limiter(service.store, "login", LOGIN_ATTEMPTS_PER_MINUTE, 60.0)  # across workers if shared

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(**context), status_code=status, headers=SECURITY_HEADERS)

    async def form(request: Request) -> dict[str, str]:
        body = (await request.body())[:16_384].decode("utf-8", "replace")
        return {k: v[0] for k, v in parse_qs(body).items()}

    @routes.get("/login")
    def login_page(error: str | None = None) -> HTMLResponse:
        return page("dashboard.html", view="login", error=bool(error))

    @routes.post("/login")
    async def login(request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        if not login_limiter.allow(client):
            return page("dashboard.html", 429, view="login", error=True,
                        message="Bạn đã thử quá nhiều lần. Vui lòng chờ một phút.")
        data = await form(request)
        if data.get("password"):  # an account (the token below is the emergency way in, as "automation")
            found = await asyncio.to_thread(accounts.authenticate, service.store, data.get("name", ""),
                                            data["password"])
            account = found["name"] if found else None
            refused = "Tên đăng nhập hoặc mật khẩu không đúng."
        else:
            account = accounts.AUTOMATION if auth.token_ok(data.get("token", "").strip()) else None
            refused = "Mã truy cập không đúng."
        if account is None:
            return page("dashboard.html", 401, view="login", error=True, message=refused)
        response = RedirectResponse("/admin/dashboard", status_code=303)
        cookie = {"max_age": int(auth.session_seconds), "path": "/admin", "httponly": True, "samesite": "strict",
                  "secure": request.url.scheme == "https"}
        response.set_cookie(SESSION_COOKIE, auth.start_session(account), **cookie)  # type: ignore[arg-type]
        return response

    @routes.post("/logout")
    def logout(request: Request) -> Response:
        auth.end_session(request)  # the cookie stops working on the server, not only in this browser
        response = RedirectResponse("/admin/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/admin")
        return response

    @routes.get("/dashboard")
    def dashboard(request: Request, days: Annotated[int, Query(ge=1, le=180)] = 14,
                  channel: Annotated[str | None, Query(max_length=50)] = None,
                  msg: Annotated[str | None, Query(max_length=300)] = None,
                  ok: Annotated[int, Query(ge=0, le=1)] = 1,
                  undo: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> Response:
        staff = auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        context = page_context(service, settings, days, channel or None)
        return page("dashboard.html", view="dashboard", csrf=auth.csrf_for(request), message=msg, ok=bool(ok),
                    staff=staff.label, can_edit=staff.can("editor"), can_admin=staff.can("admin"), undo=undo,
                    province=settings.province, **context)

    @routes.post("/dashboard/attach")
    async def dashboard_attach(request: Request) -> Response:
        data = await form(request)
        staff = auth.page_staff(request)
        if staff is None or not auth.csrf_ok(request, data.get("csrf")):
            return JSONResponse({"detail": "Phiên đăng nhập không hợp lệ."}, status_code=403)
        if not staff.can("editor"):
            return JSONResponse({"detail": "Cần vai trò Biên tập để thêm cách hỏi."}, status_code=403)
        back = {"days": data.get("days", "14"), "channel": data.get("channel", "")}
        entry_id = data.get("entry_id", "")
        try:
            question_id = int(data.get("question_id", ""))
            _, text = await asyncio.to_thread(staff_kb.attach_paraphrase, service, entry_id, staff.name,
                                              question_id=question_id)
            back.update(msg=f"Đã thêm «{text}» làm cách hỏi của mục {entry_id}.", ok="1",
                        undo=str(staff_kb.latest_version_id(service, entry_id)))
        except ValueError:
            back.update(msg="Câu hỏi không hợp lệ.", ok="0")
        except staff_kb.StaffEditError as exc:
            back.update(msg=f"Không thêm được: {exc.detail} " + " ".join(exc.problems[:2]), ok="0")
        return RedirectResponse(f"/admin/dashboard?{urlencode(back, quote_via=quote)}#unanswered", status_code=303)

    return routes
