"""The `bhxh` command line: one entry point mirroring the Python API."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


def _kb_check(args: argparse.Namespace) -> int:
    from knowledge.schema import KnowledgeError, load_knowledge

    try:
        kb = load_knowledge()
    except KnowledgeError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(f"{len(exc.problems)} problem(s) found.", file=sys.stderr)
        return 1
    print(f"OK: {len(kb.entries)} entries, {len(kb.parameters.parameters)} parameters.")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bhxh", description="Trợ lý BHXH")
    sub = parser.add_subparsers(dest="command", required=True)

    kb = sub.add_parser("kb", help="knowledge base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    kb_sub.add_parser("check", help="validate entries and parameters").set_defaults(func=_kb_check)
    kb_stats = kb_sub.add_parser("stats", help="counts per topic")
    kb_stats.add_argument("--json", action="store_true")
    kb_stats.set_defaults(func=_kb_stats)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
