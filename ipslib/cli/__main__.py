"""``python -m ipslib.cli``: the ``ipslib`` command line."""

from ipslib.cli import main

raise SystemExit(main())
