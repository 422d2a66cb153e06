"""``python -m cnnbench``: the ``cnnbench`` command."""

import sys

from cnnbench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
