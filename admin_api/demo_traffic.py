"""`bhxh demo-traffic`: fill a database with realistic synthetic questions for the staff dashboard.

Weeks of questions across every topic, written the way people type them (the entries' own
questions and paraphrases, often without diacritics, with greetings, typos and personal data
that the store redacts), plus off-topic, garbled and hard questions the bot cannot answer,
spread over channels and office hours (Vietnam time), with a spike on one topic in the last
week. Two modes:

* engine (default): every distinct text is answered by the Engine once, so outcomes, topics
  and scores are the real ones; rows are logged with `Store.log_question`.
* `--fast`: plausible outcomes without running the engine, inserted in bulk — 200,000 rows in
  well under a minute (used by `benchmarks/admin_bench.py`).

    generate(store, days=42, per_day=300, spike_topic="lump_sum", engine=None)
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from admin_api.demo_signals import SignalPlan
from admin_api.demo_signals import write as write_signals
from knowledge.schema import KnowledgeBase, load_knowledge
from knowledge.topics import TOPICS
from retrieval.normalize import fold_accents, normalize_query, redact_pii
from retrieval.progress import percent, stage, throttled
from storage.store import LoggedQuestion, Store, load_hash_key

LOCAL = dt.timezone(dt.timedelta(hours=7))
CHANNELS = {"zalo": 0.45, "web": 0.30, "telegram": 0.25}
TOPIC_WEIGHTS = {
    "voluntary": 12, "pension": 12, "lump_sum": 11, "health_insurance": 10, "maternity": 9, "unemployment": 8,
    "new_law": 6, "contribution_rates": 6, "procedures": 6, "penalties": 5, "social_pension": 5, "sickness": 4,
    "survivors": 3, "scams": 3,
}
# Hours of the day people write (Vietnam time): office hours and the evening.
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 7, 10, 11, 11, 9, 6, 7, 9, 10, 9, 7, 6, 7, 8, 7, 4, 2]
OFF_TOPIC = [
    "giá vàng hôm nay bao nhiêu", "thời tiết Hà Nội ngày mai thế nào", "mua bảo hiểm ô tô ở đâu rẻ",
    "có nên mua bảo hiểm nhân thọ không", "tỷ giá đô la hôm nay", "kết quả xổ số miền bắc hôm nay",
    "cách nấu phở bò ngon", "gia vang sjc hom nay", "bảo hiểm xe máy bắt buộc mua ở đâu",
    "lịch cúp điện quận 7", "vay tiền online nhanh không cần thế chấp", "đổi bằng lái xe online thế nào",
]
GARBLED = [
    "asdfgh", "???", "alo alo", "bhxh", "hihi", "dfgdfg bhxh", "cho hoi cai nay", ".", "ok ok",
    "jjjjj", "bh xh bh", "👍", "help me", "a", "hỏi tí", "xxx yyy zzz",
]
# Questions the knowledge base does not cover well, in several wordings each (clusters).
HARD = [
    ["công ty nợ bảo hiểm 3 năm giờ em nghỉ việc thì chốt sổ thế nào",
     "cty no bhxh 3 nam em nghi viec chot so sao",
     "công ty nợ tiền bảo hiểm nhiều năm, nghỉ việc có chốt sổ được không"],
    ["quên mật khẩu vssid đổi số điện thoại rồi thì lấy lại sao",
     "quen mat khau vssid doi sdt roi lam sao",
     "mất sim không nhận được mã otp vssid phải làm gì"],
    ["đi xuất khẩu lao động nhật bản có được đóng bhxh tiếp không",
     "di xkld nhat ve co dong tiep bhxh dc ko",
     "đi làm ở Hàn Quốc về thì sổ bảo hiểm cũ xử lý thế nào"],
    ["bảo hiểm có chi trả tiền răng sứ không", "bhyt co tra tien lam rang su ko",
     "làm răng implant có được bảo hiểm y tế thanh toán không"],
    ["sổ bảo hiểm bị sai năm sinh sửa ở đâu", "so bhxh sai nam sinh sua o dau",
     "thông tin trên sổ bảo hiểm sai ngày tháng năm sinh thì điều chỉnh thế nào"],
    ["chồng mất đột ngột vợ có được nhận tiền bảo hiểm của chồng không",
     "chong mat vo co dc nhan tien bhxh cua chong ko"],
    ["làm freelancer thu nhập không ổn định thì đóng bảo hiểm kiểu gì",
     "lam freelance thu nhap bap benh dong bhxh the nao"],
    ["nghỉ dưỡng sức sau sinh mổ được mấy ngày", "nghi duong suc sau sinh mo dc may ngay"],
]
NAMES = ["Nguyễn Văn An", "Trần Thị Bích", "Lê Hoàng Nam", "Phạm Thu Hà", "Võ Minh Tuấn", "Đặng Thị Lan"]
GREETINGS = ["Cho em hỏi ", "Chào ad, ", "Xin chào, cho tôi hỏi ", "ad oi cho hoi ", "Dạ cho mình hỏi ", ""]


@dataclass(frozen=True)
class Sample:
    text: str
    topic: str | None  # the topic it was drawn from (None: off-topic, garbled, hard)
    entry_id: str | None
    source: str  # "entry", "hard", "off_topic", "garbled"


@dataclass
class DemoStats:
    rows: int = 0
    feedback: int = 0
    days: int = 0
    spike_topic: str = ""
    first_ts: str = ""
    last_ts: str = ""
    seconds: float = 0.0
    by_outcome: dict[str, int] | None = None
    signals: int = 0  # signals of misunderstanding (admin_api/demo_signals.py)

    def summary(self) -> str:
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted((self.by_outcome or {}).items()))
        return (f"{self.rows} questions ({outcomes}), {self.feedback} feedback votes and {self.signals} signals "
                f"over {self.days} days, "
                f"spike on '{self.spike_topic}' in the last 7 days; {self.first_ts[:10]} … {self.last_ts[:10]}; "
                f"{self.seconds:.1f} s")


# ---------------------------------------------------------------- texts


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 8:
        return text
    i = rng.randrange(1, len(text) - 1)
    return text[:i] + text[i + 1:] if rng.random() < 0.5 else text[:i] + text[i + 1] + text[i] + text[i + 2:]


def vary(text: str, rng: random.Random) -> str:
    """How people actually type: no diacritics, lower case, greetings, typos, their own details."""
    r = rng.random()
    if r < 0.30:
        text = fold_accents(text).lower()
    elif r < 0.40:
        text = text.lower()
    if rng.random() < 0.25:
        text = rng.choice(GREETINGS) + text[:1].lower() + text[1:]
    if rng.random() < 0.05:
        text = _typo(text, rng)
    if rng.random() < 0.04:
        cccd = "0" + "".join(rng.choice("0123456789") for _ in range(11))
        phone = "09" + "".join(rng.choice("0123456789") for _ in range(8))
        text = f"Tôi tên là {rng.choice(NAMES)}, CCCD {cccd}, sđt {phone}. {text}"
    return text


class TextPool:
    """Weighted sampling of question texts by topic (with one topic boosted on spike days)."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.by_topic: dict[str, list[tuple[str, str]]] = {t: [] for t in TOPICS}
        for entry in kb.entries.values():
            self.by_topic[entry.topic].extend((entry.id, text) for text in entry.texts())
        self.topics = [t for t in TOPICS if self.by_topic[t]]

    def sample(self, rng: random.Random, spike_topic: str | None, spike_factor: float) -> Sample:
        r = rng.random()
        if r < 0.05:
            return Sample(vary(rng.choice(OFF_TOPIC), rng), None, None, "off_topic")
        if r < 0.08:
            return Sample(rng.choice(GARBLED), None, None, "garbled")
        if r < 0.13:
            return Sample(vary(rng.choice(rng.choice(HARD)), rng), None, None, "hard")
        weights = [TOPIC_WEIGHTS.get(t, 3) * (spike_factor if t == spike_topic else 1.0) for t in self.topics]
        topic = rng.choices(self.topics, weights)[0]
        entry_id, text = rng.choice(self.by_topic[topic])
        return Sample(vary(text, rng), topic, entry_id, "entry")


