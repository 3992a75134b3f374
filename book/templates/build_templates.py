"""Writes the notebook templates experiment.ipynb, status.ipynb and chance.ipynb (run from the repository root)."""

import nbformat as nbf
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook


def code(src, tags=()):
    c = new_code_cell(src)
    c.metadata["tags"] = list(tags)
    return c


def md(src, tags=()):
    c = new_markdown_cell(src)
    c.metadata["tags"] = list(tags)
    return c


def write(notebook, path):
    """Write with stable cell ids (cell-0, cell-1, ...), so rebuilding an unchanged template changes nothing."""
    for i, cell in enumerate(notebook.cells):
        cell["id"] = f"cell-{i}"
    nbf.write(notebook, path)


kernel = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}

exp = new_notebook(metadata=kernel)
exp.cells = [
    md(
        "# Experiment\n\nThe book's runner replaces this cell with the experiment's title and question "
        "(from `params/<experiment>.yaml`).",
        tags=["title"],
    ),
    code(
        'experiment: str = "o2i_datasize"   # a params/<experiment>.yaml file\n'
        'profile: str = "cpu"               # smoke | cpu | paper',
        tags=["parameters", "remove-cell"],
    ),
    code(
        "%matplotlib inline\nimport pandas as pd\nfrom IPython.display import Markdown, display\nfrom myst_nb import glue\n\n"
        "from ipslib import report\nfrom ipslib.study.results import load_results\n\n"
        'pd.set_option("display.max_rows", 200)\n'
        "results = load_results(experiment, profile)\n"
        "display(Markdown(report.profile_note(results)))\n"
        "if results.missing:\n"
        '    display(Markdown("**Missing runs** (no finished record; see `outputs/" + profile + '
        '"/status.json`): " + ", ".join(f"`{n}`" for n in results.missing)))',
        tags=["remove-input"],
    ),
    md(
        "## Settings\n\nThe settings every run of this profile shares, beside the paper profile's "
        "(`differs` marks a deviation from the dissertation's logged settings)."
    ),
    code("report.settings_table(results)", tags=["remove-input"]),
    md(
        "## Results\n\nLast-epoch test accuracy (%), mean ± population std over repeats (the dissertation "
        "reports the last epoch and calls the test split *validation*)."
    ),
    code("display(Markdown(report.chance_note(results)))", tags=["remove-input"]),
    code("report.summary_table(results, 'last')", tags=["remove-input"]),
    md("Best-epoch test accuracy (%), the epoch with the highest mean test accuracy over tasks:"),
    code("report.summary_table(results, 'best')", tags=["remove-input"]),
    code(
        "fig = report.accuracy_figure(results)\nglue('accuracy_figure', fig, display=False)\nfig", tags=["remove-input"]
    ),
    md(
        "## The dissertation beside ours\n\nValues in %; `same_setting` is true only in the paper profile. "
        "Source of every dissertation value is named in the `source` column."
    ),
    code(
        "comparison = report.comparison_table(results)\n"
        "comparison if len(comparison) else Markdown('No table of the dissertation reports this experiment.')",
        tags=["remove-input"],
    ),
    md(
        "## Verdict\n\nEach claim of the dissertation this chapter tests, with the two arms it compares "
        "(rule: `ipslib.study.verdict`)."
    ),
    code(
        "from ipslib import verdict\n\nevaluated = verdict.evaluate_all(results)\n"
        "display(Markdown(verdict.verdict_markdown(evaluated, profile)))\n"
        "claims = verdict.verdict_table(evaluated)\n"
        "claims if len(claims) else None",
        tags=["remove-input"],
    ),
    md("## Training curves"),
    code("report.history_figure(results)", tags=["remove-input"]),
    md("## Every run"),
    code("report.runs_table(results)", tags=["remove-input"]),
    code(
        "for key, value in report.headline(results).items():\n    glue(key, value, display=False)", tags=["remove-cell"]
    ),
]
write(exp, "book/templates/experiment.ipynb")

