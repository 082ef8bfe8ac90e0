"""Staff edits to the knowledge base, effective without a restart.

A staff record is a complete entry in the YAML schema, stored as JSON in the `staff_entries`
table. At every (re)load the records are merged over the YAML entries (a record replaces the
YAML entry with the same id, or adds a new entry) and the merged set is validated by
`knowledge.schema.validate_records` — exactly what `bhxh kb check` runs — so a staff edit is
refused with the same file / entry / field problems (`knowledge.schema.Problem`). Problems in staff records are reported
under the file name `staff_entries/<id>`.

    kb = load_knowledge_with_staff(store)      # at start-up (admin_api.app.build_service)
    save_entry(service, record, actor="An")   # validate, persist, audit, rebuild the engine

Every change that goes live is also kept as a version (`entry_versions`: the staff record after and
before it), so it can be shown as a diff and rolled back. With approval on (BHXH_EDIT_APPROVAL), an
account's edit is first a pending version (`propose_entry`, validated the same way) that another person
with the reviewer role approves (`approve`) or rejects; `rollback` restores the state before a live
version. The bearer token ("automation") and paraphrase attachments apply at once (both still versioned).
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import logging
import threading
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.engine import Engine
from bot.service import Service
from knowledge.params import ParameterTable, default_table
from knowledge.schema import ENTRY_DIR, KnowledgeBase, KnowledgeError, Problem, read_entry_records
from knowledge.schema import validate_records as validate_entry_records
from retrieval.normalize import collapse_spaces, nfc, redact_pii
from storage.store import Store

log = logging.getLogger(__name__)

STAFF_FILE = "staff_entries"
_EDIT_LOCK = threading.Lock()  # edits are rare: validate → persist → rebuild, one at a time


class EntryRecord(BaseModel):
    """An entry as in the YAML files. Types are loose on purpose: the knowledge schema validates."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"example": {
        "id": "tt-vi-du-muc-moi", "topic": "procedures", "question": "Câu hỏi chuẩn?",
        "paraphrases": ["cách hỏi 1", "cách hỏi 2", "cách hỏi 3", "cách hỏi 4", "cách hỏi 5", "cách hỏi 6"],
        "answer": "Câu trả lời ngắn gọn.", "sources": ["Luật 41/2024/QH15, Điều 70"],
        "effective_from": "2025-07-01", "reviewed_on": "2026-11-21"}})

    id: str | None = Field(None, description="Stable slug, e.g. 'rut-bhxh-mot-lan' (PUT: defaults to the path id)")
    topic: str | None = None
    question: str | None = None
    paraphrases: list[str] | None = Field(None, description="At least 6 ways people really ask")
    answer: str | None = Field(None, description="Chat-sized answer; {{parameter}} placeholders allowed")
    short: str | None = Field(None, description="Optional one-to-three-line direct answer shown first")
    details: str | None = None
    sources: list[str] | None = None
    effective_from: str | None = Field(None, description="YYYY-MM-DD")
    reviewed_on: str | None = Field(None, description="YYYY-MM-DD")
    related: list[str] | None = None
    audience: list[str] | None = None
    low_confidence: bool | str | None = None

    def raw(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class ProblemOut(BaseModel):
    """A validation problem in the API (`knowledge.schema.Problem`, part by part)."""

    model_config = ConfigDict(title="Problem")

    file: str
    entry: str | None
    field: str | None
    message: str
    text: str = Field(description="The line as `bhxh kb check` prints it")

    @classmethod
    def of(cls, problem: Problem) -> ProblemOut:
        return cls(file=problem.file, entry=problem.entry, field=problem.field, message=problem.message,
                   text=str(problem))


class ProblemReport(BaseModel):
    detail: str
    problems: list[ProblemOut]


class EntryOut(BaseModel):
    id: str
    source: Literal["yaml", "staff"] = Field(description="yaml = as shipped; staff = a staff record (edit or new)")
    file: str = Field(description="YAML file the entry comes from, or staff_entries/<id>")
    record: dict[str, Any]
    updated_ts: str | None = None
    actor: str | None = None


class EntrySummary(BaseModel):
    id: str
    topic: str
    question: str
    paraphrases: int
    source: Literal["yaml", "staff"]


class StaffEditError(Exception):
    """A refused edit: `status` is the HTTP status, `problems` the validation problems (422)."""

    def __init__(self, status: int, detail: str, problems: list[Problem] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.problems = status, detail, problems or []


# ---------------------------------------------------------------- records


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


_YAML_CACHE: dict[tuple[str, tuple[tuple[str, int, int], ...]], list[tuple[str, Any]]] = {}


def yaml_records(directory: Path = ENTRY_DIR) -> list[tuple[str, dict[str, Any]]]:
    """Every raw record of the YAML files, named as load_knowledge names them.

    Parsed once per version of the files (path, mtime, size) and returned as fresh copies."""
    paths = sorted(Path(directory).rglob("*.yaml"))
    signature = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths)
    key = (str(directory), signature)
    if key not in _YAML_CACHE:
        records, problems = read_entry_records(directory)
        if problems:
            raise KnowledgeError(problems)
        _YAML_CACHE.clear()
        _YAML_CACHE[key] = [(name, _jsonable(r)) for name, r in records]
    return copy.deepcopy(_YAML_CACHE[key])


def staff_rows(store: Store) -> dict[str, dict[str, Any]]:
    """id → {record, updated_ts, actor} for every staff record."""
    return store.staff_entries()


def merged_records(yaml_recs: list[tuple[str, dict[str, Any]]], staff: dict[str, dict[str, Any]]
                   ) -> list[tuple[str, dict[str, Any]]]:
    merged = [(where, r) for where, r in yaml_recs if not (isinstance(r, dict) and r.get("id") in staff)]
    merged.extend((f"{STAFF_FILE}/{entry_id}", record) for entry_id, record in staff.items())
    return merged


def validate_records(records: list[tuple[str, dict[str, Any]]], params: ParameterTable | None = None,
                     today: dt.date | None = None) -> tuple[KnowledgeBase | None, list[Problem]]:
    """Run the knowledge schema over the records: (knowledge base, []) or (None, problems)."""
    params = params or default_table()
    try:
        entries, problems = validate_entry_records(list(records), params, today=today)
    except ValueError as exc:  # e.g. a parameter not in force on the day: still a content problem
        return None, [Problem(STAFF_FILE, message=str(exc))]
    if problems:
        return None, problems
    return KnowledgeBase(entries, params), []


def load_knowledge_with_staff(store: Store, directory: Path = ENTRY_DIR, params: ParameterTable | None = None,
                              *, today: dt.date | None = None) -> KnowledgeBase:
    """The YAML entries with the staff records merged over them, validated like `bhxh kb check`.

    A staff record that no longer validates (say the YAML it refers to changed) is left out with
    a warning, so the service still starts; problems in the YAML files themselves raise
    KnowledgeError as `load_knowledge()` does.
    """
    base = yaml_records(directory)
    staff = {k: v["record"] for k, v in staff_rows(store).items()}
    while True:
        kb, problems = validate_records(merged_records(base, staff), params, today)
        if kb is not None:
            return kb
        bad = {p.file.split("/", 1)[1] for p in problems if p.file.startswith(STAFF_FILE + "/")} & set(staff)
        if not bad:
            raise KnowledgeError(problems)
        for entry_id in sorted(bad):
            log.warning("staff entry %r left out: %s", entry_id,
                        "; ".join(p for p in problems if p.file == f"{STAFF_FILE}/{entry_id}"))
            del staff[entry_id]


# ---------------------------------------------------------------- the engine


def reload_engine_kb(service: Service, kb: KnowledgeBase | None = None) -> Engine:
    """Rebuild `service.engine` around `kb` (default: YAML + staff records), keeping its encoder,
    thresholds and search settings. The embedding cache makes this fast: only new texts are
    encoded. The swap is one attribute assignment, so requests in flight finish on the old engine.
    """
    engine = build_engine_like(service.engine, kb or load_knowledge_with_staff(
        service.store, params=service.engine.kb.parameters))
    service.engine = engine
    return engine


def build_engine_like(old: Engine, kb: KnowledgeBase) -> Engine:
    """A new engine around `kb` with the encoder, embedding cache, thresholds and search settings of `old`."""
    cache = old.index.cache
    return Engine(kb, old.index.encoder, cache_dir=cache.path.parent if cache else None,
                  thresholds=old.thresholds, search=old.index.config)


def _record_matches(kb: KnowledgeBase, record: dict[str, Any]) -> bool:
    entry = kb.entries.get(str(record.get("id")))
    return (entry is not None and entry.question == str(record.get("question", "")).strip()
            and list(entry.paraphrases) == [str(p).strip() for p in record.get("paraphrases") or []]
            and entry.answer == str(record.get("answer", "")).strip())


def ensure_staff_entries_loaded(service: Service) -> bool:
    """Reload the engine if it was built without the stored staff records; True if it reloaded."""
    staff = staff_rows(service.store)
    if all(_record_matches(service.engine.kb, v["record"]) for v in staff.values()):
        return False
    log.info("merging %d staff entr%s into the knowledge base", len(staff), "y" if len(staff) == 1 else "ies")
    reload_engine_kb(service)
    return True


# ---------------------------------------------------------------- reads


def _current_records(store: Store) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, dict[str, Any]]]:
    return yaml_records(), staff_rows(store)


