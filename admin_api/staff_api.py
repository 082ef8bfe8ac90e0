"""The staff API under /admin/ (JSON and CSV): trends, the question log, unanswered clusters, feedback,
entries (list, read, create, replace, revert, attach a paraphrase) and the audit log.

Every endpoint checks the caller's role (`auth`: viewers read, editors edit, reviewers revert); edits are
validated like `bhxh kb check` and audited under the account's name.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from admin_api import clusters, editor_api, question_log, reports, staff_kb, trends
from admin_api.auth import EditorDep, ReviewerDep, StaffDep
from bot.reply import Outcome
from bot.service import Service
from bot.settings import Settings
from knowledge.registry import review_flags
from knowledge.topics import TOPICS

CSV_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

TopicKey = Enum("TopicKey", {k: k for k in TOPICS}, type=str)  # the fixed topic list, as an OpenAPI enum
Channel = Annotated[str | None, Query(max_length=50, description="web, telegram, zalo, …")]
TopicQ = Annotated[TopicKey | None, Query(description="Topic key")]  # type: ignore[valid-type]
OutcomeQ = Annotated[Outcome | None, Query()]
From = Annotated[dt.datetime | None, Query(alias="from", description="ISO time (naive = UTC), inclusive")]
To = Annotated[dt.datetime | None, Query(description="ISO time (naive = UTC), exclusive")]
Contains = Annotated[str | None, Query(max_length=200, description="Text contains (redacted or normalized)")]
EntryId = Annotated[str, PathParam(max_length=200, description="Entry id (slug)")]


class AttachRequest(BaseModel):
    """Give `question_id` (its normalized, redacted text is attached) or `text` (redacted again)."""

    question_id: int | None = Field(None, ge=1, le=2**62, description="A logged question")
    text: str | None = Field(None, max_length=1000, description="A text to attach instead")


class AttachResponse(BaseModel):
    entry: staff_kb.EntryOut
    paraphrase: str = Field(description="The text added to the entry's paraphrases")
    version: int = Field(description="The change's version: POST /admin/versions/{version}/rollback undoes it")


class RevertResponse(BaseModel):
    reverted: bool
    entry: staff_kb.EntryOut | None = Field(description="The YAML version now in force, or null if the entry is gone")


def problems_response(exc: staff_kb.StaffEditError) -> JSONResponse:
    """A refused edit as JSON: its detail and, one by one, its validation problems."""
    body: dict[str, Any] = {"detail": exc.detail}
    if exc.status == 422 or exc.problems:
        body["problems"] = [staff_kb.ProblemOut.of(p).model_dump() for p in exc.problems]
    return JSONResponse(body, status_code=exc.status)


EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "unknown entry or question"},
    409: {"description": "already exists"},
    422: {"model": staff_kb.ProblemReport,
          "description": "validation problems (file, entry, field), as `bhxh kb check`"},
    503: {"description": "the search index could not be rebuilt; nothing was changed"},
}


DRAFT_RESPONSE: dict[str, Any] = {"model": staff_kb.VersionOut,
                                  "description": "approval is on: a draft waiting for a reviewer (POST "
                                                 "/admin/versions/{id}/approve)"}


def _csv_cell(value: Any) -> Any:
    """Keep spreadsheets from running user text as a formula."""
    if isinstance(value, str) and value.startswith(CSV_FORMULA_START):
        return "'" + value
    return "" if value is None else value


def _csv_stream(header: list[str], rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write("\ufeff")  # so spreadsheet programs read UTF-8 Vietnamese correctly
    writer.writerow(header)
    for n, row in enumerate(rows, start=1):
        writer.writerow([_csv_cell(v) for v in row])
        if n % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def _csv_response(name: str, header: list[str], rows: Any) -> StreamingResponse:
    return StreamingResponse(_csv_stream(header, rows), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8 with BOM"}}



def router(service: Service, settings: Settings) -> APIRouter:
    """The JSON and CSV endpoints under /admin/ (tag "staff")."""
    routes = APIRouter(prefix="/admin", tags=["staff"], responses={
        401: {"description": "no login or wrong token"}, 403: {"description": "the role does not allow it"}})

    def filters(start: dt.datetime | None, to: dt.datetime | None, topic: Any, channel: str | None,
                outcome: str | None, q: str | None) -> question_log.QuestionFilter:
        return question_log.QuestionFilter(start=start, end=to, topic=topic.value if topic else None,
                                        channel=channel or None, outcome=outcome, contains=q or None)

    @routes.get("/topics", response_model=trends.TopicsReport)
    def topics(_: StaffDep, days: Annotated[int, Query(ge=1, le=365)] = 7, channel: Channel = None) -> Any:
        """Questions per topic in the last `days` days and in the `days` before, with the rising test:
        with n = current + previous, under "no change" current ~ Binomial(n, 1/2); a topic is
        **rising** when P(X >= current) < 0.01, current >= 10 and current >= 1.5 x max(previous, 1).
        Every topic of knowledge/topics.py is listed, zero counts included."""
        return trends.topic_trends(service.store, days, channel or None)

    @routes.get("/topics/daily", response_model=trends.DailySeries)
    def topics_daily(_: StaffDep, days: Annotated[int, Query(ge=1, le=365)] = 30, channel: Channel = None) -> Any:
        """Daily counts per topic and per outcome (Vietnam days, UTC+7), oldest first."""
        return trends.daily_series(service.store, days, channel or None)

    @routes.get("/questions", response_model=question_log.QuestionPage)
    def questions(_: StaffDep, start: From = None, to: To = None, topic: TopicQ = None, channel: Channel = None,
                  outcome: OutcomeQ = None, q: Contains = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 50,
                  cursor: Annotated[str | None, Query(max_length=200, description="next_cursor of the previous page")]
                  = None) -> Any:
        """The question log (redacted), newest first; page with `cursor`."""
        try:
            chosen = filters(start, to, topic, channel, outcome, q)
            return question_log.list_questions(service.store, chosen, limit, cursor)
        except ValueError as exc:
            return JSONResponse({"detail": f"Tham số không hợp lệ: {exc}."}, status_code=422)

    @routes.get("/unanswered", response_model=clusters.UnansweredReport)
    def unanswered(_: StaffDep, days: Annotated[int, Query(ge=1, le=90)] = 7, channel: Channel = None,
                   min_score: Annotated[float | None, Query(
                       ge=0, le=1, allow_inf_nan=False, description="default: the engine's answer threshold + 0.02")]
                   = None,
                   limit: Annotated[int, Query(ge=1, le=100)] = 20,
                   examples: Annotated[int, Query(ge=1, le=10)] = 3,
                   include_out_of_scope: Annotated[bool, Query(description="also off-topic questions")] = False
                   ) -> Any:
        """Declined, choice and low-score questions grouped into clusters of similar wording, largest
        first, each with examples and its nearest entries (to attach as a paraphrase)."""
        return clusters.unanswered(service.store, service.engine, days, channel or None, min_score, limit, examples,
                             include_out_of_scope)

    @routes.get("/feedback", response_model=question_log.FeedbackReport)
    def feedback(_: StaffDep, days: Annotated[int | None, Query(ge=1, le=3650)] = None) -> Any:
        """👍/👎 counts per entry (all time, or the last `days` days), most 👎 first."""
        return question_log.feedback_counts(service.store, service.engine, days)

    @routes.get("/export/questions.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
    def export_questions(_: StaffDep, start: From = None, to: To = None, topic: TopicQ = None, channel: Channel = None,
                         outcome: OutcomeQ = None, q: Contains = None,
                         days: Annotated[int | None, Query(ge=1, le=3650, description=(
                             "the last `days` Vietnam days, today included (the dashboard's period); "
                             "ignored when `from` is given"))] = None,
                         limit: Annotated[int, Query(ge=1, le=1_000_000)] = 100_000) -> Any:
        """The filtered log as CSV (newest first); times in Vietnam time (the header states the offset);
        a `province` column when BHXH_PROVINCE is set."""
        first = last = None
        if days is not None and start is None:
            start, end, first, last = reports.local_window(days)
            to = to or end
        chosen = filters(start, to, topic, channel, outcome, q)
        rows = question_log.iter_questions(service.store, chosen, limit)
        columns = question_log.QUESTION_COLUMNS
        return _csv_response(reports.export_name("questions", settings.province, first, last),
                             reports.question_header(columns, settings.province),
                             reports.question_rows(rows, columns, settings.province))

    @routes.get("/export/topics.csv", response_class=StreamingResponse, responses=CSV_RESPONSE)
    def export_topics(_: StaffDep, days: Annotated[int, Query(ge=1, le=365)] = 30, channel: Channel = None) -> Any:
        """Questions per Vietnam day and topic (zeros included) with their outcomes, as CSV."""
        province = (settings.province,) if settings.province else ()
        rows = [(day, topic or "(none)", TOPICS.get(topic, "Không xác định chủ đề"), sum(counts), *counts, *province)
                for day, topic, counts in trends.daily_topic_rows(service.store, days, channel or None)]
        _, _, first, last = reports.local_window(days)
        header = [f"day ({reports.TIMEZONE})", "topic", "label", "questions", *trends.OUTCOMES]
        return _csv_response(reports.export_name("topics", settings.province, first, last),
                             header + (["province"] if province else []), rows)

    @routes.get("/patterns", response_model=reports.PatternsReport)
    def patterns(_: StaffDep, days: Annotated[int, Query(ge=1, le=180)] = 7, channel: Channel = None,
                 topic: TopicQ = None) -> Any:
        """When people ask: questions per hour of the day (Vietnam time) and per weekday over the last
        `days` Vietnam days (today included), with the average per weekday."""
        return reports.patterns(service.store, days, channel or None, topic.value if topic else None,
                                province=settings.province)

    @routes.get("/review")
    def review(_: StaffDep) -> Any:
        """Entries to re-review: a cited document changed since their review (error), or the scope
        is unknown or the review is old (warning). Same list as `bhxh kb check`."""
        flags = review_flags(service.engine.kb, max_age_days=settings.review_age_days)
        return [{"entry_id": f.entry_id, "file": f.file, "severity": f.severity, "reason": f.reason,
                 "reviewed_on": f.reviewed_on.isoformat()} for f in flags]

    @routes.get("/entries", response_model=list[staff_kb.EntrySummary])
    def entries(_: StaffDep, topic: TopicQ = None, q: Contains = None) -> Any:
        """Entries in force (YAML merged with staff records)."""
        return staff_kb.list_entries(service, topic.value if topic else None, q)

    @routes.get("/entries/{entry_id}", response_model=staff_kb.EntryOut, responses={404: EDIT_RESPONSES[404]})
    def get_entry(_: StaffDep, entry_id: EntryId) -> Any:
        """One entry's record as stored (YAML, or the staff record that replaces it)."""
        return staff_kb.get_entry(service, entry_id)

    @routes.post("/entries", response_model=staff_kb.EntryOut, status_code=201,
                 responses={**EDIT_RESPONSES, 202: DRAFT_RESPONSE})
    def create_entry(staff: EditorDep, body: staff_kb.EntryRecord) -> Any:
        """Create an entry. Validated exactly like `bhxh kb check` (422 lists file/entry/field
        problems); in force at once, without a restart (an account's edit with approval on: 202, a draft
        waiting for a reviewer); audited and versioned."""
        return editor_api.submit_entry(service, settings, staff, body.raw(), create=True)

    @routes.put("/entries/{entry_id}", response_model=staff_kb.EntryOut,
                responses={**EDIT_RESPONSES, 202: DRAFT_RESPONSE})
    def put_entry(staff: EditorDep, entry_id: EntryId, body: staff_kb.EntryRecord) -> Any:
        """Create or replace an entry with a staff record (the whole record; GET it first to edit).
        Validated like `bhxh kb check`; in force at once (an account's edit with approval on: 202, a draft
        waiting for a reviewer); audited and versioned."""
        return editor_api.submit_entry(service, settings, staff, body.raw(), entry_id=entry_id)

    @routes.delete("/entries/{entry_id}", response_model=RevertResponse, responses=EDIT_RESPONSES)
    def revert_entry(staff: ReviewerDep, entry_id: EntryId) -> Any:
        """Remove the staff record of an entry: back to the YAML version, or gone if staff-created."""
        entry = staff_kb.revert_entry(service, entry_id, staff.name)
        return RevertResponse(reverted=True, entry=entry)

    @routes.post("/entries/{entry_id}/paraphrases", response_model=AttachResponse, responses=EDIT_RESPONSES)
    def attach(staff: EditorDep, entry_id: EntryId, body: AttachRequest) -> Any:
        """Attach a logged question (its normalized, redacted text) to an entry as a paraphrase, so the
        same question is answered with that entry from now on; audited."""
        entry, text = staff_kb.attach_paraphrase(service, entry_id, staff.name, question_id=body.question_id,
                                            text=body.text)
        return AttachResponse(entry=entry, paraphrase=text, version=staff_kb.latest_version_id(service, entry_id))

    @routes.get("/audit", response_model=question_log.AuditPage)
    def audit(_: StaffDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
              offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
              action: Annotated[str | None, Query(max_length=50)] = None) -> Any:
        """Every staff change (who, when, what), newest first."""
        return question_log.audit_log(service.store, limit, offset, action or None)

    return routes