status = new_notebook(metadata=kernel)
status.cells = [
    md(
        "# Environment and execution status\n\nWhat ran, where, and how long it took, read from papermill's "
        "metadata in the executed notebooks and from the runner's `status.json`."
    ),
    code('profile: str = "cpu"', tags=["parameters", "remove-cell"]),
    code(
        "%matplotlib inline\nfrom IPython.display import Markdown, display\nfrom myst_nb import glue\n\n"
        "from ipslib import book\n\n"
        "env = book.environment_table()\nstatus = book.execution_table(profile)\n"
        "train, n_runs = book.training_seconds(profile)\nnotebooks = book.notebook_seconds(profile)\n"
        "total = train + notebooks\n"
        "glue('total_hours', total / 3600, display=False)\n"
        "display(Markdown(f'Profile **{profile}**: **{total / 3600:.2f} h** of compute in all: {n_runs} distinct '\n"
        "                 f'runs trained for {train / 3600:.2f} h (the sum of their epoch times from the run '\n"
        "                 f'records, a run shared by several chapters counted once; two runs trained at a time '\n"
        "                 f'on 2 cores, as for the committed cpu outputs, take about half that in wall-clock '\n"
        "                 f'time), and the '\n"
        "                 f'notebooks executed in {notebooks / 60:.1f} min.'))",
        tags=["remove-input"],
    ),
    md("## Environment"),
    code("env", tags=["remove-input"]),
    md(
        "## Execution status per experiment\n\n`runs` counts distinct runs, `finished` those with a "
        "finished record; failed runs name their log."
    ),
    code("status", tags=["remove-input"]),
    md("## GPU measurements"),
    code("display(Markdown(book.gpu_note()))", tags=["remove-input"]),
]
write(status, "book/templates/status.ipynb")

chance = new_notebook(metadata=kernel)
chance.cells = [
    md("# Chance levels\n\nReplaced by the runner.", tags=["title"]),
    code('experiment: str = "chance_levels"\nprofile: str = "cpu"', tags=["parameters", "remove-cell"]),
    code(
        "%matplotlib inline\nfrom IPython.display import Markdown, display\nfrom myst_nb import glue\n\n"
        "from ipslib.data.chance import exact_chance_levels, simulated_chance_levels\n"
        "from ipslib.data import MegapixelMNIST\n\n"
        "n = 300 if profile == 'smoke' else 5000\n"
        "source = 'sample' if profile == 'smoke' else 'mnist'\n"
        "dataset = MegapixelMNIST({'canvas_size': 140, 'digit_size': 28, 'n_noise': 0, 'n_test': n,\n"
        "                          'digit_source': source}, split='test')\n"
        "exact = exact_chance_levels(dataset.digits.labels)\n"
        "simulated = simulated_chance_levels(dataset, n, exact['prediction'].to_dict())\n"
        "table = exact.join(simulated)\n"
        "glue('max_chance', float(exact.loc['max', 'chance (%)']), display=False)\n"
        "p = table['chance (%)'] / 100\n"
        "table['3 standard errors (%)'] = 300 * (p * (1 - p) / n) ** 0.5\n"
        "agree = bool(((table['simulated (%)'] - table['chance (%)']).abs() <= table['3 standard errors (%)']).all())\n"
        "glue('agreement', 'agrees with the exact values within three standard errors on every task' if agree\n"
        "     else 'does NOT agree with the exact values within three standard errors', display=False)\n"
        "glue('n_simulated', n, display=False)\n"
        "display(Markdown(f'Digits: **{source}** test split ({len(dataset.digits.labels)} digits); '\n"
        "                 f'simulation: the first {n} generated test canvases.'))\n"
        "table.round(2)",
        tags=["remove-input"],
    ),
    md(
        "## Verdict\n\nThe dissertation's §9.2 gives 30 % for Max by counting sets of three *distinct* digits "
        "(C(10, 3)). The generator draws three digits of the target class and two digits of other classes "
        "that may repeat, so the best constant guess for Max is 9 and its accuracy is the exact value in the "
        "table, {glue:text}`max_chance:.1f` %. The simulation over {glue:text}`n_simulated` generated canvases "
        "{glue:text}`agreement`. The dissertation's 30 % is close to the exact value by coincidence, not by its "
        "derivation (spec P19)."
    ),
]
write(chance, "book/templates/chance.ipynb")
