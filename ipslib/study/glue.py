"""What an executed chapter notebook shows: its glued values and the text of its outputs, for comparing two
executions of the same pages (``python -m ipslib.study.glue BEFORE_DIR AFTER_DIR``).

Glued values are read from myst-nb's glue outputs (``metadata.scrapbook.name``): the ``text/plain`` value, or
the SHA-256 of the PNG for a glued figure. Output text is every markdown, HTML or plain-text output (in that order of
preference), with object addresses (``0x7f...``) and pandas Styler ids (``T_1a2b3``) masked, since they differ
between runs without meaning anything.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

__all__ = ["glued_values", "output_texts", "compare_dirs"]

_ADDRESS = re.compile(r"0x[0-9a-f]{6,}|(?<=T_)[0-9a-f]{5}(?=[_\"\s])")
_TEXT_TYPES = ("text/markdown", "text/html", "text/plain")


def _cells(path: Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())["cells"]


def _text(value: Any) -> str:
    return _ADDRESS.sub("0x…", "".join(value) if isinstance(value, list) else str(value))


def glued_values(path: str | Path) -> dict[str, str]:
    """``{glue name: text/plain value}`` of an executed notebook (``png:<sha256>`` for a glued figure)."""
    values: dict[str, str] = {}
    for cell in _cells(Path(path)):
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if not meta:
                continue
            prefix, data = meta.get("mime_prefix", ""), output.get("data", {})
            png = data.get(prefix + "image/png")
            if png is not None:
                values[meta["name"]] = "png:" + hashlib.sha256(_text(png).encode()).hexdigest()[:16]
            else:
                values[meta["name"]] = _text(data.get(prefix + "text/plain", ""))
    return values


def output_texts(path: str | Path) -> list[str]:
    """The text of every displayed (not glued) output, in order: markdown, else HTML, else plain text."""
    texts = []
    for cell in _cells(Path(path)):
        for output in cell.get("outputs", []):
            if output.get("metadata", {}).get("scrapbook"):
                continue
            data = output.get("data", {})
            if output.get("output_type") == "stream":
                texts.append(_text(output.get("text", "")))
            for kind in _TEXT_TYPES:
                if kind in data:
                    texts.append(_text(data[kind]))
                    break
    return texts


def compare_dirs(before: str | Path, after: str | Path) -> dict[str, Any]:
    """Per notebook present in both folders: glued values that differ and whether the output texts match.

    Returns:
        ``{"notebooks": n, "glued": total glued values compared, "glued_differ": [(notebook, name, before,
        after)], "texts_differ": [notebook, ...], "only_before": [...], "only_after": [...]}``.
    """
    b = {p.name: p for p in Path(before).glob("*.ipynb")}
    a = {p.name: p for p in Path(after).glob("*.ipynb")}
    report: dict[str, Any] = {
        "notebooks": len(b.keys() & a.keys()),
        "glued": 0,
        "glued_differ": [],
        "texts_differ": [],
        "only_before": sorted(b.keys() - a.keys()),
        "only_after": sorted(a.keys() - b.keys()),
    }
    for name in sorted(b.keys() & a.keys()):
        old, new = glued_values(b[name]), glued_values(a[name])
        report["glued"] += len(old.keys() | new.keys())
        for key in sorted(old.keys() | new.keys()):
            if old.get(key) != new.get(key):
                report["glued_differ"].append((name, key, old.get(key), new.get(key)))
        if output_texts(b[name]) != output_texts(a[name]):
            report["texts_differ"].append(name)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("before", type=Path, help="folder of executed notebooks")
    parser.add_argument("after", type=Path, help="folder of the same notebooks executed again")
    args = parser.parse_args(argv)
    report = compare_dirs(args.before, args.after)
    print(
        f"{report['notebooks']} notebooks, {report['glued']} glued values compared, "
        f"{len(report['glued_differ'])} differ; output text differs in {len(report['texts_differ'])}"
    )
    for row in report["glued_differ"]:
        print("  glued  ", *row, sep=" | ")
    for name in report["texts_differ"]:
        print("  text   ", name)
    for key in ("only_before", "only_after"):
        if report[key]:
            print(f"  {key}: {', '.join(report[key])}")
    return 0 if not report["glued_differ"] and not report["only_before"] else 1


if __name__ == "__main__":
    sys.exit(main())