def get_entry(service: Service, entry_id: str) -> EntryOut:
    base, staff = _current_records(service.store)
    if entry_id in staff:
        row = staff[entry_id]
        return EntryOut(id=entry_id, source="staff", file=f"{STAFF_FILE}/{entry_id}", record=row["record"],
                        updated_ts=row["updated_ts"], actor=row["actor"])
    for where, record in base:
        if isinstance(record, dict) and record.get("id") == entry_id:
            return EntryOut(id=entry_id, source="yaml", file=where, record=record)
    raise StaffEditError(404, f"Không có mục '{entry_id}'.")


def list_entries(service: Service, topic: str | None = None, contains: str | None = None) -> list[EntrySummary]:
    staff = set(staff_rows(service.store))
    needle = (contains or "").lower()
    out = []
    for entry in service.engine.kb.entries.values():
        if topic and entry.topic != topic:
            continue
        if needle and needle not in entry.id and not any(needle in t.lower() for t in entry.texts()):
            continue
        out.append(EntrySummary(id=entry.id, topic=entry.topic, question=entry.question,
                                paraphrases=len(entry.paraphrases), source="staff" if entry.id in staff else "yaml"))
    return sorted(out, key=lambda e: (e.topic, e.id))


# ---------------------------------------------------------------- edits


