"""`python -m crystograph ...`: the same command-line interface as the `crystograph` script."""

from crystograph.cli import app

if __name__ == "__main__":
    app(prog_name="crystograph")
