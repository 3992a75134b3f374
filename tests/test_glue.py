"""Reading what executed notebooks show, to compare two executions of the book's pages."""

import json

from ipslib.study.glue import compare_dirs, glued_values, output_texts


def _notebook(path, value, text, figure="AAAA"):
    record = "application/papermill.record/"
    cells = [
        {
            "cell_type": "code",
            "outputs": [
                {
                    "output_type": "display_data",
                    "metadata": {"scrapbook": {"name": "n", "mime_prefix": record}},
                    "data": {record + "text/plain": value},
                },
                {
                    "output_type": "display_data",
                    "metadata": {"scrapbook": {"name": "fig", "mime_prefix": record}},
                    "data": {record + "image/png": figure, record + "text/plain": "<Figure at 0x7f3a2b1c>"},
                },
                {
                    "output_type": "display_data",
                    "metadata": {},
                    "data": {"text/markdown": text, "text/plain": "<IPython.Markdown>"},
                },
                {"output_type": "stream", "name": "stdout", "text": ["object at 0x7f00aa11bb22\n"]},
            ],
        },
        {"cell_type": "markdown", "source": "prose"},
    ]
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))


def test_glued_values_and_texts(tmp_path):
    _notebook(tmp_path / "a.ipynb", "43.5", "**verdict**")
    values = glued_values(tmp_path / "a.ipynb")
    assert values["n"] == "43.5" and values["fig"].startswith("png:")
    assert output_texts(tmp_path / "a.ipynb") == ["**verdict**", "object at 0x…\n"]


def test_compare_dirs_reports_each_difference(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir(), after.mkdir()
    _notebook(before / "page.ipynb", "43.5", "same")
    _notebook(after / "page.ipynb", "43.5", "same")
    _notebook(before / "gone.ipynb", "1", "x")
    report = compare_dirs(before, after)
    assert report["glued"] == 2 and report["glued_differ"] == [] and report["texts_differ"] == []
    assert report["only_before"] == ["gone.ipynb"]
    _notebook(after / "page.ipynb", "44.0", "changed", figure="BBBB")
    report = compare_dirs(before, after)
    assert [(r[0], r[1]) for r in report["glued_differ"]] == [("page.ipynb", "fig"), ("page.ipynb", "n")]
    assert report["texts_differ"] == ["page.ipynb"]