def _validated(service: Service, entry_id: str, record: dict[str, Any] | None,
               today: dt.date | None = None) -> KnowledgeBase:
    """The knowledge base with `record` as the staff record of `entry_id` (None: without one), validated
    like `bhxh kb check`; StaffEditError(422) lists the problems, the edited record's own first."""
    base, rows = _current_records(service.store)
    staff = {k: v["record"] for k, v in rows.items()}
    if record is None:
        staff.pop(entry_id, None)
    else:
        staff[entry_id] = record
    kb, problems = validate_records(merged_records(base, staff), service.engine.kb.parameters, today)
    if kb is None:
        raise StaffEditError(422, "Mục không hợp lệ (cùng kiểm tra như `bhxh kb check`).",
                             _relevant(problems, entry_id))
    return kb


def _apply(service: Service, entry_id: str, record: dict[str, Any] | None, actor: str, action: str,
           detail: dict[str, Any], *, version: dict[str, Any] | None = None) -> KnowledgeBase:
    """Validate the knowledge base with `record` as the staff record of `entry_id` (None: remove it),
    then persist, audit, keep the version and rebuild the engine. Caller holds _EDIT_LOCK.
    `version`: extra fields of the version row (reviewer, note); an approved draft passes
    {"existing": id} and no new row is written."""
    kb = _validated(service, entry_id, record)
    previous = staff_rows(service.store).get(entry_id, {}).get("record")
    try:  # build before saving: a failure leaves both the database and the running engine as they were
        engine = build_engine_like(service.engine, kb)
    except Exception as exc:
        log.exception("could not rebuild the engine for a staff edit of %r", entry_id)
        raise StaffEditError(503, f"Chưa áp dụng được thay đổi (không dựng lại được bộ tìm kiếm: {exc}). "
                                  "Vui lòng thử lại sau.") from exc
    if record is None:
        service.store.delete_staff_entry(entry_id)
    else:
        service.store.put_staff_entry(entry_id, record, actor)
    version = dict(version or {})
    if "existing" in version:
        detail = {**detail, "version": version["existing"]}
    else:
        detail = {**detail, "version": service.store.add_version(
            entry_id, actor=actor, action=action, status="live", record=record, previous=previous,
            reviewer=version.get("reviewer", actor), note=version.get("note", ""))}
    service.store.audit(actor, action, entry_id, detail)
    service.engine = engine
    return kb


