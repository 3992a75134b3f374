"""Open a built book in headless Chromium and check every page of its table of contents.

Usage: ``python tests/browser.py HTML_DIR [SCREENSHOT_DIR]``. Fails (exit 1) on a missing page, a broken
image, an empty glued value, an unrendered table or Markdown, an error banner from a notebook cell, or an
element that overflows the text column sideways in a 1400-px-wide window.
Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")

PAGE_PROBLEMS_JS = """
const problems = [];
for (const img of document.querySelectorAll('main img')) {
  if (!img.complete || img.naturalWidth === 0) problems.push('broken image ' + img.getAttribute('src'));
}
for (const el of document.querySelectorAll('main .pasted-text, main .pasted-inline')) {
  if (!el.textContent.trim()) problems.push('empty glued value');
}
const text = document.querySelector('main') ? document.querySelector('main').innerText : '';
if (/\\{glue[:}]/.test(text)) problems.push('unrendered glue role');
if (text.includes('\\\\(') || text.includes('$$')) problems.push('unrendered math');
if (/^\\s*\\|\\s*-{3,}/m.test(text)) problems.push('unrendered Markdown table');
const column = document.querySelector('main article') || document.querySelector('main');
const right = column ? column.getBoundingClientRect().right + 2 : Infinity;
const label = (el) => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ')[0] : '') +
  ' "' + (el.innerText || el.getAttribute('src') || '').trim().slice(0, 40) + '"';
for (const el of document.querySelectorAll('main table, main img, main .cell_output, main .output')) {
  if (el.scrollWidth > el.clientWidth + 2 && el.clientWidth > 0) problems.push('overflows sideways: ' + label(el));
  if (el.getBoundingClientRect().right > right) problems.push('wider than the text column: ' + label(el));
}
if (/Traceback \\(most recent call last\\)/.test(text) || document.querySelector('main .output.traceback'))
  problems.push('error output on the page');
return {problems: problems, tables: document.querySelectorAll('main table').length,
        images: document.querySelectorAll('main img').length,
        title: document.title, chars: text.length};
"""


def toc_pages(html_dir: Path) -> list[Path]:
    """Every page the sidebar (the book's TOC) links to, starting from the root page."""
    from html.parser import HTMLParser

    class Links(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.hrefs: list[str] = []
            self.in_nav = 0

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "nav" and "bd-docs-nav" in (attrs.get("class") or ""):
                self.in_nav += 1
            if self.in_nav and tag == "a" and attrs.get("href") and "reference internal" in (attrs.get("class") or ""):
                self.hrefs.append(attrs["href"].split("#")[0])

        def handle_endtag(self, tag):
            if tag == "nav" and self.in_nav:
                self.in_nav -= 1

    root = (html_dir / "book" / "intro.html").resolve()
    parser = Links()
    parser.feed(root.read_text())
    pages = [root] + [(root.parent / href).resolve() for href in parser.hrefs if href]
    unique: list[Path] = []
    for page in pages:
        if page not in unique:
            unique.append(page)
    return unique


def check_book(html_dir: Path, screenshots: Path | None = None) -> tuple[list[str], dict[str, dict]]:
    """Visit every TOC page; returns (problems, per-page facts). Screenshots the intro and one results page."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,900",
        "--disable-background-networking",
        "--no-first-run",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    problems: list[str] = []
    facts: dict[str, dict] = {}
    try:
        pages = toc_pages(html_dir)
        if len(pages) < 3:
            problems.append(f"the table of contents lists only {len(pages)} page(s)")
        shot_results = False
        for page in pages:
            name = str(page.relative_to(html_dir.resolve())) if page.is_relative_to(html_dir.resolve()) else str(page)
            if not page.is_file():
                problems.append(f"{name}: missing page")
                continue
            driver.get(page.as_uri())
            info = driver.execute_script(PAGE_PROBLEMS_JS)
            facts[name] = info
            problems += [f"{name}: {p}" for p in info["problems"]]
            if info["chars"] < 200:
                problems.append(f"{name}: page is (nearly) empty")
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                if page.name == "intro.html":
                    driver.save_screenshot(str(screenshots / "intro.png"))
                elif "notebooks" in name and info["images"] and not shot_results and "status" not in name:
                    driver.execute_script("document.querySelector('main img').scrollIntoView()")
                    driver.save_screenshot(str(screenshots / "results.png"))
                    shot_results = True
    finally:
        driver.quit()
    return problems, facts


def main(argv: list[str]) -> int:
    html_dir = Path(argv[0])
    problems, facts = check_book(html_dir, Path(argv[1]) if len(argv) > 1 else None)
    print(f"checked {len(facts)} pages")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
