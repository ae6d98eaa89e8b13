"""The message catalogues: every key the code uses exists in Dutch and English, with the same placeholders."""

from __future__ import annotations

import re
import string
from datetime import datetime, timezone

import pytest

from api import messages

PLACEHOLDER = re.compile(r"{(\w+)}")


@pytest.mark.parametrize("language", messages.LANGUAGES)
def test_every_required_key_is_in_the_catalogue(language: str) -> None:
    missing = sorted(messages.required_keys() - set(messages.catalogue(language)))
    assert missing == [], f"{language}.json lacks {missing}"


def test_both_catalogues_have_the_same_keys_and_placeholders() -> None:
    nl, en = messages.catalogue("nl"), messages.catalogue("en")
    assert set(nl) == set(en), set(nl) ^ set(en)
    for key in nl:
        assert set(PLACEHOLDER.findall(nl[key])) == set(PLACEHOLDER.findall(en[key])), key
        assert nl[key].strip() and en[key].strip(), key
        list(string.Formatter().parse(nl[key]))  # well-formed format strings


def test_languages_resolve_and_fall_back() -> None:
    assert messages.resolve("nl-BE") == "nl" and messages.resolve("EN") == "en"
    assert messages.resolve("tr") == "en" and messages.resolve(None) == "en"
    assert messages.text("nl", "order.contact_ban.title") == "Contactverbod"
    assert messages.text("en", "order.until", date="1 Mar 2026") == "Until 1 Mar 2026"


def test_dates_are_shown_in_dutch_local_time() -> None:
    # 23:30 UTC on 28 Feb is 00:30 on 1 March in Amsterdam.
    at = datetime(2026, 2, 28, 23, 30, tzinfo=timezone.utc)
    assert messages.date("nl", at) == "01-03-2026"
    assert messages.date("en", at) == "01 Mar 2026"
