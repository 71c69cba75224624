"""`python -m rap_hf.cli` runs the `rap-hf` command line, as `python -m rap_hf` does."""

from .main import main

if __name__ == "__main__":
    raise SystemExit(main())
