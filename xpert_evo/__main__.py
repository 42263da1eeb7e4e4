"""``python -m xpert_evo``: the co-design search (see `xpert_evo.app`)."""

from xpert_evo.app import main

if __name__ == "__main__":
    main()
