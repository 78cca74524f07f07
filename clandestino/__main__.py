"""`python -m clandestino`: the `cdt` command, for where the script is not on PATH."""

from clandestino.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
