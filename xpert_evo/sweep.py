"""``python -m xpert_evo.sweep MULTIRUN_DIR``: aggregate a multirun (`report.sweep`)."""

import sys

from xpert_evo.report.sweep import aggregate, main

__all__ = ["aggregate", "main"]

if __name__ == "__main__":
    sys.exit(main())
