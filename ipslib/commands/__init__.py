"""Command groups of the ``ipslib`` command line (see :mod:`ipslib.cli`)."""
