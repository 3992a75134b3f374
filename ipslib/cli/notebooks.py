"""``ipslib template NAME --out FILE.ipynb``: a notebook template (``book/templates/NAME.md``, MyST Markdown) written
as a ``.ipynb`` notebook, for papermill (which executes ``.ipynb`` files) or Jupyter.

Its ``parameters`` cell lists what it takes (``papermill --help-notebook FILE.ipynb``); see
:mod:`ipslib.study.pages.parameters` for how they are checked.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ipslib.config import ConfigError

__all__ = ["register"]


def _template(args: argparse.Namespace) -> int:
    import nbformat

    from ipslib.study import runner
    from ipslib.study.experiments import load_experiments
    from ipslib.system.files import atomic_write_text

    if args.out.suffix != ".ipynb":
        raise ConfigError(f"--out {args.out}: name a .ipynb file (papermill and Jupyter read notebooks)")
    if args.experiment:
        experiments = load_experiments()
        if args.experiment not in experiments:
            raise ConfigError(f"--experiment {args.experiment}: not in params/; choose one of {', '.join(experiments)}")
        notebook = runner.prepare_notebook(experiments[args.experiment])
    else:
        notebook = runner.read_template(args.name)
    atomic_write_text(args.out, nbformat.writes(notebook))
    print(f"wrote {args.out}; its parameters: papermill --help-notebook {args.out}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    template = sub.add_parser(
        "template",
        help="write a notebook template as .ipynb, for papermill or Jupyter",
        description="Write book/templates/NAME.md as a .ipynb notebook (with --experiment: that experiment's "
        "template, its title filled in), to execute with papermill or open in Jupyter.",
    )
    template.add_argument("name", nargs="?", default="experiment", help="template name (default: experiment)")
    template.add_argument("--experiment", help="an experiment of params/: its template and title")
    template.add_argument("--out", type=Path, required=True, metavar="FILE.ipynb", help="notebook to write")
    template.set_defaults(handler=_template)