def _relevant(problems: list[Problem], entry_id: str) -> list[Problem]:
    """The edited record's own problems first; drop the echoes they cause elsewhere
    ("related: unknown entry '<entry_id>'" because the invalid record was left out)."""
    own_file = f"{STAFF_FILE}/{entry_id}"
    own = [p for p in problems if p.file == own_file]
    if not own:
        return problems
    echo = f"unknown entry {entry_id!r}"
    return own + [p for p in problems if p.file != own_file and not (p.field == "related" and p.message == echo)]


def save_entry(service: Service, record: dict[str, Any], actor: str, *, entry_id: str | None = None,
               create: bool = False) -> EntryOut:
    """Create (create=True: refuse an existing id) or replace an entry with a staff record."""
    record, target = _prepared(record, entry_id)
    with _EDIT_LOCK:
        exists = _exists(service, target)
        if create and exists:
            raise StaffEditError(409, f"Mục '{target}' đã có; dùng PUT /admin/entries/{target} để sửa.")
        _apply(service, target, record, actor, "entry.update" if exists else "entry.create",
               {"record": record, "previous_source": _source(service, target) if exists else None})
    return get_entry(service, target)


def _exists(service: Service, entry_id: str) -> bool:
    return entry_id in service.engine.kb.entries or entry_id in staff_rows(service.store)


def _prepared(record: dict[str, Any], entry_id: str | None) -> tuple[dict[str, Any], str]:
    """The record as stored (JSON types) and its id; StaffEditError(422) if the id is missing or differs."""
    record = _jsonable(dict(record))
    if entry_id is not None:
        if record.get("id") is None:
            record["id"] = entry_id
        elif record["id"] != entry_id:
            raise StaffEditError(422, "Mã mục trong nội dung khác mã trên đường dẫn.", [
                Problem(f"{STAFF_FILE}/{entry_id}", record["id"], "id",
                        f"does not match the id in the URL {entry_id!r}")])
    target = record.get("id")
    if not isinstance(target, str) or not target:
        raise StaffEditError(422, "Thiếu mã mục (id).", [Problem(f"{STAFF_FILE}/?", None, "id", "is required")])
    return record, target


def _source(service: Service, entry_id: str) -> str:
    return "staff" if entry_id in staff_rows(service.store) else "yaml"


def revert_entry(service: Service, entry_id: str, actor: str) -> EntryOut | None:
    """Remove the staff record of an entry: back to its YAML version (returned), or gone (None)."""
    with _EDIT_LOCK:
        rows = staff_rows(service.store)
        if entry_id not in rows:
            raise StaffEditError(404, f"Mục '{entry_id}' không có bản sửa của cán bộ.")
        _apply(service, entry_id, None, actor, "entry.revert", {"removed": rows[entry_id]["record"]})
    try:
        return get_entry(service, entry_id)
    except StaffEditError:
        return None


def paraphrase_text(store: Store, question_id: int | None, text: str | None) -> tuple[str, int | None]:
    """The text to attach: the logged question's normalized (already redacted) text, or the given
    text redacted again. Raises StaffEditError(404/422)."""
    if question_id is not None:
        row = store.db.execute("SELECT normalized, text FROM questions WHERE id = ?", [question_id]).fetchone()
        if row is None:
            raise StaffEditError(404, f"Không có câu hỏi số {question_id} trong nhật ký.")
        source = text if text and text.strip() else (row[0] or row[1] or "")
    else:
        source = text or ""
    cleaned = collapse_spaces(redact_pii(nfc(source)))
    if not cleaned:
        raise StaffEditError(422, "Câu hỏi rỗng, không thể thêm làm cách hỏi.",
                             [Problem(STAFF_FILE, None, "paraphrases", "the new paraphrase is empty")])
    return cleaned[:1000], question_id


