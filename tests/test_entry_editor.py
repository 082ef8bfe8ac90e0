"""Fixing entries safely through the staff API: roles, drafts that wait for a second person, version history
with diffs, rollback, preview on a chosen date, paraphrase undo, and accounts (issue 18 items 3 and 4)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from admin_api import accounts
from admin_api.app import create_app
from bot.engine import Engine
from bot.service import Service
from bot.settings import Settings
from storage.store import Store, load_hash_key

TOKEN = "test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PASSWORD = "mat-khau-rat-dai-1"
ENTRY = "lh-moc-15-nam-luat-moi"


@pytest.fixture
def service(lexical_engine: Engine, tmp_path: Path) -> Service:
    store = Store(tmp_path / "bhxh.db", load_hash_key(tmp_path))
    for name, role in (("xem", "viewer"), ("hoa", "editor"), ("binh", "editor"), ("lan", "reviewer"),
                       ("quan", "admin")):
        accounts.add_account(store, name, role, PASSWORD)
    return Service(lexical_engine, store)


def make_app(service: Service, tmp_path: Path, approval: bool = True):
    settings = Settings(data_dir=tmp_path, embed_model="none", admin_token=TOKEN, edit_approval=approval)
    return create_app(service, settings=settings, ip_limit=10_000)


@pytest.fixture
def app(service: Service, tmp_path: Path):
    return make_app(service, tmp_path)


def signed_in(app, name: str) -> TestClient:
    """A browser-like client signed in as `name`, sending the session's CSRF value with its changes."""
    client = TestClient(app, follow_redirects=False)
    response = client.post("/admin/login", data={"name": name, "password": PASSWORD})
    assert response.status_code == 303, response.text
    me = client.get("/admin/me").json()
    assert me["name"] == name
    client.headers["X-CSRF-Token"] = me["csrf"]
    return client


def edited(client: TestClient, answer: str) -> dict:
    record = client.get(f"/admin/entries/{ENTRY}").json()["record"]
    return {**record, "answer": answer}


NEW_ANSWER = ("Từ 1/7/2025, đóng đủ {{min_pension_years}} năm BHXH là đủ điều kiện về thời gian để hưởng lương hưu "
              "(Luật 41/2024/QH15).")


def test_a_viewer_reads_but_cannot_edit_approve_or_manage(app, service):
    viewer = signed_in(app, "xem")
    assert viewer.get("/admin/entries").status_code == 200
    assert viewer.get(f"/admin/entries/{ENTRY}/versions").json() == []
    refused = viewer.put(f"/admin/entries/{ENTRY}", json=edited(viewer, NEW_ANSWER))
    assert refused.status_code == 403 and "Biên tập" in refused.json()["detail"]
    assert viewer.post("/admin/versions/1/approve").status_code == 403
    assert viewer.get("/admin/accounts").status_code == 403
    assert service.store.versions() == [] and service.store.staff_entries() == {}


def test_a_session_change_needs_the_csrf_value(app):
    editor = signed_in(app, "hoa")
    record = edited(editor, NEW_ANSWER)
    del editor.headers["X-CSRF-Token"]
    assert editor.put(f"/admin/entries/{ENTRY}", json=record).status_code == 401
    editor.headers["X-CSRF-Token"] = "0" * 64
    assert editor.put(f"/admin/entries/{ENTRY}", json=record).status_code == 401


def test_an_editors_change_waits_for_a_reviewer_and_rollback_restores(app, service):
    before = service.engine.kb.entries[ENTRY].answer
    editor, reviewer = signed_in(app, "hoa"), signed_in(app, "lan")

    draft = editor.put(f"/admin/entries/{ENTRY}", json=edited(editor, NEW_ANSWER))
    assert draft.status_code == 202, draft.text
    version = draft.json()
    assert (version["status"], version["actor"], version["previous"]) == ("pending", "hoa", None)
    assert service.engine.kb.entries[ENTRY].answer == before  # not live yet
    assert [v["id"] for v in reviewer.get("/admin/versions", params={"status": "pending"}).json()] == [version["id"]]

    shown = reviewer.get(f"/admin/versions/{version['id']}").json()
    assert {"kind": "+", "text": f"answer: {NEW_ANSWER}"} in shown["diff"]
    assert any(line["kind"] == "-" and line["text"].startswith("answer:") for line in shown["diff"])
    assert editor.post(f"/admin/versions/{version['id']}/approve").status_code == 403  # an editor cannot approve

    approved = reviewer.post(f"/admin/versions/{version['id']}/approve")
    assert approved.status_code == 200, approved.text
    assert service.engine.kb.entries[ENTRY].answer == NEW_ANSWER
    assert reviewer.post(f"/admin/versions/{version['id']}/approve").status_code == 409  # decided already

    rolled = reviewer.post(f"/admin/versions/{version['id']}/rollback")
    assert rolled.status_code == 200 and rolled.json()["source"] == "yaml"
    assert service.engine.kb.entries[ENTRY].answer == before
    history = editor.get(f"/admin/entries/{ENTRY}/versions").json()
    assert [(v["action"], v["status"], v["actor"], v["reviewer"]) for v in history] == [
        ("entry.rollback", "live", "lan", "lan"), ("entry.update", "live", "hoa", "lan")]
    audit = [(r["action"], r["actor"]) for r in reviewer.get("/admin/audit").json()["items"]]
    assert audit == [("entry.rollback", "lan"), ("entry.approve", "hoa"), ("entry.propose", "hoa")]


