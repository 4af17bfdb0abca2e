"""``python -m archspec``: the same as the ``archspec`` command."""

import sys

from archspec.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
