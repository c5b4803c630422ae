"""Command-line entry points (`avlae-train`, `avlae-evaluate`, `avlae-sample`, `avlae-export`,
`avlae-prepare-data`): absl flags generated from the configurations in `avlae_keras.config`.

Importing a command module defines no flags; its `run()` does, then parses `sys.argv`.
"""
