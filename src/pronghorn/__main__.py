"""``python -m pronghorn``: the same entry point as the ``pronghorn`` command."""

from pronghorn.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
