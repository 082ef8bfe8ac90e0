"""The `bhxh` command line: one entry point mirroring the Python API."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from retrieval import progress


def _kb_check(args: argparse.Namespace) -> int:
    from knowledge import out_of_scope
    from knowledge.schema import KnowledgeError, load_knowledge

    problems: list[str] = []
    try:
        kb = load_knowledge()
    except KnowledgeError as exc:
        problems += exc.problems
    try:  # the decline intents are content too: the engine loads them with the same loader at start
        intents = out_of_scope.load_out_of_scope(out_of_scope.OUT_OF_SCOPE_FILE)
    except KnowledgeError as exc:
        problems += exc.problems
    if problems:
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"{len(problems)} problem(s) found.", file=sys.stderr)
        return 1
    from bot.settings import load_settings
    from knowledge.registry import report, review_flags

    # Currency: amendments noted after an entry's review are errors; age and unknown scope warn.
    max_age = load_settings().review_age_days if args.max_age_days is None else args.max_age_days
    flags = review_flags(kb, max_age_days=max_age)
    for line in report(flags):
        print(line, file=sys.stderr)
    errors = sum(f.severity == "error" for f in flags)
    if errors:
        print(f"{errors} entr(y/ies) cite a document changed since their review.", file=sys.stderr)
        return 1
    lacking = kb.lacking_short()  # issue 17: a warning while the short answers are being written, not an error
    if lacking:
        print(f"warning: {len(lacking)} entr(y/ies) have no short answer yet (field 'short').", file=sys.stderr)
    print(f"OK: {len(kb.entries)} entries, {len(kb.parameters.parameters)} parameters, "
          f"{len(intents)} out-of-scope intents, {len(flags)} review warning(s), "
          f"{len(lacking)} without a short answer.")
    return 0


def _kb_stats(args: argparse.Namespace) -> int:
    from knowledge.schema import load_knowledge, stats

    data = stats(load_knowledge(strict=False))
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        print(f"{data['entries']} entries, {data['paraphrases']} paraphrases, {data['sources']} citations")
        for topic, row in data["topics"].items():
            print(f"  {topic:20} {row['entries']:4} entries  {row['paraphrases']:5} paraphrases  {row['label']}")
    return 0


def _encoder(args: argparse.Namespace):
    """The dense encoder from settings, or None for lexical-only runs."""
    from bot.settings import load_settings, resolve_model
    from retrieval.dense import DenseEncoder

    if getattr(args, "lexical_only", False):
        return None
    settings = load_settings()
    model = resolve_model(settings)
    if not model:
        return None
    return DenseEncoder(model, query_precision=settings.query_precision, cache_dir=settings.cache_dir)


def _bench_retrieval(args: argparse.Namespace) -> int:
    from bot.settings import load_settings
    from retrieval.legal_bench import run

    eval_dir = Path(args.eval_dir) if args.eval_dir else load_settings().shared_dir / "eval"
    if not (eval_dir / "zalo_insurance_subset.jsonl").exists():
        print(f"skipped: external evaluation data not found under {eval_dir}")
        return 0
    print(run(eval_dir, _encoder(args), load_settings().cache_dir, chunk=not args.no_chunk))
    return 0


def _build(args: argparse.Namespace) -> int:
    """Set-up step: the offline model and the entry-embedding cache."""
    import time

    from bot.engine import Engine
    from bot.settings import load_settings

    settings = load_settings()
    started = time.perf_counter()
    with progress.stage("build", "the offline model (once), then the index (minutes on a first run, seconds after)"):
        engine = Engine.from_settings(settings)
    cache = engine.index.cache.describe() if engine.index.cache else "none (lexical only)"
    queries = engine.index.encoder.query_precision if engine.index.encoder else "none"
    print(f"Ready in {time.perf_counter() - started:.1f} s: {len(engine.kb.entries)} entries, "
          f"{len(engine.index.texts)} texts indexed; embedding cache: {cache}; query encoder: {queries}")
    return 0


def _train_encoder(args: argparse.Namespace) -> int:
    """Retrain the adapter from the knowledge base's texts (entries and decline intents)."""
    from bot.settings import load_settings
    from knowledge.out_of_scope import load_out_of_scope
    from knowledge.schema import load_knowledge
    from retrieval.encoder_tuning import ADAPTER_PATH, TrainingConfig, knowledge_classes, train_and_save
    from retrieval.offline_model import ensure_model

    config = TrainingConfig(**{name: getattr(args, name) for name in dataclasses.asdict(TrainingConfig())})
    out = Path(args.out) if args.out else ADAPTER_PATH
    base = ensure_model(load_settings().base_model_dir)
    meta = train_and_save(knowledge_classes(load_knowledge(), load_out_of_scope()), base, out, config, print)
    print(f"adapter: {out} ({out.stat().st_size / 1e6:.1f} MB), {meta['seconds']} s; "
          "serve it with BHXH_EMBED_MODEL=tuned")
    return 0


