"""``python -m lowrank``: the command-line face of the library (see ``python -m lowrank --help``)."""

import sys

from lowrank.cli import main

if __name__ == "__main__":
    sys.exit(main())