def attach_paraphrase(service: Service, entry_id: str, actor: str, *, question_id: int | None = None,
                      text: str | None = None) -> tuple[EntryOut, str]:
    """Append a logged question (its normalized, redacted text) to an entry's paraphrases."""
    paraphrase, qid = paraphrase_text(service.store, question_id, text)
    with _EDIT_LOCK:
        current = get_entry(service, entry_id)
        record = dict(current.record)
        existing = [str(p) for p in record.get("paraphrases") or []]
        known = {t.strip().lower() for t in [*existing, str(record.get("question", ""))]}
        if paraphrase.lower() in known:
            raise StaffEditError(409, f"Mục '{entry_id}' đã có cách hỏi này.")
        record["paraphrases"] = [*existing, paraphrase]
        _apply(service, entry_id, record, actor, "entry.paraphrase",
               {"paraphrase": paraphrase, "question_id": qid, "previous_source": current.source})
    return get_entry(service, entry_id), paraphrase


# ---------------------------------------------------------------- drafts, approval, history, rollback


class VersionOut(BaseModel):
    """One proposed or applied change of an entry."""

    id: int
    entry_id: str
    ts: str
    actor: str = Field(description="who wrote the change")
    action: str
    status: Literal["pending", "live", "rejected", "withdrawn"]
    reviewer: str | None = Field(None, description="who approved, rejected or applied it")
    reviewed_ts: str | None = None
    note: str | None = None
    record: dict[str, Any] | None = Field(description="the staff record after the change (null: the YAML version)")
    previous: dict[str, Any] | None = Field(description="the staff record before it (null: the YAML version)")


class PreviewOut(BaseModel):
    """An entry's reply as the bot would give it on `on` (short answer first, then the details)."""

    entry_id: str
    on: str
    title: str
    short: str
    details: str
    text: str
    sources: list[str]


def propose_entry(service: Service, record: dict[str, Any], actor: str, *, entry_id: str | None = None,
                  create: bool = False, note: str = "") -> VersionOut:
    """Keep an edit as a pending version (validated like `bhxh kb check` now, applied on approval)."""
    record, target = _prepared(record, entry_id)
    with _EDIT_LOCK:
        exists = _exists(service, target)
        if create and exists:
            raise StaffEditError(409, f"Mục '{target}' đã có.")
        _validated(service, target, record)
        previous = staff_rows(service.store).get(target, {}).get("record")
        version_id = service.store.add_version(target, actor=actor, action="entry.update" if exists else "entry.create",
                                               status="pending", record=record, previous=previous, note=note[:500])
        service.store.audit(actor, "entry.propose", target, {"version": version_id})
    return get_version(service, version_id)


def get_version(service: Service, version_id: int) -> VersionOut:
    row = service.store.version(version_id)
    if row is None:
        raise StaffEditError(404, f"Không có phiên bản số {version_id}.")
    return VersionOut(**row)


def list_versions(service: Service, entry_id: str | None = None, status: str | None = None,
                  limit: int = 100) -> list[VersionOut]:
    return [VersionOut(**row) for row in service.store.versions(entry_id, status, limit)]


def approve(service: Service, version_id: int, reviewer: str) -> EntryOut | None:
    """Put a pending version live. The reviewer must be another person than its author, and the entry must
    not have changed since the draft was written (409: write it again on the current version)."""
    with _EDIT_LOCK:
        version = get_version(service, version_id)
        if version.status != "pending":
            raise StaffEditError(409, f"Phiên bản số {version_id} không còn chờ duyệt ({version.status}).")
        if version.actor == reviewer:
            raise StaffEditError(403, "Người duyệt phải là người khác người soạn.")
        current = staff_rows(service.store).get(version.entry_id, {}).get("record")
        if current != version.previous:
            raise StaffEditError(409, "Mục đã thay đổi từ khi bản nháp này được soạn; hãy soạn lại trên bản hiện tại.")
        if not service.store.decide_version(version_id, "live", reviewer):
            raise StaffEditError(409, f"Phiên bản số {version_id} vừa được người khác xử lý.")
        try:
            _apply(service, version.entry_id, version.record, version.actor, "entry.approve",
                   {"author": version.actor, "reviewer": reviewer}, version={"existing": version_id})
        except StaffEditError:
            service.store.decide_version(version_id, "pending", reviewer, expected="live")
            raise
    return _entry_or_none(service, version.entry_id)


