"""`python scripts/export.py ...` is `avlae-export ...`: see `avlae_keras.cli.export`
(`--helpfull` lists every option). Needs the package installed (`make install` does it)."""

from avlae_keras.cli.export import run

if __name__ == "__main__":
    run()
