"""`python scripts/sample.py ...` is `avlae-sample ...`: see `avlae_keras.cli.sample`
(`--helpfull` lists every option). Needs the package installed (`make install` does it)."""

from avlae_keras.cli.sample import run

if __name__ == "__main__":
    run()
