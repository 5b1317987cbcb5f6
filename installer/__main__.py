"""`python -m installer`: the headless commands alone (no wizard), as the tests and benches run
them; the console script `gpu-kata-installer` (screens/cli.py) adds the screens."""

import sys

from installer.commands.cli import main

if __name__ == "__main__":
    sys.exit(main())