# ---------------------------------------------------------------- outcomes


def _decided(sample: Sample, normalized: str, topic: str | None, entry_id: str | None, score: float, outcome: str,
             kind: str) -> LoggedQuestion:
    """What was decided for `sample`, as its question-log row; `generate` fills in channel, user, latency, time."""
    return LoggedQuestion("", "", sample.text, normalized, topic, entry_id, score, outcome, kind, 0.0)


@functools.lru_cache(maxsize=200_000)
def _normalized(text: str) -> str:
    return redact_pii(normalize_query(text))


def plausible_outcome(sample: Sample, rng: random.Random) -> LoggedQuestion:
    """What the engine would typically do, without running it (the --fast mode)."""
    normalized = _normalized(sample.text)
    if sample.source == "off_topic":
        return _decided(sample, normalized, None, None, round(rng.uniform(0.86, 0.95), 4), "declined", "out_of_scope")
    if sample.source == "garbled":
        if not any(ch.isalnum() for ch in sample.text):
            return _decided(sample, "", None, None, 0.0, "declined", "invalid")
        return _decided(sample, normalized, None, None, round(rng.uniform(0.70, 0.86), 4), "declined", "not_sure")
    if sample.source == "hard":
        if rng.random() < 0.75:
            return _decided(sample, normalized, None, None, round(rng.uniform(0.80, 0.875), 4), "declined", "not_sure")
        return _decided(sample, normalized, None, None, round(rng.uniform(0.88, 0.91), 4), "choices", "choices")
    r = rng.random()
    if r < 0.86:
        return _decided(sample, normalized, sample.topic, sample.entry_id, round(rng.uniform(0.90, 0.99), 4),
                        "answered", "answer")
    if r < 0.91:  # answered, but barely above the threshold: low confidence
        return _decided(sample, normalized, sample.topic, sample.entry_id, round(rng.uniform(0.88, 0.90), 4),
                        "answered", "answer")
    if r < 0.97:
        return _decided(sample, normalized, sample.topic, None, round(rng.uniform(0.88, 0.94), 4), "choices", "choices")
    return _decided(sample, normalized, None, None, round(rng.uniform(0.78, 0.875), 4), "declined", "not_sure")


