"""`python -m rap_hf` runs the `rap-hf` command line."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
