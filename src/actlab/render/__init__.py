"""How numbers, names and figures are written: the helpers the studies' sections and the
report share. Below the studies and the report (both import from here; it imports neither),
so a study writes its section without reaching up into the report package.

- text.py: one format per kind of number (fmt, pct, sci, interval) and activation names
  as written (names_as_code)
- figures.py: matplotlib set-up, the activation colours, saving, loss curves
"""
