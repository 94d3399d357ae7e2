"""Every template rendered in a real browser, as a friend's phone or laptop
shows it: headless Chromium (Debian's `chromium`, driven by Playwright) at
375 and 800 pixels wide, checked from the page itself, one screenshot each.

scripts/test installs chromium when it is missing (as root, with apt); where
it cannot be installed these tests skip, saying so. Screenshots go to
build/screenshots/ (FAF_SCREENSHOTS=DIR elsewhere): look at them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from formafriend_scheduler.mail.compose import TONES, Composer, Letter
from formafriend_scheduler.mail.preview import KINDS, SAMPLE_TOKEN, sample_letter

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="chromium is not installed (Debian package chromium; scripts/test installs it as root)",
)
playwright_api = pytest.importorskip("playwright.sync_api")

NOW = datetime(2027, 1, 5, 17, 0, tzinfo=UTC)
WIDTHS = (375, 800)
SCREENSHOTS = Path(
    os.environ.get("FAF_SCREENSHOTS", Path(__file__).parents[2] / "build" / "screenshots")
)
BASE_URL = "https://faf.example.org"
FORM_URL = f"{BASE_URL}/form?token={SAMPLE_TOKEN}"
UNSUBSCRIBE_URL = f"{BASE_URL}/unsubscribe?token={SAMPLE_TOKEN}"
PWN = "window.__pwned = (window.__pwned || 0) + 1"

# Untrusted values as users type them: markup and script, a name and a word
# longer than any screen, right-to-left scripts, emoji.
HOSTILE: dict[str, dict[str, Any]] = {
    "script": {
        "sender_name": f"<script>{PWN}</script><img src=x onerror='{PWN}'>",
        "recipient_first_name": f'"><svg onload="{PWN}">',
        "custom_message": f"<script>{PWN}</script>\n<a href='javascript:{PWN}'>clic</a>"
        f"\n<iframe src='https://evil.example'></iframe><b onmouseover='{PWN}'>gras</b>",
    },
    "long": {
        "sender_name": "Wolfeschlegelsteinhausenbergerdorff" * 3,
        "recipient_first_name": "Maximiliana-Alexandrina-Constantina-Bartholomea",
        "custom_message": "https://exemple.org/" + "tres_long_chemin_sans_espace_" * 20,
    },
    "rtl": {
        "sender_name": "مريم الحسيني",
        "recipient_first_name": "שָׁלוֹם",
        "custom_message": "مرحبا! كيف حالك؟\nשלום, מה שלומך? \u202etxet desrever\u202c",  # noqa: RUF001
    },
    "emoji": {
        "sender_name": "Zoé 🎉👩‍👩‍👧",
        "recipient_first_name": "Léo 🦊",
        "custom_message": "Joyeux mois ! 🥳🎂🌍🏳️‍🌈\n" + "😀" * 120,
    },
}

PAGE_FACTS = """() => ({
    scrollWidth: document.documentElement.scrollWidth,
    innerWidth: window.innerWidth,
    links: [...document.querySelectorAll('a')].map(a => [a.textContent.trim(), a.href]),
    elements: [...document.querySelectorAll('script, img, svg, iframe, object, embed')].length,
    handlers: [...document.querySelectorAll('*')]
        .filter(e => [...e.attributes].some(a => a.name.toLowerCase().startsWith('on'))).length,
    text: document.body.innerText,
    pwned: window.__pwned || 0,
})"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        yield launched
        launched.close()


def composer() -> Composer:
    return Composer(
        from_address="noreply@form-a-friend.com", from_name="Form-a-Friend", base_url=BASE_URL
    )


def render_in(browser: Any, html: str, width: int, screenshot: Path) -> dict[str, Any]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        dialogs: list[str] = []
        page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
        page.route("**/*", lambda route: route.abort())  # nothing leaves the machine
        page.set_content(html, wait_until="load")
        page.mouse.move(10, 10)
        page.mouse.move(width // 2, 450)  # any onmouseover that got through would fire
        facts: dict[str, Any] = page.evaluate(PAGE_FACTS)
        facts["dialogs"] = dialogs
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot), full_page=True)
        return facts
    finally:
        page.close()


def assert_reads_well(facts: dict[str, Any], width: int) -> None:
    assert facts["scrollWidth"] <= width, f"scrolls sideways: {facts['scrollWidth']} > {width}"
    hrefs = {href for _, href in facts["links"]}
    assert hrefs == {FORM_URL, UNSUBSCRIBE_URL}, facts["links"]
    button = [text for text, href in facts["links"] if href == FORM_URL and text != FORM_URL]
    assert button and all(button), "no button to the form"
    assert [text for text, href in facts["links"] if href == UNSUBSCRIBE_URL] == ["Se désinscrire"]
    assert facts["pwned"] == 0 and facts["dialogs"] == [], "a script ran"
    assert facts["elements"] == 0 and facts["handlers"] == 0, "markup from the data got through"


def letters() -> Iterator[tuple[str, Letter]]:
    zone = ZoneInfo("Europe/Paris")
    for kind in KINDS:
        for tone in TONES:
            yield f"{kind}-{tone}", sample_letter(kind, tone, NOW, zone)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(("name", "letter"), list(letters()), ids=[n for n, _ in letters()])
def test_every_template_reads_well_at_phone_and_laptop_width(
    browser: Any, name: str, letter: Letter, width: int
) -> None:
    html = composer().render(letter)[1]
    facts = render_in(browser, html, width, SCREENSHOTS / f"{name}-{width}.png")
    assert_reads_well(facts, width)
    assert "Léa" in facts["text"] and "Camille Martin" in facts["text"]


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("case", list(HOSTILE))
@pytest.mark.parametrize("tone", TONES)
def test_hostile_values_stay_text_and_never_widen_the_page(
    browser: Any, case: str, tone: str, width: int
) -> None:
    letter = replace(
        sample_letter("invitation", tone, NOW, ZoneInfo("Europe/Paris")), **HOSTILE[case]
    )
    html = composer().render(letter)[1]
    facts = render_in(browser, html, width, SCREENSHOTS / f"hostile-{case}-{tone}-{width}.png")
    assert_reads_well(facts, width)
    if case == "script":
        assert "<script>" in facts["text"] and "onerror" in facts["text"]  # shown, not run
