"""What citizens misunderstand, for staff (issue 18 items 1-2): the review queue, the search over the
question log with its drill-downs, and every unanswered cluster with paging. JSON under /admin/ (tag
"staff", the staff auth of `auth`) and three dashboard pages drawn from templates/staff_review.html.

Drill-downs all land on the search (`/admin/search`, page `/admin/dashboard/questions`): from a topic
(`topic=`), an entry (`entry_id=`), a feedback row (`entry_id=…&feedback=-1`), a cluster (`cluster=`,
with the window it was computed on) or a review case (`case_ids=` … its question ids).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from admin_api import clusters, question_log, review_queue, trends
from admin_api.auth import StaffDep
from admin_api.dashboard import SECURITY_HEADERS
from bot import signals
from bot.reply import Outcome
from bot.service import Service
from knowledge.topics import TOPICS

TEMPLATES = Path(__file__).resolve().parent / "templates"
PAGE_SIZE = 25

Days = Annotated[int, Query(ge=1, le=365, description="The last N days (Vietnam time)")]
Channel = Annotated[str | None, Query(max_length=50, description="web, telegram, zalo, …")]
Limit = Annotated[int, Query(ge=1, le=200)]
Offset = Annotated[int, Query(ge=0, le=100_000)]
SignalKind = Annotated[str | None, Query(max_length=30, description=f"One of {', '.join(signals.KINDS)}")]
Words = Annotated[str | None, Query(max_length=200, description="Words (accent-insensitive, prefixes)")]
AnyDays = Annotated[int | None, Query(ge=1, le=3650, description="The last N days (default: all)")]
TopicQ = Annotated[str | None, Query(max_length=40, description="Topic key")]
OutcomeQ = Annotated[Outcome | None, Query()]
EntryQ = Annotated[str | None, Query(max_length=200, description="Answered with this entry")]
VoteQ = Annotated[int | None, Query(ge=-1, le=1, description="1 = 👍, -1 = 👎")]
ClusterQ = Annotated[str | None, Query(max_length=20, description="An unanswered cluster's id (/admin/clusters)")]
ClusterDays = Annotated[int, Query(ge=1, le=90, description="The window the cluster was computed on")]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
ClusterWindow = Annotated[int, Query(ge=1, le=90)]
FormValue = Annotated[str | None, Query(max_length=20)]


class Search:
    """The search and drill-down parameters, parsed once for the API and the page."""

    def __init__(self, q: str | None = None, days: int | None = None, topic: str | None = None,
                 channel: str | None = None, outcome: str | None = None, entry_id: str | None = None,
                 feedback: int | None = None, cluster: str | None = None, cluster_days: int = 7) -> None:
        self.q, self.days, self.topic, self.channel, self.outcome = q or None, days, topic or None, channel or None, \
            outcome or None
        self.entry_id, self.feedback, self.cluster, self.cluster_days = entry_id or None, feedback, cluster or None, \
            cluster_days

    def question_filter(self, service: Service, now: dt.datetime | None = None) -> question_log.QuestionFilter | None:
        """The log filter; None when `cluster` names no current cluster."""
        texts = None
        if self.cluster:
            texts = clusters.cluster_texts_of(service.store, service.engine, self.cluster, min(self.cluster_days, 90),
                                              self.channel, now=now)
            if texts is None:
                return None
        end = now or trends.utc_now()
        start = end - dt.timedelta(days=self.cluster_days if self.cluster else self.days) \
            if (self.days or self.cluster) else None
        return question_log.QuestionFilter(start=start, end=end if start else None, topic=self.topic,
                                           channel=self.channel, outcome=self.outcome, entry_id=self.entry_id,
                                           feedback=self.feedback, search=self.q, texts=texts)

    def query(self, **changes: Any) -> str:
        """This search as a query string (for links), with `changes`."""
        values = {"q": self.q, "days": self.days, "topic": self.topic, "channel": self.channel,
                  "outcome": self.outcome, "entry_id": self.entry_id, "feedback": self.feedback,
                  "cluster": self.cluster, "cluster_days": self.cluster_days if self.cluster else None, **changes}
        return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def search(service: Service, chosen: Search, limit: int, cursor: str | None) -> question_log.QuestionPage | None:
    found = chosen.question_filter(service)
    if found is None:
        return None
    return question_log.list_questions(service.store, found, limit, cursor)


def router(service: Service) -> APIRouter:
    """The JSON endpoints (tag "staff") and the pages (not in the schema)."""
    routes = APIRouter()
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
    env.globals.update(topic_label=TOPICS, signal_labels=review_queue.SIGNAL_LABELS, kinds=signals.KINDS)

    # ------------------------------------------------------------ JSON

    @routes.get("/admin/review-queue", tags=["staff"], response_model=review_queue.ReviewQueue)
    def review(_: StaffDep, days: Days = 7, channel: Channel = None, kind: SignalKind = None, limit: Limit = 20,
               offset: Offset = 0) -> Any:
        """Answers citizens likely misunderstood, highest score first: each case (a question text and what
        the bot did with it) with its signals (👎 with reasons, rephrases within a minute, "không phải /
        sai rồi", "none of these", handoff requests, off-topic declines, menu picks), the entries picked
        after it and the engine's nearest entries. Weights: `weights` in the answer (weak signals count
        weight x log2(1 + n) per case)."""
        return review_queue.review_queue(service.store, service.engine, days, channel or None, kind or None, limit,
                                         offset)

    @routes.get("/admin/search", tags=["staff"], response_model=question_log.QuestionPage,
                responses={404: {"description": "no current cluster has that id"}})
    def search_log(_: StaffDep, q: Words = None, days: AnyDays = None, topic: TopicQ = None, channel: Channel = None,
                   outcome: OutcomeQ = None, entry_id: EntryQ = None, feedback: VoteQ = None, cluster: ClusterQ = None,
                   cluster_days: ClusterDays = 7, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                   cursor: Cursor = None) -> Any:
        """Search the redacted question log and drill down (topic, entry, 👎 of an entry, a cluster of
        /admin/clusters), newest first; page with `cursor`."""
        try:
            page = search(service, Search(q, days, topic, channel, outcome, entry_id, feedback, cluster,
                                                 cluster_days), limit, cursor)
        except ValueError as exc:
            return JSONResponse({"detail": f"Tham số không hợp lệ: {exc}."}, status_code=422)
        if page is None:
            return JSONResponse({"detail": "Không còn nhóm câu hỏi này; hãy tải lại danh sách nhóm."}, status_code=404)
        return page

    @routes.get("/admin/clusters", tags=["staff"], response_model=clusters.UnansweredReport)
    def all_clusters(_: StaffDep, days: ClusterWindow = 7, channel: Channel = None,
                     limit: Limit = 20, offset: Offset = 0, include_junk: bool = False,
                     include_out_of_scope: bool = False) -> Any:
        """Every unanswered cluster, grouped by intent (the answered or nearest entry), largest first, with
        paging; junk (gibberish, one word) is counted apart unless `include_junk`."""
        return clusters.unanswered(service.store, service.engine, days, channel or None, None, limit, 3,
                                   include_out_of_scope, offset=offset, include_junk=include_junk)

    # ------------------------------------------------------------ pages

    def render(view: str, staff: Any, **context: Any) -> Response:
        html = env.get_template("staff_review.html").render(view=view, staff=staff.label, **context)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    @routes.get("/admin/dashboard/review", include_in_schema=False)
    def review_page(request: Request, days: ClusterWindow = 7, channel: Channel = None,
                    kind: SignalKind = None, offset: Offset = 0) -> Response:
        staff = request.app.state.staff_auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        queue = review_queue.review_queue(service.store, service.engine, days, channel or None,
                                          kind if kind in signals.KINDS else None, PAGE_SIZE, offset)
        return render("review", staff, queue=queue, days=days, channel=channel or "", kind=queue.kind or "",
                    channels=trends.channels(service.store), page_size=PAGE_SIZE)

    @routes.get("/admin/dashboard/questions", include_in_schema=False)
    def questions_page(request: Request, q: Words = None, days: FormValue = None, topic: TopicQ = None,
                       channel: Channel = None, outcome: FormValue = None, entry_id: EntryQ = None,
                       feedback: VoteQ = None, cluster: ClusterQ = None, cluster_days: ClusterDays = 7,
                       cursor: Cursor = None) -> Response:
        staff = request.app.state.staff_auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        # The search form sends every field, empty ones as "": an empty choice is no filter.
        period = min(int(days), 3650) if days and days.isdecimal() and int(days) > 0 else None
        chosen = Search(q, period, topic, channel, outcome if outcome in trends.OUTCOMES else None, entry_id,
                        feedback, cluster, cluster_days)
        try:
            found = search(service, chosen, PAGE_SIZE, cursor)
        except ValueError:
            found = None
        entry = service.engine.kb.entries.get(entry_id) if entry_id else None
        return render("search", staff, search=chosen, found=found, entry=entry, cursor=cursor,
                    channels=trends.channels(service.store), outcomes=list(trends.OUTCOMES))

    @routes.get("/admin/dashboard/clusters", include_in_schema=False)
    def clusters_page(request: Request, days: ClusterWindow = 7, channel: Channel = None,
                      offset: Offset = 0, include_junk: bool = False) -> Response:
        staff = request.app.state.staff_auth.page_staff(request)
        if staff is None:
            return RedirectResponse("/admin/login", status_code=303)
        report = clusters.unanswered(service.store, service.engine, days, channel or None, None, PAGE_SIZE, 3,
                                     offset=offset, include_junk=include_junk)
        return render("clusters", staff, report=report, days=days, channel=channel or "",
                    channels=trends.channels(service.store), page_size=PAGE_SIZE, include_junk=include_junk)

    return routes
