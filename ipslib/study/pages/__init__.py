"""What each kind of chapter computes from its experiment's records: tables, figures and verdict text.

The notebook templates (``book/templates/*.md``) hold a parameters cell, one call into a module here and the
glue; every rule a page states lives in a tested function of this package.
"""