def test_the_author_cannot_approve_their_own_draft_and_a_stale_draft_is_refused(app, service):
    reviewer, other = signed_in(app, "lan"), signed_in(app, "quan")
    own = reviewer.put(f"/admin/entries/{ENTRY}", json=edited(reviewer, NEW_ANSWER)).json()
    refused = reviewer.post(f"/admin/versions/{own['id']}/approve")
    assert refused.status_code == 403 and "người khác" in refused.json()["detail"]
    second = signed_in(app, "hoa").put(f"/admin/entries/{ENTRY}",
                                       json=edited(other, NEW_ANSWER + " Gọi 1900 9068.")).json()
    assert other.post(f"/admin/versions/{own['id']}/approve").status_code == 200
    stale = other.post(f"/admin/versions/{second['id']}/approve")
    assert stale.status_code == 409 and "đã thay đổi" in stale.json()["detail"]
    assert service.store.version(second["id"])["status"] == "pending"


def test_a_draft_is_validated_like_kb_check_before_it_is_kept(app, service):
    editor = signed_in(app, "hoa")
    bad = editor.put(f"/admin/entries/{ENTRY}", json={**edited(editor, "{{khong_co_tham_so}}"), "sources": []})
    assert bad.status_code == 422
    assert {p["field"] for p in bad.json()["problems"]} >= {"sources"}
    assert service.store.versions() == []


def test_without_approval_an_editors_change_is_live_at_once_and_versioned(service, tmp_path):
    editor = signed_in(make_app(service, tmp_path, approval=False), "hoa")
    response = editor.put(f"/admin/entries/{ENTRY}", json=edited(editor, NEW_ANSWER))
    assert response.status_code == 200 and response.json()["actor"] == "hoa"
    assert service.engine.kb.entries[ENTRY].answer == NEW_ANSWER
    [version] = service.store.versions(ENTRY)
    assert (version["status"], version["reviewer"]) == ("live", "hoa")


def test_preview_renders_the_reply_for_a_chosen_date_without_saving(app, service):
    editor = signed_in(app, "hoa")
    record = edited(editor, "Mức tham chiếu là {{reference_level}}.")
    record["short"] = "Mức tham chiếu: {{reference_level}}."
    shown = {}
    for day in ("2026-06-01", "2026-12-03"):  # the level changed on 1/7/2026
        response = editor.post(f"/admin/entries/{ENTRY}/preview", params={"on": day}, json=record)
        assert response.status_code == 200, response.text
        shown[day] = response.json()
        assert shown[day]["on"] == day and "{{" not in shown[day]["text"] and shown[day]["sources"]
    assert "2.340.000" in shown["2026-06-01"]["short"] and "2.530.000" in shown["2026-12-03"]["short"]
    assert shown["2026-12-03"]["title"] == service.engine.kb.entries[ENTRY].question
    problems = editor.post(f"/admin/entries/{ENTRY}/preview", json={**record, "answer": "{{khong_co}}"})
    assert problems.status_code == 422 and problems.json()["problems"]
    assert service.store.versions() == [] and service.store.staff_entries() == {}


def test_an_attached_paraphrase_can_be_undone_by_its_author(app, service):
    editor, other = signed_in(app, "hoa"), signed_in(app, "binh")
    attached = editor.post(f"/admin/entries/{ENTRY}/paraphrases", json={"text": "đủ mười lăm năm chưa ạ"})
    assert attached.status_code == 200, attached.text
    version = attached.json()["version"]
    assert "đủ mười lăm năm chưa ạ" in service.engine.kb.entries[ENTRY].paraphrases  # live at once
    assert other.post(f"/admin/versions/{version}/rollback").status_code == 403  # not theirs
    assert editor.post(f"/admin/versions/{version}/rollback").status_code == 200
    assert "đủ mười lăm năm chưa ạ" not in service.engine.kb.entries[ENTRY].paraphrases


