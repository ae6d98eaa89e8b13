"""Message catalogues: the victim's title and body in her language (``messages/<lang>.json``).

Every language holds the same keys (a test enforces it). A missing language falls back to English.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

MESSAGES_DIR = Path(__file__).resolve().parent / "messages"
FALLBACK = "en"


@lru_cache(maxsize=None)
def load(language: str) -> dict[str, str]:
    path = MESSAGES_DIR / f"{language}.json"
    if not path.is_file() or not language.isalpha():
        return load(FALLBACK) if language != FALLBACK else {}
    return json.loads(path.read_text(encoding="utf-8"))


def languages() -> list[str]:
    return sorted(p.stem for p in MESSAGES_DIR.glob("*.json"))


def operator_templates() -> list[str]:
    """Template keys an operator may send with ``message-victim`` (``operator.<key>.body`` exists)."""
    return sorted(k.split(".")[1] for k in load(FALLBACK) if k.startswith("operator.") and k.endswith(".body"))


def render(language: str, template: str, text: str | None = None) -> tuple[str, str]:
    """(title, body) for ``template`` (e.g. ``violation.proximity``, ``panic_ack``, ``operator.text``)."""
    cat = load(language)
    if f"{template}.title" not in cat and template.startswith("violation."):
        template = "violation.default"
    title = cat.get(f"{template}.title") or load(FALLBACK).get(f"{template}.title", "Afstand")
    body = text if template == "operator.text" else cat.get(f"{template}.body", "")
    return title, body or ""


def sms_text(language: str, title: str, body: str) -> str:
    return load(language).get("sms.format", "{title}: {body}").format(title=title, body=body)