def engine_outcome(engine: Any) -> Callable[[Sample, random.Random], LoggedQuestion]:
    """Outcomes from the real engine, memoized per distinct text."""
    memo: dict[str, LoggedQuestion] = {}

    def outcome(sample: Sample, rng: random.Random) -> LoggedQuestion:
        if sample.text not in memo:
            reply = engine.ask(sample.text)
            memo[sample.text] = _decided(sample, reply.normalized, reply.topic, reply.entry_id,
                                         round(reply.score, 4), reply.outcome, reply.kind)
        return memo[sample.text]

    return outcome


# ---------------------------------------------------------------- generation


def _timestamps(rng: random.Random, day: dt.date, n: int, now: dt.datetime) -> list[dt.datetime]:
    out = []
    for _ in range(n):
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        local = dt.datetime.combine(day, dt.time(hour, rng.randrange(60), rng.randrange(60), rng.randrange(10**6)),
                                    LOCAL)
        moment = local.astimezone(dt.UTC)
        if moment < now:
            out.append(moment)
    return sorted(out)


def _day_count(rng: random.Random, day: dt.date, per_day: int) -> int:
    weekday = 0.65 if day.weekday() >= 5 else 1.08
    return max(0, round(rng.gauss(per_day * weekday, per_day * weekday * 0.08)))


FEEDBACK_RATE = 0.07
BAD_ENTRY_SHARE = 0.06  # entries citizens dislike more often


