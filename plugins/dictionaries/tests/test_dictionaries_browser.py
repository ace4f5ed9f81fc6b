"""The dictionaries pages in Debian's chromium, on the demo: create a dictionary, add an
entry refused for one field then fixed, upload a document and download it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kabinet.testing import chromium, disabled_env, kabinet_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``kabinet demo`` with this app and the built-ins only, on a free port."""
    folder = tmp_path_factory.mktemp("dictdemo")
    settings = folder / "settings.toml"
    settings.write_text("")
    only = disabled_env(["dictionaries"])  # every other installed plugin off
    env = {**os.environ, "KABINET_DEMO_DIR": str(folder / "var"), **only}
    with kabinet_server(folder, "--settings", str(settings), "demo", env=env, timeout=90) as url:
        yield url


def test_type_entry_with_a_fixed_error_and_a_document(demo: str, tmp_path: Path) -> None:
    with chromium() as browser:
        context = browser.new_context(
            viewport={"width": 360, "height": 740},
            locale="ru-RU",
            is_mobile=True,
            accept_downloads=True,
        )
        page = context.new_page()
        page.goto(demo + "/login?next=/dictionaries/")
        page.fill("input[name=login]", "admin@demo.kabinet.example")
        page.fill("input[name=password]", "kabinet-demo")
        page.click("form.id-form button[type=submit]")
        page.wait_for_url(demo + "/dictionaries/")
        assert page.locator("a", has_text="Тарифы").count() == 1  # the demo's
        # A new dictionary with a required number field.
        page.fill("#f-code", "routes")
        page.fill("#f-name_ru", "Маршруты")
        page.fill("#f-name_en", "Routes")
        page.click("text=Создать")
        page.wait_for_url(demo + "/dictionaries/routes/structure")
        new = page.locator("#new-field")
        new.locator("input[name=code]").fill("km")
        new.locator("input[name=name_ru]").fill("Расстояние")
        new.locator("input[name=name_en]").fill("Distance")
        new.locator("select[name=kind]").select_option("number")
        new.locator("input[name=required]").check()
        new.locator("button[type=submit]").click()
        page.wait_for_url(demo + "/dictionaries/routes/structure")
        assert "Расстояние" in page.locator("main").inner_text()
        shot = tmp_path / "structure.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        # An entry: a wrong number comes back with the field's error, then is fixed.
        page.goto(demo + "/dictionaries/routes/new")
        page.fill("#f-km", "далеко")
        page.click("form.dict-form button[type=submit]")
        assert page.locator("#e-km").inner_text() == "Введите число."
        assert page.locator("#f-km").input_value() == "далеко"
        page.fill("#f-km", "712")
        page.click("form.dict-form button[type=submit]")
        page.wait_for_url(f"{demo}/dictionaries/routes/*")
        assert page.locator("#f-km").input_value() == "712"
        assert "История изменений" in page.locator("main").inner_text()
        # The demo's tariffs, filtered by vehicle type, on a phone.
        page.goto(demo + "/dictionaries/tariffs")
        page.select_option("select[name='f.vehicle']", "tent")
        page.click("form.dict-filters button[type=submit]")
        page.wait_for_url(f"{demo}/dictionaries/tariffs?*f.vehicle=tent*")
        assert page.locator("#entries tbody tr").count() == 3  # the demo has three
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(tmp_path / "tariffs.png"), full_page=True)
        # A document: upload, then download the same bytes.
        pdf = tmp_path / "прайс.pdf"
        pdf.write_bytes(PDF)
        page.goto(demo + "/dictionaries/documents/")
        page.fill("#f-title", "Прайс-лист 2027")
        page.set_input_files("#f-file", str(pdf))
        page.click("#upload button[type=submit]")
        page.wait_for_url(f"{demo}/dictionaries/documents/*")
        assert page.locator("h1").inner_text() == "Прайс-лист 2027"
        with page.expect_download() as info:
            page.click("a.button.small")
        saved = tmp_path / "downloaded.pdf"
        info.value.save_as(saved)
        assert saved.read_bytes() == PDF
        assert info.value.suggested_filename == "прайс.pdf"
        page.goto(demo + "/dictionaries/documents/")
        assert page.locator("main tbody tr").count() == 4  # three from the demo, ours
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        page.screenshot(path=str(tmp_path / "library.png"), full_page=True)


LINES = """els => els.map(e => { const r = document.createRange(); r.selectNodeContents(e);
  return [e.textContent.trim(), new Set([...r.getClientRects()].map(x => Math.round(x.top))).size];
})"""


@pytest.mark.parametrize("width", [1280, 1100, 390])
def test_filter_buttons_stay_whole_and_the_menu_marks_documents(demo: str, width: int) -> None:
    """Issue 16, point 11: "Apply" and "Reset" never break mid-word, whatever the width,
    and on the documents page the bar marks "Documents", not "Dictionaries"."""
    with chromium() as browser:
        page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
        page.goto(demo + "/login?next=/dictionaries/tariffs")
        page.fill("input[name=login]", "admin@demo.kabinet.example")
        page.fill("input[name=password]", "kabinet-demo")
        page.click("form.id-form button[type=submit]")
        page.wait_for_url(demo + "/dictionaries/tariffs")
        lines = page.locator(".dict-buttons > *").evaluate_all(LINES)
        assert [text for text, _ in lines] == ["Отобрать", "Сбросить"]
        assert all(n == 1 for _, n in lines), lines
        page.goto(demo + "/dictionaries/documents/")
        if width < 500:  # on a phone the sections are in the header's menu
            page.click("details.sitemenu > summary")
        current = page.locator("[aria-current=page]").all_inner_texts()
        assert [c.strip() for c in current] == ["Документы"]
