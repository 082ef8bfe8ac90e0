"""Staff accounts: names, roles and passwords (Argon2id hashes, argon2-cffi), and the `bhxh staff` command.

Roles, each allowed what the ones before it are:
    viewer    reads the dashboard and the staff API (question log, reports, exports, entries, history)
    editor    edits entries (drafts that wait for a reviewer when BHXH_EDIT_APPROVAL is on), attaches paraphrases
    reviewer  approves or rejects another person's draft, rolls an entry back
    admin     manages accounts (`bhxh staff …`, or the dashboard's account page)

The bearer token (BHXH_ADMIN_TOKEN) stays for automation: it acts as the admin account "automation"
(AUTOMATION), which is what the audit records for it. No account can be called that.
"""

from __future__ import annotations

import argparse
import getpass
import re
import sys
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from storage.base import StoreBackend
from storage.staff_records import ROLES

AUTOMATION = "automation"  # the bearer token's name in the audit log and version history
ROLE_LABELS = {"viewer": "Xem", "editor": "Biên tập", "reviewer": "Duyệt", "admin": "Quản trị"}
MIN_PASSWORD_CHARS = 10
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{1,39}")  # login names: lower-case ASCII, 2-40 characters

# argon2-cffi's defaults (RFC 9106 "low memory": Argon2id, t=3, m=64 MiB, p=4): about 50 ms a check here.
_HASHER = PasswordHasher()
# Checked against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class AccountError(ValueError):
    """A refused account change; the message is shown to the person (Vietnamese)."""


def role_at_least(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise AccountError(f"Mật khẩu cần ít nhất {MIN_PASSWORD_CHARS} ký tự.")
    return _HASHER.hash(password)


def authenticate(store: StoreBackend, name: str, password: str) -> dict[str, Any] | None:
    """The account if `name` and `password` match an enabled account, else None (same cost either way).
    A hash made with weaker parameters than today's is replaced on a successful login."""
    account = store.account(name.strip().lower()) if name else None
    try:
        _HASHER.verify(account["password_hash"] if account else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return None
    if account is None or account["disabled"]:
        return None
    if _HASHER.check_needs_rehash(account["password_hash"]):
        store.update_account(account["name"], password_hash=_HASHER.hash(password))
    return account


def _check_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_PATTERN.fullmatch(name) or name == AUTOMATION:
        raise AccountError("Tên đăng nhập gồm 2–40 ký tự a-z, 0-9, dấu chấm, gạch ngang hoặc gạch dưới "
                           f"(không dùng «{AUTOMATION}»).")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountError(f"Vai trò phải là một trong: {', '.join(ROLES)}.")
    return role


def add_account(store: StoreBackend, name: str, role: str, password: str) -> str:
    """Create an account; returns its (normalized) name."""
    name, role = _check_name(name), _check_role(role)
    if not store.add_account(name, role, hash_password(password)):
        raise AccountError(f"Đã có tài khoản «{name}».")
    return name


def change_account(store: StoreBackend, name: str, *, role: str | None = None, password: str | None = None,
                   disabled: bool | None = None) -> None:
    if not store.update_account(name, role=_check_role(role) if role else None,
                                password_hash=hash_password(password) if password is not None else None,
                                disabled=disabled):
        raise AccountError(f"Không có tài khoản «{name}».")


def public(account: dict[str, Any]) -> dict[str, Any]:
    """An account without its password hash, for pages and the API."""
    return {k: v for k, v in account.items() if k != "password_hash"}


# ---------------------------------------------------------------- `bhxh staff …`


def add_staff_parser(subparsers: Any) -> None:
    """Add `bhxh staff add|passwd|role|list|disable|enable` to the CLI's subparsers."""
    parser = subparsers.add_parser("staff", help="staff accounts of the dashboard (add, passwd, role, list, disable)",
                                   description="Accounts in the database named by --db, else BHXH_DATABASE_URL, "
                                               "else $BHXH_DATA_DIR/bhxh.db. Roles: " + ", ".join(ROLES) + ".")
    parser.add_argument("--db", help="SQLite file or database URL")
    parser.set_defaults(func=_run)
    actions = parser.add_subparsers(dest="staff_action", required=True)
    add = actions.add_parser("add", help="create an account (asks for the password)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, default="viewer")
    passwd = actions.add_parser("passwd", help="set an account's password (asks for it)")
    passwd.add_argument("name")
    for parser_ in (add, passwd):
        parser_.add_argument("--password-stdin", action="store_true",
                             help="read the password from the first line of standard input (scripts)")
    role = actions.add_parser("role", help="change an account's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    actions.add_parser("list", help="list the accounts")
    for verb in ("disable", "enable"):
        actions.add_parser(verb, help=f"{verb} an account (a disabled account cannot sign in)").add_argument("name")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Mật khẩu: ")
    if getpass.getpass("Nhập lại mật khẩu: ") != first:
        raise AccountError("Hai lần nhập mật khẩu không khớp.")
    return first


def _run(args: argparse.Namespace) -> int:
    """Open the store the service uses (or --db; the hash key beside a --db file) and run the action."""
    from bot.settings import load_settings
    from storage.base import load_hash_key
    from storage.factory import open_store

    settings = load_settings()
    beside = Path(args.db).parent if args.db and "://" not in args.db else settings.data_dir
    store = open_store(args.db or settings.database_url, load_hash_key(beside, settings.hash_key),
                       default_path=settings.database)
    try:
        return run_command(store, args)
    finally:
        getattr(store, "close", lambda: None)()  # PostgreSQL's pool (SQLite needs no closing)


def run_command(store: StoreBackend, args: argparse.Namespace) -> int:
    """Run `bhxh staff <action>` on `store`; prints the result, returns the exit code."""
    try:
        if args.staff_action == "add":
            name = add_account(store, args.name, args.role, _read_password(args.password_stdin))
            print(f"Đã tạo tài khoản {name} ({args.role}).")
        elif args.staff_action == "passwd":
            change_account(store, args.name, password=_read_password(args.password_stdin))
            print(f"Đã đổi mật khẩu của {args.name}.")
        elif args.staff_action == "role":
            change_account(store, args.name, role=args.role)
            print(f"{args.name}: vai trò {args.role}.")
        elif args.staff_action in ("disable", "enable"):
            change_account(store, args.name, disabled=args.staff_action == "disable")
            print(f"{args.name}: {'đã khóa' if args.staff_action == 'disable' else 'đã mở lại'}.")
        else:
            for account in store.accounts():
                state = "khóa" if account["disabled"] else "hoạt động"
                print(f"{account['name']}\t{account['role']}\t{state}\t{account['created_ts']}")
    except AccountError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    return 0
