"""`python scripts/flow_demo.py ...` is `flows-demo ...`: see `flows.demo` (`--helpfull` lists
every option). Needs the package installed (`pip install -e .`, done by `make install`)."""

from flows.demo import run

if __name__ == "__main__":
    run()
