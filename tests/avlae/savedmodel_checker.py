"""Runs every signature of an exported AVLAE SavedModel with TensorFlow and NumPy only.

`python savedmodel_checker.py SAVED_MODEL INPUTS.npz OUTPUTS.npz`: INPUTS holds arrays named
`<signature>/<case>/<input>`; OUTPUTS gets `<signature>/<case>/<output>`.

The project, Keras and JAX are made unimportable before TensorFlow is imported (TensorFlow
itself imports Keras and JAX when they are installed, so "not in sys.modules" cannot be checked
directly): the SavedModel must load and run without them. The check at the end confirms that
nothing replaced the blocks.
"""

import sys

BLOCKED = ("avlae_keras", "flows", "keras", "jax", "jaxlib")
for _name in BLOCKED:
    sys.modules[_name] = None  # `import _name` now raises ImportError; find_spec returns None

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


def main(saved_model: str, inputs_file: str, outputs_file: str) -> None:
    loaded = tf.saved_model.load(saved_model)
    cases: dict[tuple[str, str], dict] = {}
    with np.load(inputs_file) as inputs:
        for key in inputs.files:
            signature, case, name = key.split("/")
            cases.setdefault((signature, case), {})[name] = inputs[key]
    results = {}
    for (signature, case), arguments in sorted(cases.items()):
        function = loaded.signatures[signature]
        outputs = function(**{name: tf.constant(value) for name, value in arguments.items()})
        for name, value in outputs.items():
            results[f"{signature}/{case}/{name}"] = value.numpy()
        if signature != "serving_default":
            # The endpoint is also a method of the loaded object, with positional arguments.
            method_outputs = getattr(loaded, signature)(*arguments.values())
            for name, value in method_outputs.items():
                results[f"{signature}/{case}/method_{name}"] = value.numpy()
    np.savez(outputs_file, **results)
    imported = sorted(
        name
        for name, module in sys.modules.items()
        if name.split(".")[0] in BLOCKED and module is not None
    )
    if imported:
        raise SystemExit(f"the SavedModel needed the project or Keras: imported {imported[:5]}")
    print(f"ok: {len(cases)} calls")


if __name__ == "__main__":
    main(*sys.argv[1:])
