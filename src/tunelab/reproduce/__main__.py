import sys

from tunelab.reproduce.cli import main

sys.exit(main())
