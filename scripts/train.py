"""`python scripts/train.py ...` is `avlae-train ...`: see `avlae_keras.cli.train`
(`--helpfull` lists every option). Needs the package installed (`make install` does it)."""

from avlae_keras.cli.train import run

if __name__ == "__main__":
    run()