def test_admins_manage_accounts_and_a_disabled_account_is_signed_out(app, service):
    admin, editor = signed_in(app, "quan"), signed_in(app, "hoa")
    assert [a["name"] for a in admin.get("/admin/accounts").json()] == ["binh", "hoa", "lan", "quan", "xem"]
    assert "password_hash" not in admin.get("/admin/accounts").json()[0]
    created = admin.post("/admin/accounts", json={"name": "Minh.TV", "role": "reviewer", "password": PASSWORD})
    assert created.status_code == 201 and created.json()["name"] == "minh.tv"
    assert admin.post("/admin/accounts", json={"name": "automation", "role": "admin",
                                               "password": PASSWORD}).status_code == 422
    assert editor.post("/admin/accounts", json={"name": "x1", "role": "admin", "password": PASSWORD}).status_code == 403
    assert admin.patch("/admin/accounts/hoa", json={"disabled": True}).status_code == 200
    assert editor.get("/admin/entries").status_code == 401  # the session ends with the account
    assert TestClient(app).post("/admin/login", data={"name": "hoa", "password": PASSWORD}).status_code == 401


def test_a_new_password_ends_older_sessions_and_hashes_are_argon2(app, service):
    editor = signed_in(app, "hoa")
    stored = service.store.account("hoa")["password_hash"]
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    accounts.change_account(service.store, "hoa", password="mot-mat-khau-moi-2")
    assert editor.get("/admin/entries").status_code == 401
    assert TestClient(app).post("/admin/login", data={"name": "hoa", "password": PASSWORD}).status_code == 401
    signed_in_again = TestClient(app, follow_redirects=False)
    response = signed_in_again.post("/admin/login", data={"name": "hoa", "password": "mot-mat-khau-moi-2"})
    assert response.status_code == 303


def test_the_bearer_token_is_the_automation_admin_and_applies_at_once(app, service):
    client = TestClient(app)
    assert client.get("/admin/me", headers=AUTH).json()["name"] == "automation"
    record = client.get(f"/admin/entries/{ENTRY}", headers=AUTH).json()["record"]
    response = client.put(f"/admin/entries/{ENTRY}", json={**record, "answer": NEW_ANSWER}, headers=AUTH)
    assert response.status_code == 200 and service.engine.kb.entries[ENTRY].answer == NEW_ANSWER
    assert service.store.versions(ENTRY)[0]["actor"] == "automation"


def test_staff_command_adds_lists_and_disables_accounts(tmp_path, capsys, monkeypatch):
    from bhxh.cli import main

    monkeypatch.setenv("BHXH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BHXH_DATABASE_URL", raising=False)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(PASSWORD + "\n"))
    assert main(["staff", "add", "thu.pt", "--role", "editor", "--password-stdin"]) == 0
    assert main(["staff", "disable", "thu.pt"]) == 0
    assert main(["staff", "list"]) == 0
    assert main(["staff", "role", "nobody", "admin"]) == 2
    out = capsys.readouterr()
    assert "thu.pt\teditor\tkhóa" in out.out and "Không có tài khoản «nobody»" in out.err
    store = Store(tmp_path / "bhxh.db", load_hash_key(tmp_path))
    assert store.account("thu.pt")["disabled"] and store.account("thu.pt")["role"] == "editor"


def test_settings_read_approval_and_province():
    from bot.settings import load_settings

    assert load_settings({}).edit_approval is True and load_settings({}).province == ""
    settings = load_settings({"BHXH_EDIT_APPROVAL": "0", "BHXH_PROVINCE": "  Tỉnh  Lâm Đồng "})
    assert settings.edit_approval is False and settings.province == "Tỉnh Lâm Đồng"
    with pytest.raises(RuntimeError, match="BHXH_EDIT_APPROVAL must be 1 or 0"):
        load_settings({"BHXH_EDIT_APPROVAL": "maybe"})


def test_dates_are_checked(app):
    editor = signed_in(app, "hoa")
    record = edited(editor, NEW_ANSWER)
    assert editor.post(f"/admin/entries/{ENTRY}/preview", params={"on": "not-a-day"}, json=record).status_code == 422
    assert dt.date.today()  # the default day is today


# ---------------------------------------------------------------- the pages (forms, without a browser)


