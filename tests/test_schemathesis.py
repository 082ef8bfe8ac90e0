"""Property-based API testing: schemathesis generates requests from the app's own OpenAPI and no
operation — public ask endpoint, webhooks, staff API — may answer with a server error (5xx).

The staff token is sent with every request (so the staff endpoints are exercised past the auth
check) and the number of examples per operation is bounded so the run stays within ~2 minutes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from admin_api.app import create_app  # noqa: E402
from admin_api.demo_traffic import generate  # noqa: E402
from bot.engine import Engine  # noqa: E402
from bot.service import Service  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from knowledge.schema import load_knowledge  # noqa: E402
from storage.store import Store, load_hash_key  # noqa: E402

TOKEN = "schemathesis-token-0123456789abcdef"
MAX_EXAMPLES = int(os.environ.get("BHXH_SCHEMATHESIS_EXAMPLES", "20"))

# The schema is loaded at import (schemathesis' lazy fixture loader does not work with this pytest),
# from the real app around a lexical engine; the fixture below swaps in the dense engine when the
# offline model is built, exactly as a staff edit swaps engines at run time.
_DIR = tempfile.TemporaryDirectory(prefix="bhxh-schemathesis-")
_STORE = Store(Path(_DIR.name) / "bhxh.db", load_hash_key(Path(_DIR.name)))
generate(_STORE, days=10, per_day=60, seed=4)  # so the staff queries have rows to chew on
SERVICE = Service(Engine(load_knowledge(), None), _STORE, user_limit=100_000)
with pytest.MonkeyPatch.context() as _mp:
    _mp.setenv("BHXH_ADMIN_TOKEN", TOKEN)
    APP = create_app(SERVICE, ip_limit=100_000)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module", autouse=True)
def dense_engine(request: pytest.FixtureRequest) -> None:
    try:
        encoder = request.getfixturevalue("encoder")
    except pytest.skip.Exception:
        return
    SERVICE.engine = Engine(load_knowledge(), encoder, cache_dir=load_settings().cache_dir)


def test_the_schema_covers_the_ask_endpoint_and_the_staff_api() -> None:
    paths = set(schema.raw_schema["paths"])
    assert {"/api/ask", "/admin/topics", "/admin/unanswered", "/admin/entries", "/admin/questions"} <= paths


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, phases=[Phase.explicit, Phase.generate],  # no shrinking: bounded
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_server_errors(case) -> None:
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"}, checks=[not_a_server_error])