def _print_reply(reply, as_json: bool) -> None:
    from bot.messages import RELATED_LABEL

    if as_json:
        print(json.dumps(reply.to_json(), ensure_ascii=False), flush=True)
    else:
        print(reply.full_text(), flush=True)
        if reply.related:
            print(f"\n{RELATED_LABEL}\n" + "\n".join(f"- {c.question}" for c in reply.related))
        print(flush=True)


def _ask(args: argparse.Namespace) -> int:
    from bot.conversation import parse_pick
    from bot.engine import Engine

    engine = Engine.from_settings()
    if args.file:
        lines = Path(args.file).read_text(encoding="utf-8").splitlines()
        for line in lines:
            if line.strip():
                _print_reply(engine.ask(line), args.json)
        return 0
    if args.question:
        _print_reply(engine.ask(" ".join(args.question)), args.json)
        return 0
    print("Trợ lý BHXH — gõ câu hỏi rồi Enter (Ctrl-D để thoát).", flush=True)
    pending: list = []
    while True:
        try:
            line = input("> ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        pick = parse_pick(line)  # the same reading of "1/2/3" as every channel ("²" is not a pick)
        chosen = engine.entry_reply(pending[pick - 1].entry_id) if pick and 1 <= pick <= len(pending) else None
        reply = chosen or engine.ask(line)
        pending = list(reply.choices) if reply.choices else []
        _print_reply(reply, args.json)


def _serve(args: argparse.Namespace) -> int:
    from admin_api.app import build_service, create_app, serve
    from bot.settings import load_settings
    from storage.factory import is_postgres

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings()
    except RuntimeError as exc:
        print(f"bhxh serve: {exc}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print("bhxh serve: --workers must be 1 or more", file=sys.stderr)
        return 2
    if args.workers > 1:
        if not is_postgres(settings.database_url):
            print("bhxh serve: --workers above 1 needs PostgreSQL (BHXH_DATABASE_URL=postgresql://…). On SQLite each "
                  "process would keep its own rate limits, staff edits and webhook inbox: a staff edit would reach "
                  "only the process that took it. See the README's Deployment section.", file=sys.stderr)
            return 2
        print(f"Trợ lý BHXH: http://{args.host}:{args.port}/  ({args.workers} workers, API docs: /docs)", flush=True)
        return serve_workers(args.host, args.port, args.workers)
    try:
        with progress.stage("starting", "knowledge base, model and index (minutes on a first run, seconds after)"):
            app = create_app(build_service(settings), settings=settings)
    except RuntimeError as exc:  # e.g. no BHXH_ADMIN_TOKEN: refuse to run the staff API open
        print(f"bhxh serve: {exc}", file=sys.stderr)
        return 2
    print(f"Trợ lý BHXH: http://{args.host}:{args.port}/  (API docs: /docs)", flush=True)
    serve(app, args.host, args.port)  # with timeouts and limits for slow clients (admin_api.app.server_options)
    return 0


def _run_worker(sock: socket.socket) -> None:
    """One worker process (forked): its own service, engine and store pool, serving the shared socket."""
    import uvicorn

    from admin_api.app import build_service, create_app, server_options
    from bot.settings import load_settings

    settings = load_settings()
    app = create_app(build_service(settings), settings=settings)
    options = server_options(header_timeout=settings.header_timeout, max_connections=settings.max_connections)
    uvicorn.Server(uvicorn.Config(app, log_level="warning", **options)).run(sockets=[sock])


def serve_workers(host: str, port: int, workers: int) -> int:
    """`workers` processes serving one listening socket (the kernel spreads connections over them), each
    built after the fork (no model or thread crosses it). A worker that dies is started again, unless
    workers keep dying right after starting (a configuration error). SIGTERM/SIGINT stop them all."""
    sock = socket.create_server((host, port), backlog=2048, reuse_port=False)
    sock.set_inheritable(True)
    children: dict[int, float] = {}  # pid -> start time
    stopping = False
    quick_deaths = 0

    def spawn() -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                _run_worker(sock)
            except BaseException:
                logging.getLogger("bhxh.serve").exception("worker %d failed", os.getpid())
                code = 1
            finally:
                os._exit(code)
        children[pid] = time.monotonic()

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for _ in range(workers):
        spawn()
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        started = children.pop(pid, None)
        if started is None or stopping:
            continue
        quick_deaths = quick_deaths + 1 if time.monotonic() - started < 30 else 0
        print(f"bhxh serve: worker {pid} stopped ({os.waitstatus_to_exitcode(status)}); starting another",
              file=sys.stderr, flush=True)
        if quick_deaths >= 2 * workers:
            print("bhxh serve: workers keep failing right after start; stopping", file=sys.stderr)
            stop(signal.SIGTERM, None)
            continue
        time.sleep(1.0)
        spawn()
    sock.close()
    return 0 if stopping else 1


def _eval(args: argparse.Namespace) -> int:
    from bot import real_eval
    from bot.engine import Engine
    from bot.evaluation import EVAL_FILE, load_eval, report

    engine = Engine.from_settings()
    if not args.real_only:
        questions = load_eval(Path(args.file) if args.file else EVAL_FILE, set(engine.kb.entries))
        print(report(engine, questions, do_tune=args.tune))
    real = real_eval.load_real()
    if real:
        print("\n# Real citizens' questions (eval/real_questions*.yaml), through `ask`, scored by facts")
        for split_name, split in (("held-out", "heldout"), ("tuning", "tune")):
            judged = real_eval.judge_all(engine.ask, [q for q in real if q.split == split])
            print("\n" + real_eval.report(judged, f"real questions, {split_name} split"))
    return 0


def _bench(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from bot import real_eval
    from bot.engine import Engine
    from bot.evaluation import EVAL_FILE, bench, load_eval
    from bot.settings import load_settings, resolve_model
    from knowledge.schema import load_knowledge
    from retrieval.dense import DenseEncoder

    settings = load_settings()
    ours = load_eval(EVAL_FILE) if EVAL_FILE.exists() else []
    real = real_eval.load_real()
    groups = {
        "short questions": [q.question for q in ours if q.variant != "letter"] or ["rút bhxh một lần"],
        "letters": [q.question for q in ours if q.variant == "letter"]
        + [q.question for q in real if q.style == "letter"],
    }
    model = resolve_model(settings)
    t0 = time.perf_counter()
    encoder = DenseEncoder(model, query_precision=settings.query_precision,
                           cache_dir=settings.cache_dir) if model else None
    load_s = time.perf_counter() - t0
    kb = load_knowledge()
    with tempfile.TemporaryDirectory() as cold:
        t0 = time.perf_counter()
        Engine(kb, encoder, cache_dir=Path(cold))
        cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    Engine(kb, encoder, cache_dir=settings.cache_dir)
    warm_s = time.perf_counter() - t0
    print(f"query encoder: {encoder.query_precision if encoder else 'none'}; "
          f"model load: {load_s:.2f} s; index build cold (encode every text): {cold_s:.2f} s; "
          f"from cache: {warm_s:.2f} s")
    print(bench(lambda: Engine.from_settings(settings), {k: v for k, v in groups.items() if v}, repeats=args.repeats))
    return 0


def _telegram(args: argparse.Namespace) -> int:
    from admin_api.app import build_service
    from bot.channels.telegram_bot import run_telegram_polling
    from bot.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    return run_telegram_polling(lambda: build_service(settings), settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bhxh", description="Trợ lý BHXH")
    parser.add_argument("--progress", choices=progress.MODES, default="auto",
                        help="progress lines on stderr for long steps (model build, index encoding, demo traffic, "
                             "start-up): auto = when stderr is a terminal (default)")
    sub = parser.add_subparsers(dest="command", required=True)

    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    check = kb_sub.add_parser("check", help="validate entries and parameters; flag entries to re-review")
    check.add_argument("--max-age-days", type=int, default=None,
                       help="review age (default: BHXH_REVIEW_AGE_DAYS or 365)")
    check.set_defaults(func=_kb_check)
    kb_stats = kb_sub.add_parser("stats", help="counts per topic")
    kb_stats.add_argument("--json", action="store_true")
    kb_stats.set_defaults(func=_kb_stats)
    serve = sub.add_parser("serve", help="start the web chat, API, webhooks and staff API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1,
                       help="processes serving the port (above 1 needs PostgreSQL: BHXH_DATABASE_URL)")
    serve.set_defaults(func=_serve)

    sub.add_parser("telegram", help="run the Telegram bot with long polling (TELEGRAM_BOT_TOKEN)").set_defaults(
        func=_telegram)

    sub.add_parser("build", help="build the offline model and the index cache").set_defaults(func=_build)

    from retrieval.encoder_tuning import TrainingConfig

    tr = sub.add_parser("train-encoder", help="retrain the knowledge-base adapter of the e5 encoder "
                        "(retrieval/encoder_tuning.py; about 22 minutes on 2 cores)")
    tr.add_argument("--out", help="default: the committed adapter, retrieval/data/e5-bhxh-lora.npz")
    for name, value in dataclasses.asdict(TrainingConfig()).items():
        kind = (lambda text: text.lower() in ("1", "true", "yes")) if isinstance(value, bool) else type(value)
        tr.add_argument("--" + name.replace("_", "-"), type=kind, default=value)
    tr.set_defaults(func=_train_encoder)

    ask = sub.add_parser("ask", help="ask a question (interactive without arguments)")
    ask.add_argument("question", nargs="*")
    ask.add_argument("--json", action="store_true", help="print one JSON object per answer")
    ask.add_argument("--file", help="answer one question per line of this file")
    ask.set_defaults(func=_ask)

    ev = sub.add_parser("eval", help="answer quality on the evaluation set (lexical, dense, hybrid)")
    ev.add_argument("--file", help="default: eval/questions.yaml")
    ev.add_argument("--real-only", action="store_true", help="only the real-question set (eval/real_questions*.yaml)")
    ev.add_argument("--tune", action="store_true", help="tune thresholds on the tuning split first")
    ev.set_defaults(func=_eval)

    bn = sub.add_parser("bench", help="warm ask latency and index build time")
    bn.add_argument("--repeats", type=int, default=3)
    bn.set_defaults(func=_bench)

    from admin_api.accounts import add_staff_parser
    from admin_api.demo_traffic import add_demo_traffic_parser
    from bot.calc_cli import add_calc_parser

    add_calc_parser(sub)
    add_demo_traffic_parser(sub)
    add_staff_parser(sub)

    bench = sub.add_parser("bench-retrieval", help="retrieval benchmark on external legal data")
    bench.add_argument("--eval-dir", help="default: ../shared/eval beside the checkout")
    bench.add_argument("--lexical-only", action="store_true")
    bench.add_argument("--no-chunk", action="store_true", help="index whole articles (no passages)")
    bench.set_defaults(func=_bench_retrieval)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    progress.configure(args.progress)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