def generate(store: Store, *, days: int = 42, per_day: int = 300, spike_topic: str | None = "lump_sum",
             spike_factor: float = 3.0, engine: Any = None, kb: KnowledgeBase | None = None, seed: int = 7,
             now: dt.datetime | None = None, progress: Callable[[str], None] | None = None) -> DemoStats:
    """Log `days` days of synthetic questions (about `per_day` a day) ending now."""
    started = time.perf_counter()
    rng = random.Random(seed)
    now = now or dt.datetime.now(dt.UTC)
    kb = kb or (engine.kb if engine is not None else load_knowledge())
    pool = TextPool(kb)
    decide = engine_outcome(engine) if engine is not None else plausible_outcome
    disliked = {e for e in kb.entries if rng.random() < BAD_ENTRY_SHARE}
    users = max(50, days * per_day // 4)
    today = (now + dt.timedelta(hours=7)).date()
    spike_from = today - dt.timedelta(days=6)
    stats = DemoStats(days=days, spike_topic=spike_topic or "", by_outcome={})
    fast = engine is None
    redacted: dict[str, str] = {}
    rows: list[dict[str, Any]] = []
    votes: list[tuple[int, dict[str, Any]]] = []
    signal_plan = SignalPlan(disliked, seed)  # its own random stream: the questions and votes stay the same
    question_ids: list[int | None] = []  # engine mode: the logged ids, in order
    for offset in range(days - 1, -1, -1):
        day = today - dt.timedelta(days=offset)
        factor = spike_factor if day >= spike_from else 1.0
        for moment in _timestamps(rng, day, _day_count(rng, day, per_day), now):
            sample = pool.sample(rng, spike_topic, factor)
            result = decide(sample, rng)
            channel = rng.choices(list(CHANNELS), list(CHANNELS.values()))[0]
            user = f"demo-{rng.randrange(users)}"
            ts = moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            vote = None
            if result.outcome == "answered" and result.entry_id and rng.random() < FEEDBACK_RATE:
                vote = -1 if rng.random() < (0.6 if result.entry_id in disliked else 0.12) else 1
            stats.by_outcome[result.outcome] = stats.by_outcome.get(result.outcome, 0) + 1  # type: ignore[index]
            if fast:
                if sample.text not in redacted:
                    redacted[sample.text] = redact_pii(sample.text)[:4000]
                rows.append({"ts": ts, "channel": channel, "user_hash": store.hash_user(channel, user),
                             "message_id": None, "text": redacted[sample.text],
                             "normalized": result.normalized[:4000], "topic": result.topic,
                             "entry_id": result.entry_id, "score": result.score, "outcome": result.outcome,
                             "kind": result.kind, "latency_ms": round(rng.uniform(12, 140), 2), "feedback": vote})
                if vote is not None:
                    votes.append((len(rows) - 1, {"ts": ts, "entry_id": result.entry_id, "value": vote,
                                                  "channel": channel, "user_hash": rows[-1]["user_hash"]}))
            else:
                qid = store.log_question(replace(result, channel=channel, user_id=user,
                                                 latency_ms=round(rng.uniform(12, 140), 2), ts=ts))
                if vote is not None:
                    store.record_feedback(channel=channel, user_id=user, value=vote, entry_id=result.entry_id,
                                          question_id=qid)
                    stats.feedback += 1
                question_ids.append(qid)
            signal_plan.add(stats.rows, result, sample.entry_id, vote, channel, store.hash_user(channel, user), ts)
            stats.rows += 1
            stats.first_ts = stats.first_ts or ts
            stats.last_ts = ts
        if progress:
            progress(f"day {percent(days - offset, days)}, {stats.rows:,} questions")
    if fast:
        question_ids = list(_bulk_insert(store, rows, votes))
        stats.feedback = len(votes)
    stats.signals = write_signals(store, signal_plan.rows(question_ids))
    stats.seconds = time.perf_counter() - started
    return stats


def _bulk_insert(store: Store, rows: list[dict[str, Any]], votes: list[tuple[int, dict[str, Any]]]) -> list[int]:
    """Insert the rows in one transaction; feedback rows point at their questions' ids; returns the ids."""
    if not isinstance(store, Store):  # PostgreSQL: ids come from the identity column
        return _bulk_insert_postgres(store, rows, votes)
    with store.write() as db:
        base = int(db.execute("SELECT coalesce(MAX(id), 0) FROM questions").fetchone()[0])
        ids = [base + n + 1 for n in range(len(rows))]
        db["questions"].insert_all(({"id": i, **r} for i, r in zip(ids, rows, strict=True)), batch_size=2000)
        db["feedback"].insert_all(({"question_id": ids[n], **v} for n, v in votes), batch_size=2000)
    return ids


def _bulk_insert_postgres(store: Any, rows: list[dict[str, Any]],
                          votes: list[tuple[int, dict[str, Any]]]) -> list[int]:
    """`_bulk_insert` on PostgreSQL (`store.write()` yields a psycopg connection): one transaction."""
    if not rows:
        return []
    columns = list(rows[0])
    with store.write() as conn, conn.cursor() as cursor:
        cursor.executemany(f"INSERT INTO questions ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
                           "RETURNING id", [[r[c] for c in columns] for r in rows], returning=True)
        ids = []
        while True:
            ids.append(cursor.fetchone()[0])
            if not cursor.nextset():
                break
        if votes:
            vote_columns = ["question_id", *votes[0][1]]
            cursor.executemany(f"INSERT INTO feedback ({', '.join(vote_columns)}) "
                               f"VALUES ({', '.join(['%s'] * len(vote_columns))})",
                               [[ids[n], *v.values()] for n, v in votes])
    return ids


# ---------------------------------------------------------------- command line


DEMO_HANDOFFS = (  # (channel, user, reason, topic, minutes ago, citizen's messages, staff answer or None, closed)
    ("telegram", "demo-handoff-1", "asked", "lump_sum", 25,
     ("Tôi nghỉ việc được 8 tháng, muốn rút BHXH một lần thì có được không?", "gặp cán bộ"), None, False),
    ("zalo_bot", "demo-handoff-2", "not_sure", "pension", 70,
     ("mẹ tôi 61 tuổi đóng 17 năm giờ nghỉ thì sao", "hỏi cán bộ"),
     "Chào bạn, mẹ bạn đủ tuổi nghỉ hưu và đủ 15 năm đóng nên được hưởng lương hưu hằng tháng.", False),
    ("web", "demo-handoff-3", "downvote", "maternity", 300,
     ("chồng có được nghỉ khi vợ sinh không", "gặp cán bộ"),
     "Chào bạn, chồng đang đóng BHXH được nghỉ từ 5 đến 14 ngày làm việc khi vợ sinh con.", True),
)


def demo_handoffs(store: Any, now: dt.datetime | None = None) -> int:
    """A few conversations handed to staff (waiting, owned with a reply, closed), so the staff inbox
    (/admin/handoff) has something to show; returns how many were added."""
    now = now or dt.datetime.now(dt.UTC)

    def at(minutes: float) -> str:
        return (now - dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    added = 0
    for channel, user, reason, topic, ago, said, answer, closed in DEMO_HANDOFFS:
        if store.handoff_latest(channel, user) is not None:  # added by an earlier run
            continue
        handoff, _ = store.handoff_open(channel=channel, user_id=user, chat_id=user, reason=reason, topic=topic,
                                        now=at(ago), text=said[0])
        for n, text in enumerate(said[1:], start=1):
            store.handoff_citizen_message(handoff.id, text, at(ago - n))
        if answer:
            store.handoff_take(handoff.id, "hoa.nt", at(ago - 5))
            store.handoff_staff_message(handoff.id, "hoa.nt", answer, at(ago - 10), "sent")
        if closed:
            store.handoff_close(handoff.id, "hoa.nt", at(ago - 15))
        added += 1
    return added


def _run(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from storage.factory import open_store

    settings = load_settings()
    # --db, else BHXH_DATABASE_URL (PostgreSQL or SQLite), else the service's SQLite file; migrated on open.
    target = args.db or settings.database_url
    key_dir = Path(args.db).parent if args.db and "://" not in args.db else settings.data_dir
    store = open_store(target, load_hash_key(key_dir, settings.hash_key), default_path=settings.database)
    engine = None
    if not args.fast:
        from bot.engine import Engine

        with stage("demo traffic", "loading the engine (--fast skips it for large volumes)"):
            engine = Engine.from_settings(settings)
    stats = generate(store, days=args.days, per_day=args.per_day, spike_topic=args.spike_topic,
                     spike_factor=args.spike_factor, engine=engine, seed=args.seed,
                     progress=throttled("demo traffic"))
    print(f"{getattr(store, 'path', 'PostgreSQL')}: {stats.summary()}")
    print(f"staff inbox: {demo_handoffs(store)} demo conversations handed to staff")
    if hasattr(store, "close"):
        store.close()
    return 0


def add_demo_traffic_parser(subparsers: Any) -> None:
    """Add `bhxh demo-traffic` to the CLI's subparsers."""
    p = subparsers.add_parser(
        "demo-traffic", help="fill a database with realistic synthetic questions (for the staff dashboard)",
        description="Weeks of synthetic questions across topics and channels, with a spike on one topic in the "
                    "last week. Without --fast every distinct text is answered by the real engine.")
    p.add_argument("--db", help="SQLite file or database URL (default: $BHXH_DATABASE_URL, else "
                                "$BHXH_DATA_DIR/bhxh.db)")
    p.add_argument("--days", type=int, default=42, help="days of traffic ending now (default 42)")
    p.add_argument("--per-day", type=int, default=300, help="average questions per weekday (default 300)")
    p.add_argument("--spike-topic", default="lump_sum", choices=list(TOPICS),
                   help="topic asked more in the last 7 days (default lump_sum)")
    p.add_argument("--spike-factor", type=float, default=3.0, help="how much more (default 3)")
    p.add_argument("--fast", action="store_true",
                   help="plausible outcomes without running the engine, bulk-inserted (for 100,000s of rows)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=_run)
