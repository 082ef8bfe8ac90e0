"""The staff API under /admin/: auth, the question log, trends, unanswered clusters, staff edits, audit."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import random
from collections import Counter
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from admin_api import clusters, question_log, staff_kb, trends
from admin_api.app import create_app
from admin_api.demo_traffic import generate
from bot.engine import Engine
from bot.service import Service
from bot.settings import load_settings
from knowledge.schema import load_knowledge
from knowledge.topics import TOPICS
from storage.store import LoggedQuestion, Store, load_hash_key
from tests.fakes.engines import real_engine

TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ODD_QUESTIONS = [  # phrasings the bot should not recognise; the test uses the first one it declines
    "kiếm đâu ra giấy hồng",
    "sổ đỏ của bà ngoại kẹt ở phường thì hỏi ai",
    "xyzzy plugh quạc quạc",
]


@pytest.fixture(scope="module")
def engine(request: pytest.FixtureRequest) -> Engine:
    return real_engine(request)


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "bhxh.db", load_hash_key(tmp_path))


@pytest.fixture
def service(engine: Engine, store: Store) -> Service:
    return Service(engine, store)


@pytest.fixture
def client(service: Service, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    return TestClient(create_app(service, ip_limit=10_000))


def staff(name: str = "Nguyễn Thị Hoa") -> dict[str, str]:
    """The bearer token with a self-declared name: the audit ignores the name (it records "automation")."""
    return {**AUTH, "X-Staff-Name": quote(name)}


def valid_record(entry_id: str = "tt-thu-nghiem-can-bo") -> dict:
    return {
        "id": entry_id, "topic": "procedures",
        "question": "Làm thế nào để đổi ngày hẹn trả kết quả hồ sơ BHXH?",
        "paraphrases": ["đổi ngày hẹn trả hồ sơ bhxh", "doi ngay hen tra ket qua ho so", "muốn lùi ngày nhận kết quả",
                        "giấy hẹn trả kết quả bị trùng lịch thì sao", "có được nhờ người nhận kết quả hộ không",
                        "lỡ hẹn ngày trả kết quả hồ sơ bảo hiểm"],
        "answer": "Bạn có thể đến nhận kết quả vào bất kỳ ngày làm việc nào sau ngày hẹn, hoặc gọi 1900 9068.",
        "sources": ["Luật 41/2024/QH15, Điều 70"], "effective_from": "2025-07-01", "reviewed_on": "2026-11-01",
    }


# ---------------------------------------------------------------- start-up and auth


def test_register_refuses_to_start_without_a_token(service, monkeypatch):
    monkeypatch.delenv("BHXH_ADMIN_TOKEN", raising=False)
    with pytest.raises(RuntimeError, match="BHXH_ADMIN_TOKEN"):
        create_app(service)


def test_invalid_retention_setting_is_refused(service, monkeypatch):
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("BHXH_RETENTION_DAYS", "a year")
    with pytest.raises(RuntimeError, match="BHXH_RETENTION_DAYS"):
        create_app(service)


@pytest.mark.parametrize("path", ["/admin/topics", "/admin/questions", "/admin/unanswered", "/admin/feedback",
                                  "/admin/audit", "/admin/export/questions.csv", "/admin/export/topics.csv",
                                  "/admin/entries", "/admin/topics/daily"])
def test_requests_without_a_valid_token_are_refused(client, path):
    assert client.get(path).status_code == 401
    assert client.get(path, headers={"Authorization": "Bearer wrong-token"}).status_code == 401
    assert client.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code in (401, 403)
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}x"}).status_code == 401
    assert client.get(path, headers=AUTH).status_code == 200


def test_changes_without_a_valid_token_are_refused(client, store):
    assert client.post("/admin/entries", json=valid_record()).status_code == 401
    assert client.put("/admin/entries/x", json=valid_record("x"), headers={"Authorization": "Bearer no"}).status_code \
        == 401
    assert client.post("/admin/entries/x/paraphrases", json={"text": "a"}).status_code == 401
    assert store.db["staff_entries"].count == 0 and store.db["audit"].count == 0


def test_openapi_documents_the_bearer_scheme_and_typed_responses(client):
    spec = client.get("/openapi.json").json()
    assert spec["components"]["securitySchemes"]["StaffToken"] == {
        "type": "http", "scheme": "bearer", "description": "The value of BHXH_ADMIN_TOKEN, as `Authorization: "
                                                          "Bearer <token>` (acts as the admin \"automation\")."}
    topics = spec["paths"]["/admin/topics"]["get"]
    assert topics["security"] == [{"StaffToken": []}]
    assert topics["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TopicsReport")
    assert "rising" in topics["description"] and "0.01" in topics["description"]
    assert "ProblemReport" in str(spec["paths"]["/admin/entries"]["post"]["responses"]["422"])


# ---------------------------------------------------------------- the question log


def test_an_asked_question_is_logged_once_and_redacted(client):
    text = ("Chào ad, tôi tên là Nguyễn Văn An, CCCD 001203004567, số điện thoại 0912345678. "
            "Cho tôi hỏi rút bhxh 1 lần cần giấy tờ gì?")
    asked = client.post("/api/ask", json={"question": text, "user_id": "u-1"})
    assert asked.status_code == 200
    page = client.get("/admin/questions", headers=AUTH).json()
    assert page["total"] == 1 and len(page["items"]) == 1
    row = page["items"][0]
    assert row["id"] == asked.json()["question_id"] and row["channel"] == "web"
    for secret in ("Nguyễn Văn An", "001203004567", "0912345678"):
        assert secret not in row["text"] and secret not in (row["normalized"] or "")
    assert "[TÊN]" in row["text"] and "[CCCD]" in row["text"] and "[SĐT]" in row["text"]
    assert "rút bhxh 1 lần" in row["text"]
    exported = client.get("/admin/export/questions.csv", headers=AUTH).content.decode("utf-8-sig")
    assert "001203004567" not in exported and exported.count("[CCCD]") == 1


def test_questions_filters_and_cursor_pagination(client, store):
    generate(store, days=5, per_day=40, spike_topic=None, seed=3)
    total = store.db["questions"].count
    seen, cursor = [], None
    while True:
        params = {"limit": 37, **({"cursor": cursor} if cursor else {})}
        page = client.get("/admin/questions", params=params, headers=AUTH).json()
        assert page["total"] == total
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == total == len({r["id"] for r in seen})
    assert [(r["ts"], r["id"]) for r in seen] == sorted(((r["ts"], r["id"]) for r in seen), reverse=True)
    matching = [ts for (ts,) in store.db.execute(  # the generated traffic depends on the clock: take its times
        "SELECT ts FROM questions WHERE topic = 'pension' AND channel = 'zalo' AND outcome = 'answered' ORDER BY ts")]
    since = matching[len(matching) // 2]
    page = client.get("/admin/questions", headers=AUTH, params={
        "topic": "pension", "channel": "zalo", "outcome": "answered", "from": since, "limit": 500}).json()
    assert page["total"] == len(page["items"]) == len(matching) - len(matching) // 2 > 0
    assert all(r["topic"] == "pension" and r["channel"] == "zalo" and r["outcome"] == "answered"
               and r["ts"] >= since[:19] for r in page["items"])
    assert client.get("/admin/questions", params={"topic": "weather"}, headers=AUTH).status_code == 422
    assert client.get("/admin/questions", params={"cursor": "%%%"}, headers=AUTH).status_code == 422


# ---------------------------------------------------------------- trends


def test_the_demo_traffic_spike_is_flagged_as_rising(client, store):
    generate(store, days=28, per_day=150, spike_topic="maternity", spike_factor=3.0, seed=11)
    report = client.get("/admin/topics", params={"days": 7}, headers=AUTH).json()
    assert [t["topic"] for t in report["topics"]].count("maternity") == 1
    assert {t["topic"] for t in report["topics"]} == set(TOPICS)  # every topic, zero counts included
    by_topic = {t["topic"]: t for t in report["topics"]}
    spike = by_topic["maternity"]
    assert spike["rising"] and spike["p_value"] < 0.01 and spike["current"] >= 1.5 * spike["previous"]
    assert [t["topic"] for t in report["topics"] if t["rising"]] == ["maternity"]
    assert "Binomial" in report["test"] and report["total_current"] >= sum(t["current"] for t in report["topics"])
    assert client.get("/admin/topics", params={"days": 7, "channel": "nowhere"}, headers=AUTH).json()[
        "total_current"] == 0


def test_zero_topics_are_listed_for_an_empty_log(client):
    report = client.get("/admin/topics", headers=AUTH).json()
    assert len(report["topics"]) == len(TOPICS)
    assert all(t["current"] == t["previous"] == 0 and not t["rising"] for t in report["topics"])


def test_topic_counts_from_daily_totals_match_the_log(store):
    """Whole Vietnam days come from the trigger-kept daily table, partial days from the log."""
    now = dt.datetime(2026, 11, 20, 16, 59, 59, tzinfo=dt.UTC)  # one second before a Vietnam midnight
    generate(store, days=20, per_day=60, now=now, seed=13)
    store.db.execute("DELETE FROM questions WHERE id % 17 = 0")  # the triggers follow deletions
    store.db.execute("UPDATE questions SET topic = 'pension' WHERE id % 13 = 0")  # …and updates
    rng = random.Random(13)
    for _ in range(40):
        end = now - dt.timedelta(hours=rng.uniform(0, 24 * 20))
        start = end - dt.timedelta(hours=rng.choice([0.5, 7, 24, 24 * 7, rng.uniform(0, 24 * 15)]))
        channel = rng.choice([None, "zalo", "web"])
        sql = "SELECT topic, COUNT(*) FROM questions WHERE ts >= ? AND ts < ?" + (" AND channel = ?" if channel
                                                                                  else "") + " GROUP BY topic"
        expected = dict(store.db.execute(sql, [trends.ts_string(start), trends.ts_string(end),
                                               *([channel] if channel else [])]).fetchall())
        assert +trends.topic_counts(store, start, end, channel) == +Counter(expected)


@given(st.integers(0, 400), st.integers(0, 400))
def test_binomial_tail_matches_the_exact_sum(current, previous):
    n = current + previous
    exact = sum(math.comb(n, k) for k in range(current, n + 1)) / 2**n
    assert trends.binomial_upper_tail(current, n) == pytest.approx(exact, rel=1e-9, abs=1e-12)


def test_rising_needs_significance_size_and_ratio():
    assert trends.rising(30, 10)[1]
    assert not trends.rising(9, 0)[1]  # too few
    assert not trends.rising(1100, 1000)[1]  # significant at this volume, but not a 1.5x rise
    assert not trends.rising(14, 10)[1]


# ---------------------------------------------------------------- unanswered and feedback


def test_cluster_texts_groups_wordings_and_keeps_topics_apart():
    texts = ["quen mat khau vssid", "quên mật khẩu vssid", "cho hỏi quên mật khẩu vssid rồi",
             "giá vàng hôm nay", "gia vang hom nay", "lương hưu tối thiểu"]
    groups = sorted(sorted(g) for g in clusters.cluster_texts(texts))
    assert groups == [[0, 1, 2], [3, 4], [5]]


def test_unanswered_questions_are_clustered_with_their_nearest_entries(client, store):
    generate(store, days=7, per_day=120, spike_topic=None, seed=5)
    report = client.get("/admin/unanswered", params={"days": 7, "limit": 50}, headers=AUTH).json()
    assert report["questions"] > 0 and report["clusters"]
    sizes = [c["size"] for c in report["clusters"]]
    assert sizes == sorted(sizes, reverse=True) and sum(sizes) <= report["questions"]
    assert any("vssid" in c["representative"] for c in report["clusters"])
    # Different wordings of one hard question end up in one cluster.
    assert any(c["distinct_texts"] >= 2 for c in report["clusters"])
    for cluster in report["clusters"]:
        assert cluster["examples"] and cluster["question_ids"]
        assert all(n["entry_id"] in client.app.state.service.engine.kb.entries for n in cluster["nearest"])
    assert any(c["nearest"] for c in report["clusters"])
    with_oos = client.get("/admin/unanswered", params={"include_out_of_scope": True}, headers=AUTH).json()
    assert with_oos["questions"] > report["questions"]  # weather and gold-price questions join


def test_feedback_is_counted_per_entry(client, service):
    client.post("/api/feedback", json={"entry_id": "lh-dieu-kien-huong-luong-huu", "value": 1, "user_id": "a"})
    client.post("/api/feedback", json={"entry_id": "lh-dieu-kien-huong-luong-huu", "value": -1, "user_id": "b"})
    qid = service.store.log_question(LoggedQuestion("web", "c", "lương hưu", "lương hưu", "pension",
                                                    "lh-moc-15-nam-luat-moi", 0.9, "answered", "answer", 5.0))
    client.post("/api/feedback", json={"question_id": qid, "value": -1, "user_id": "c"})
    report = client.get("/admin/feedback", headers=AUTH).json()
    rows = {r["entry_id"]: r for r in report["entries"]}
    assert (rows["lh-dieu-kien-huong-luong-huu"]["up"], rows["lh-dieu-kien-huong-luong-huu"]["down"]) == (1, 1)
    assert rows["lh-moc-15-nam-luat-moi"]["down"] == 1  # the vote's entry comes from its question
    assert report["up"] == 1 and report["down"] == 2
    assert rows["lh-dieu-kien-huong-luong-huu"]["question"].startswith("Cần những điều kiện")


# ---------------------------------------------------------------- CSV


def test_csv_exports_parse(client, store):
    generate(store, days=3, per_day=30, spike_topic=None, seed=9)
    response = client.get("/admin/export/questions.csv", headers=AUTH)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == store.db["questions"].count
    assert set(rows[0]) == {"time (Asia/Ho_Chi_Minh, UTC+07:00)"} | set(question_log.QUESTION_COLUMNS) - {"ts"}
    newest = store.db.execute("SELECT ts FROM questions ORDER BY ts DESC, id DESC").fetchone()[0]
    utc = dt.datetime.fromisoformat(newest.replace("Z", "+00:00"))
    assert rows[0]["time (Asia/Ho_Chi_Minh, UTC+07:00)"] == (utc + dt.timedelta(hours=7)).strftime("%Y-%m-%d %H:%M:%S")
    assert {r["outcome"] for r in rows} <= {"answered", "choices", "declined"}
    assert all(not r["text"].startswith(("=", "+", "-", "@")) for r in rows)
    limited = client.get("/admin/export/questions.csv", params={"limit": 5, "channel": "web"}, headers=AUTH)
    assert len(list(csv.DictReader(io.StringIO(limited.content.decode("utf-8-sig"))))) == 5
    topics = list(csv.DictReader(io.StringIO(
        client.get("/admin/export/topics.csv", params={"days": 3}, headers=AUTH).content.decode("utf-8-sig"))))
    assert len(topics) == 3 * (len(TOPICS) + 1)
    assert sum(int(r["questions"]) for r in topics) == store.db["questions"].count
    assert all(int(r["questions"]) == int(r["answered"]) + int(r["choices"]) + int(r["declined"]) for r in topics)


def test_the_export_pages_through_the_log_in_chunks(store):
    generate(store, days=2, per_day=40, spike_topic=None, seed=17)
    expected = [r[0] for r in store.db.execute("SELECT id FROM questions ORDER BY ts DESC, id DESC")]
    everything = question_log.QuestionFilter()
    assert [r[0] for r in question_log.iter_questions(store, everything, limit=10**6, chunk=7)] == expected
    assert [r[0] for r in question_log.iter_questions(store, everything, limit=20, chunk=7)] == expected[:20]


def test_csv_cells_never_start_a_formula(client, service):
    service.store.log_question(LoggedQuestion("web", "u", "=HYPERLINK(\"http://x\")", "=hyperlink", None, None, 0.0,
                                              "declined", "not_sure", 1.0))
    text = client.get("/admin/export/questions.csv", headers=AUTH).content.decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["text"].startswith("'=")


# ---------------------------------------------------------------- staff edits


def test_an_attached_paraphrase_answers_the_next_identical_question_without_a_restart(client, service, engine):
    odd = None
    for text in ODD_QUESTIONS:
        reply = client.post("/api/ask", json={"question": text, "user_id": "citizen"}).json()
        if not reply["answered"] and reply["kind"] in ("not_sure", "choices", "out_of_scope"):
            odd = text
            break
    assert odd is not None, "the engine answered every odd phrasing"
    report = client.get("/admin/unanswered", params={"include_out_of_scope": True}, headers=AUTH).json()
    cluster = next(c for c in report["clusters"] if c["examples"][0] == odd)
    target = "lh-dieu-kien-huong-luong-huu"
    attached = client.post(f"/admin/entries/{target}/paraphrases", json={"question_id": cluster["question_ids"][0]},
                           headers=staff())
    assert attached.status_code == 200, attached.text
    assert attached.json()["paraphrase"] == cluster["representative"]
    assert attached.json()["entry"]["source"] == "staff"
    assert service.engine is not engine  # rebuilt in place
    again = client.post("/api/ask", json={"question": odd, "user_id": "citizen-2"}).json()
    assert again["answered"] and again["entry_id"] == target
    duplicate = client.post(f"/admin/entries/{target}/paraphrases", json={"question_id": cluster["question_ids"][0]},
                            headers=staff())
    assert duplicate.status_code == 409
    audit = client.get("/admin/audit", headers=AUTH).json()["items"]
    assert audit[0]["action"] == "entry.paraphrase" and audit[0]["actor"] == "automation"
    assert audit[0]["target"] == target and audit[0]["detail"]["paraphrase"] == cluster["representative"]

    # A restart (a new service on the same database) keeps the edit.
    restarted = Service(engine, service.store)
    TestClient(create_app(restarted))
    assert restarted.engine.entry_reply(target) is not None
    assert restarted.engine.ask(odd).entry_id == target


def test_the_bearer_token_acts_as_automation_whatever_name_it_declares(client, service):
    """The audit records who really acted (review: the self-declared X-Staff-Name was unverifiable)."""
    response = client.post("/admin/entries", json=valid_record(),
                           headers={**AUTH, "X-Staff-Name": "Lê Văn Bình".encode()})
    assert response.status_code == 201, response.text
    assert service.store.db.execute("SELECT actor FROM audit").fetchone()[0] == "automation"


def test_create_and_edit_validation_errors_are_422_with_file_entry_field(client, service):
    bad = {**valid_record("tt-sai"), "topic": "weather", "paraphrases": ["một", "hai"], "effective_from": "2025-13-01",
           "answer": "Mức đóng {{no_such_parameter}}", "colour": "red"}
    response = client.post("/admin/entries", json=bad, headers=staff())
    assert response.status_code == 422
    problems = response.json()["problems"]
    assert problems and all(p["file"] == "staff_entries/tt-sai" and p["entry"] == "tt-sai" for p in problems)
    assert any(p["field"] == "colour" and p["message"] == "unknown field" for p in problems)
    bad.pop("colour")
    problems = client.post("/admin/entries", json=bad, headers=staff()).json()["problems"]
    fields = {p["field"]: p["message"] for p in problems}
    assert {"topic", "paraphrases", "effective_from", "answer"} <= set(fields)
    assert "needs at least 6" in fields["paraphrases"] and "no_such_parameter" in fields["answer"]
    assert all(p["text"].startswith("staff_entries/tt-sai: entry 'tt-sai': field '") for p in problems)

    existing = staff_kb.get_entry(service, "lh-dieu-kien-huong-luong-huu").record
    edit = {**existing, "related": ["khong-co-muc-nay"]}
    response = client.put("/admin/entries/lh-dieu-kien-huong-luong-huu", json=edit, headers=staff())
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "related"
    assert "khong-co-muc-nay" in response.json()["problems"][0]["message"]
    mismatch = client.put("/admin/entries/lh-dieu-kien-huong-luong-huu", json=valid_record(), headers=staff())
    assert mismatch.status_code == 422 and mismatch.json()["problems"][0]["field"] == "id"
    assert service.store.db["staff_entries"].count == 0 and service.store.db["audit"].count == 0


def test_create_edit_and_revert_take_effect_at_once_and_are_audited(client, service):
    created = client.post("/admin/entries", json=valid_record(), headers=staff("Trần An"))
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "staff" and created.json()["file"] == "staff_entries/tt-thu-nghiem-can-bo"
    reply = client.post("/api/ask", json={"question": "lỡ hẹn ngày trả kết quả hồ sơ bảo hiểm"}).json()
    assert reply["entry_id"] == "tt-thu-nghiem-can-bo"
    assert client.post("/admin/entries", json=valid_record(), headers=staff()).status_code == 409

    record = {**valid_record(), "answer": "Câu trả lời đã sửa: gọi tổng đài 1900 9068."}
    edited = client.put("/admin/entries/tt-thu-nghiem-can-bo", json=record, headers=staff("Trần An"))
    assert edited.status_code == 200 and edited.json()["record"]["answer"].startswith("Câu trả lời đã sửa")
    assert service.engine.entry_reply("tt-thu-nghiem-can-bo").text.startswith("Câu trả lời đã sửa")

    yaml_entry = client.get("/admin/entries/lh-moc-15-nam-luat-moi", headers=AUTH).json()
    assert yaml_entry["source"] == "yaml" and yaml_entry["file"] == "entries/pension.yaml"
    changed = {**yaml_entry["record"], "question": "Đóng đủ 15 năm là có lương hưu, đúng không?"}
    assert client.put("/admin/entries/lh-moc-15-nam-luat-moi", json=changed, headers=staff()).status_code == 200
    assert service.engine.kb.entries["lh-moc-15-nam-luat-moi"].question == changed["question"]
    reverted = client.delete("/admin/entries/lh-moc-15-nam-luat-moi", headers=staff()).json()
    assert reverted["entry"]["source"] == "yaml"
    assert service.engine.kb.entries["lh-moc-15-nam-luat-moi"].question == yaml_entry["record"]["question"]
    gone = client.delete("/admin/entries/tt-thu-nghiem-can-bo", headers=staff()).json()
    assert gone == {"reverted": True, "entry": None}
    assert "tt-thu-nghiem-can-bo" not in service.engine.kb.entries
    assert client.delete("/admin/entries/tt-thu-nghiem-can-bo", headers=staff()).status_code == 404

    audit = client.get("/admin/audit", headers=AUTH).json()
    actions = [(r["action"], r["target"], r["actor"]) for r in reversed(audit["items"])]
    assert actions == [
        ("entry.create", "tt-thu-nghiem-can-bo", "automation"), ("entry.update", "tt-thu-nghiem-can-bo", "automation"),
        ("entry.update", "lh-moc-15-nam-luat-moi", "automation"),
        ("entry.revert", "lh-moc-15-nam-luat-moi", "automation"),
        ("entry.revert", "tt-thu-nghiem-can-bo", "automation")]
    assert all(r["ts"].endswith("Z") for r in audit["items"]) and audit["total"] == 5
    assert client.get("/admin/audit", params={"action": "entry.create"}, headers=AUTH).json()["total"] == 1


def test_load_knowledge_with_staff_merges_and_skips_broken_records(store):
    store.db["staff_entries"].insert({"id": "tt-thu-nghiem-can-bo", "record": json.dumps(valid_record()),
                                      "updated_ts": "x", "actor": "a"})
    store.db["staff_entries"].insert({"id": "tt-hong", "record": '{"id": "tt-hong", "topic": "nope"}',
                                      "updated_ts": "x", "actor": "a"})
    kb = staff_kb.load_knowledge_with_staff(store)
    assert "tt-thu-nghiem-can-bo" in kb.entries and "tt-hong" not in kb.entries
    assert len(kb.entries) == len(load_knowledge().entries) + 1


# ---------------------------------------------------------------- retention


def test_retention_applies_at_start_up(service, monkeypatch):
    monkeypatch.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv("BHXH_RETENTION_DAYS", "30")
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(days=31)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    service.store.log_question(LoggedQuestion("web", "u", "cũ", "cũ", None, None, 0.0, "declined", "not_sure", 1.0,
                                              ts=old))
    service.store.log_question(LoggedQuestion("web", "u", "mới", "mới", None, None, 0.0, "declined", "not_sure", 1.0))
    app = create_app(service)
    assert service.store.db["questions"].count == 2  # nothing happens before the server starts
    with TestClient(app) as client:
        assert [r["text"] for r in client.get("/admin/questions", headers=AUTH).json()["items"]] == ["mới"]
        assert client.get("/admin/audit", params={"action": "retention"}, headers=AUTH).json()["total"] == 1
    daily = service.store.db.execute("SELECT SUM(n) FROM question_daily").fetchone()[0]
    assert daily == 1  # the daily counts follow deletions


def test_the_questions_export_honours_the_period_in_vietnam_days_and_names_the_province(service, monkeypatch):
    from admin_api import reports
    from bot.settings import Settings

    generate(service.store, days=10, per_day=20, spike_topic=None, seed=5)
    settings = Settings(data_dir=load_settings().data_dir, embed_model="none", admin_token=TOKEN,
                        province="Tỉnh Lâm Đồng")
    client = TestClient(create_app(service, settings=settings, ip_limit=10_000))
    response = client.get("/admin/export/questions.csv", params={"days": 3, "channel": "web"}, headers=AUTH)
    start, end, first, last = reports.local_window(3)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="questions_tinh-lam-dong_{first.isoformat()}_{last.isoformat()}.csv"')
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    expected = service.store.db.execute("SELECT COUNT(*) FROM questions WHERE ts >= ? AND ts < ? AND channel = 'web'",
                                        [trends.ts_string(start), trends.ts_string(end)]).fetchone()[0]
    everything = service.store.db.execute("SELECT COUNT(*) FROM questions WHERE channel = 'web'").fetchone()[0]
    assert 0 < len(rows) == expected < everything
    times = [r["time (Asia/Ho_Chi_Minh, UTC+07:00)"] for r in rows]
    assert min(times) >= f"{first.isoformat()} 00:00:00" and max(times) <= f"{last.isoformat()} 23:59:59"
    assert {r["province"] for r in rows} == {"Tỉnh Lâm Đồng"} and {r["channel"] for r in rows} == {"web"}
    topics = client.get("/admin/export/topics.csv", params={"days": 3}, headers=AUTH)
    assert "topics_tinh-lam-dong_" in topics.headers["content-disposition"]
    topic_rows = list(csv.DictReader(io.StringIO(topics.content.decode("utf-8-sig"))))
    assert {r["day (Asia/Ho_Chi_Minh)"] for r in topic_rows} == {
        (first + dt.timedelta(days=i)).isoformat() for i in range(3)}
    assert {r["province"] for r in topic_rows} == {"Tỉnh Lâm Đồng"}


def test_hour_and_weekday_patterns_count_every_question_of_the_period(client, service):
    generate(service.store, days=21, per_day=30, spike_topic=None, seed=8)
    report = client.get("/admin/patterns", params={"days": 14}, headers=AUTH).json()
    from admin_api import reports

    start, end, first, _ = reports.local_window(14)
    in_window = service.store.db.execute("SELECT COUNT(*) FROM questions WHERE ts >= ? AND ts < ?",
                                         [trends.ts_string(start), trends.ts_string(end)]).fetchone()[0]
    assert sum(report["hours"]) == sum(report["weekdays"]) == in_window > 0
    assert report["timezone"] == "Asia/Ho_Chi_Minh" and report["first_day"] == first.isoformat()
    assert sum(report["weekday_days"]) == 14 and report["weekday_days"] == [2] * 7
    assert report["weekday_labels"][0] == "Thứ Hai" and len(report["hours"]) == 24
    web = client.get("/admin/patterns", params={"days": 14, "channel": "web", "topic": "pension"}, headers=AUTH).json()
    assert 0 < sum(web["hours"]) < in_window


def test_the_dashboard_draws_the_hour_and_weekday_patterns_and_exports_its_period(client, service):
    generate(service.store, days=14, per_day=20, spike_topic=None, seed=3)
    html = client.get("/admin/dashboard", params={"days": 7, "channel": "web"}, headers=AUTH).text
    assert html.count('<svg class="pattern chart"') == 2
    assert "Theo giờ trong ngày" in html and "Theo thứ trong tuần" in html and "<title>Thứ Hai: trung bình" in html
    assert 'href="/admin/export/questions.csv?days=7&amp;channel=web&amp;limit=100000"' in html
