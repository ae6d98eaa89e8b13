"""Message catalogues for what the victim reads: case stages, order kinds in plain words, notices.

Every text shown to a victim comes from ``nl.json`` / ``en.json`` here, never from a string in code. Keys are
flat and dotted (``stage.charged.title``); values may hold ``{name}`` placeholders. A language without a
catalogue falls back to English (more victims who do not read Dutch read English than any other language);
a key missing from a catalogue is a bug that tests/api/contacts/test_messages_catalogue.py catches.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

_DIR = Path(__file__).resolve().parent
LANGUAGES = ("nl", "en")
FALLBACK = "en"
DISPLAY_TZ = ZoneInfo("Europe/Amsterdam")
# What the victim is told outside the thread (api/contacts/notices), each a title and a body.
NOTICE_KINDS = ("order_ending", "order_extended", "order_will_lapse", "order_expired", "new_message",
                "monitoring_interrupted", "monitoring_resumed")


@lru_cache(maxsize=None)
def catalogue(language: str) -> dict[str, str]:
    with open(_DIR / f"{language}.json", encoding="utf-8") as f:
        return json.load(f)


def resolve(language: str | None) -> str:
    """``nl-BE`` → ``nl``; a language without a catalogue → the fallback."""
    base = (language or "").split("-")[0].lower()
    return base if base in LANGUAGES else FALLBACK


def text(language: str | None, key: str, **params: Any) -> str:
    values = catalogue(resolve(language))
    return values[key].format(**params) if params else values[key]


def date(language: str | None, value: datetime) -> str:
    """A date as the victim reads it, in Dutch local time (an order ending at 00:00 local ends on that day)."""
    return value.astimezone(DISPLAY_TZ).strftime(text(language, "format.date"))


def required_keys() -> set[str]:
    """Every key the code looks up: the vocabulary's words × their text slots."""
    from api.contacts import schemas as v
    from api.cases.orders.schemas import ORDER_KINDS

    keys = {"format.date", "order.until", "order.until_further_notice", "zone.exclusion.description",
            "contact.unassigned", "contact.next", "contact.overdue", "contact.reach", "contact.reach_unknown",
            "contact.none", "preferences.quiet_hours_note", "author.monitoring_room"}
    keys |= {f"notice.{k}.{slot}" for k in NOTICE_KINDS for slot in ("title", "body")}
    keys |= {f"stage.{s}.{slot}" for s in v.STAGES for slot in ("title", "description")}
    keys |= {f"event.{k}.title" for k in v.EVENT_KINDS}
    keys |= {f"order.{k}.{slot}" for k in ORDER_KINDS for slot in ("title", "forbids")}
    keys |= {f"order.status.{s}" for s in v.ORDER_STATUSES}
    keys |= {f"agency.{a}" for a in v.AGENCIES}
    keys |= {f"function.{f}" for f in v.FUNCTIONS}
    keys |= {f"channel.{c}" for c in v.CHANNELS}
    keys |= {f"frequency.{f}" for f in v.FREQUENCIES}
    return keys
