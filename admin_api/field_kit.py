"""The field kit for outreach collaborators (issue 17, item 5): public pages, filled in below."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["field kit"])