def csrf_of(html: str) -> str:
    import re

    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def test_the_editor_pages_save_a_draft_a_reviewer_approves_and_rolls_back(app, service):
    editor, reviewer = signed_in(app, "hoa"), signed_in(app, "lan")
    page = editor.get(f"/admin/editor/entry/{ENTRY}", params={"on": "2026-12-03"})
    assert page.status_code == 200 and "Xem trước câu trả lời" in page.text and "Gửi duyệt" in page.text
    record = service.engine.kb.entries[ENTRY]
    form = {"csrf": csrf_of(page.text), "question": record.question, "short": "", "answer": NEW_ANSWER,
            "paraphrases": "\n".join(record.paraphrases), "sources": "\n".join(record.sources), "on": "2026-12-03",
            "note": "nói rõ mốc 15 năm"}
    preview = editor.post(f"/admin/editor/entry/{ENTRY}", data={**form, "action": "live"}).json()
    assert preview["ok"] and "15 năm" in preview["text"]
    bad = editor.post(f"/admin/editor/entry/{ENTRY}", data={**form, "sources": "", "action": "live"}).json()
    assert not bad["ok"] and any("sources" in p for p in bad["problems"])

    saved = editor.post(f"/admin/editor/entry/{ENTRY}", data={**form, "action": "save"})
    assert saved.status_code == 303 and "/admin/editor/version/" in saved.headers["location"]
    version_page = reviewer.get(saved.headers["location"].split("?")[0])
    assert 'class="dadd"' in version_page.text and "Duyệt và áp dụng" in version_page.text
    version_id = int(saved.headers["location"].split("/version/")[1].split("?")[0])
    own = editor.get(f"/admin/editor/version/{version_id}")
    assert "Duyệt và áp dụng" not in own.text and "chờ một người khác" in own.text

    approved = reviewer.post(f"/admin/editor/version/{version_id}/approve", data={"csrf": csrf_of(version_page.text)})
    assert approved.status_code == 303 and "ok=1" in approved.headers["location"]
    assert service.engine.kb.entries[ENTRY].answer == NEW_ANSWER
    live_page = reviewer.get(f"/admin/editor/version/{version_id}")
    rolled = reviewer.post(f"/admin/editor/version/{version_id}/rollback", data={"csrf": csrf_of(live_page.text)})
    assert rolled.status_code == 303 and "ok=1" in rolled.headers["location"]
    assert service.engine.kb.entries[ENTRY].answer == record.answer


def test_a_viewer_sees_the_editor_read_only_and_cannot_post(app):
    viewer = signed_in(app, "xem")
    page = viewer.get(f"/admin/editor/entry/{ENTRY}")
    assert page.status_code == 200 and "Gửi duyệt" not in page.text and "readonly" in page.text
    refused = viewer.post(f"/admin/editor/entry/{ENTRY}", data={"csrf": csrf_of(page.text), "action": "save"})
    assert refused.status_code == 403
    assert viewer.get("/admin/editor/accounts").status_code == 403


def test_the_accounts_page_adds_and_disables_accounts(app, service):
    admin = signed_in(app, "quan")
    page = admin.get("/admin/editor/accounts")
    assert page.status_code == 200 and "Thêm tài khoản" in page.text
    added = admin.post("/admin/editor/accounts", data={"csrf": csrf_of(page.text), "action": "add", "name": "tuan.vm",
                                                       "role": "reviewer", "password": PASSWORD})
    assert added.status_code == 303 and "ok=1" in added.headers["location"]
    admin.post("/admin/editor/accounts", data={"csrf": csrf_of(page.text), "action": "disable", "name": "tuan.vm"})
    assert service.store.account("tuan.vm")["disabled"] and service.store.account("tuan.vm")["role"] == "reviewer"


def test_the_dashboard_offers_to_undo_an_attached_paraphrase(app, service):
    editor = signed_in(app, "hoa")
    attached = editor.post(f"/admin/entries/{ENTRY}/paraphrases", json={"text": "mười lăm năm là đủ chưa"})
    version = attached.json()["version"]
    page = editor.get("/admin/dashboard", params={"msg": "Đã thêm", "ok": 1, "undo": version})
    assert f'action="/admin/editor/version/{version}/rollback"' in page.text and "Sửa nội dung" in page.text
    undone = editor.post(f"/admin/editor/version/{version}/rollback", data={"csrf": csrf_of(page.text)})
    assert undone.status_code == 303 and "ok=1" in undone.headers["location"]
    assert "mười lăm năm là đủ chưa" not in service.engine.kb.entries[ENTRY].paraphrases
