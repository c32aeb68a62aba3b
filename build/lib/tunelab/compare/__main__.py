"""`python -m tunelab.compare …`: see `tunelab.compare.cli`."""

import sys

from tunelab.compare.cli import main

if __name__ == "__main__":
    sys.exit(main())
