"""`python scripts/prepare_data.py ...` is `avlae-prepare-data ...`: see
`avlae_keras.cli.prepare_data` (`--helpfull` lists every option). Needs the package installed
(`make install` does it)."""

from avlae_keras.cli.prepare_data import run

if __name__ == "__main__":
    run()
