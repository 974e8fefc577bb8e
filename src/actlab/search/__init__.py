"""actlab search: look for new activation functions.

The flow (../DESIGN.md): candidates (space.py) -> drops before training (screen.py: not
finite, constant, duplicates) -> rungs of successive halving on a proxy study (halving.py)
-> confirmation of the finalists on fresh seeds. Each part is a small pure module so it can
be tested without training anything.
"""

from actlab.callable_module import callable_as  # noqa: E402

callable_as(__name__, "actlab.search.run:search")  # `actlab.search(...)` once imported