def reject(service: Service, version_id: int, actor: str, *, withdraw: bool = False) -> VersionOut:
    """Refuse a pending version (a reviewer), or take it back (withdraw=True: its author)."""
    version = get_version(service, version_id)
    if withdraw and version.actor != actor:
        raise StaffEditError(403, "Chỉ người soạn mới rút lại được bản nháp của mình.")
    status = "withdrawn" if withdraw else "rejected"
    if version.status != "pending" or not service.store.decide_version(version_id, status, actor):
        raise StaffEditError(409, f"Phiên bản số {version_id} không còn chờ duyệt.")
    service.store.audit(actor, f"entry.{'withdraw' if withdraw else 'reject'}", version.entry_id,
                        {"version": version_id})
    return get_version(service, version_id)


def rollback(service: Service, version_id: int, actor: str) -> EntryOut | None:
    """Undo a live version: the entry goes back to the state before it (a new live version records it)."""
    with _EDIT_LOCK:
        version = get_version(service, version_id)
        if version.status != "live":
            raise StaffEditError(409, f"Phiên bản số {version_id} chưa từng có hiệu lực; không có gì để hoàn tác.")
        _apply(service, version.entry_id, version.previous, actor, "entry.rollback", {"undone": version_id},
               version={"note": f"Hoàn tác phiên bản #{version_id}"})
    return _entry_or_none(service, version.entry_id)


def latest_version_id(service: Service, entry_id: str) -> int:
    """The newest version of an entry (just after a change: that change's version)."""
    return list_versions(service, entry_id, "live", 1)[0].id


def _entry_or_none(service: Service, entry_id: str) -> EntryOut | None:
    try:
        return get_entry(service, entry_id)
    except StaffEditError:
        return None


def preview(service: Service, record: dict[str, Any], on: dt.date, *, entry_id: str | None = None) -> PreviewOut:
    """The reply the bot would give with `record` in force, figures as on `on`; nothing is saved.
    Validated like `bhxh kb check` (StaffEditError 422 with the problems)."""
    record, target = _prepared(record, entry_id)
    kb = _validated(service, target, record)
    engine = copy.copy(service.engine)  # Engine.answer reads only its knowledge base
    engine.kb = kb
    try:
        reply = engine.answer(kb.entries[target], on)
    except ValueError as exc:  # a figure not in force on that day
        raise StaffEditError(422, f"Không hiển thị được cho ngày {on:%d/%m/%Y}.",
                             [Problem(f"{STAFF_FILE}/{target}", target, "answer", str(exc))]) from exc
    return PreviewOut(entry_id=target, on=on.isoformat(), title=kb.entries[target].question, short=reply.short,
                      details=reply.details, text=reply.text, sources=list(reply.sources))


def yaml_record(entry_id: str) -> dict[str, Any] | None:
    """The entry as shipped in the YAML files (None: staff-created)."""
    return next((r for _, r in yaml_records() if isinstance(r, dict) and r.get("id") == entry_id), None)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line texts as YAML blocks (`|`), so a diff shows their lines as written."""


_BlockDumper.add_representer(str, lambda dumper, text: dumper.represent_scalar(
    "tag:yaml.org,2002:str", text, style="|" if "\n" in text else None))


def record_text(record: dict[str, Any] | None) -> str:
    """A record as YAML text, fields in the files' order, for reading and diffing."""
    if record is None:
        return ""
    return yaml.dump(record, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=10_000)


def diff(before: dict[str, Any] | None, after: dict[str, Any] | None, entry_id: str) -> list[tuple[str, str]]:
    """The line diff (difflib) between two states of an entry, None meaning its YAML version, as
    (kind, line) with kind "+", "-", " " or "@" (a hunk header)."""
    old = record_text(before if before is not None else yaml_record(entry_id)).splitlines()
    new = record_text(after if after is not None else yaml_record(entry_id)).splitlines()
    out = []
    for line in list(difflib.unified_diff(old, new, lineterm="", n=2))[2:]:
        out.append(("@" if line.startswith("@@") else line[:1] or " ", line if line.startswith("@@") else line[1:]))
    return out
