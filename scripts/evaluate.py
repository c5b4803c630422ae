"""`python scripts/evaluate.py ...` is `avlae-evaluate ...`: see `avlae_keras.cli.evaluate`
(`--helpfull` lists every option). Needs the package installed (`make install` does it)."""

from avlae_keras.cli.evaluate import run

if __name__ == "__main__":
    run()
