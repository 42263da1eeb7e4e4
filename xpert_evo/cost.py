"""Entry point of the cost command: `python -m xpert_evo.cost INPUT.csv --out OUT.csv [...]`
(xpert_evo.hardware.cli documents it)."""

import sys

from xpert_evo.hardware.cli import main

if __name__ == "__main__":
    sys.exit(main())
