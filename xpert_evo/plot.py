"""``python -m xpert_evo.plot RUN_DIR ...``: redraw and overlay saved fronts (`report.plot`)."""

import sys

from xpert_evo.report.plot import main, replot

__all__ = ["main", "replot"]

if __name__ == "__main__":
    sys.exit(main())
