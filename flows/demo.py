"""`flows-demo` (also `python scripts/flow_demo.py`): optical flow between two images with RAFT,
written as a picture: image 1 | image 2 | flow.

    flows-demo --image1=a.png --image2=b.png --out=flow.png
    flows-demo --out=flow.png     # a built-in pair with known motion

The preset's weights are read from $FLOWS_WEIGHTS_DIR or the cache, else downloaded.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from flows import RAFT, PresetUnavailableError, flow_to_color
from flows.visualize import color_wheel_legend

FLAGS = flags.FLAGS


def _define_flags() -> None:
    flags.DEFINE_string(
        "image1", None, "First image (any format Pillow reads). Default: built-in pair."
    )
    flags.DEFINE_string("image2", None, "Second image, same size as the first.")
    flags.DEFINE_string(
        "preset", "raft_sintel", "RAFT preset name, .pth checkpoint or converted folder."
    )
    flags.DEFINE_integer("iters", 12, "Refinement iterations.")
    flags.DEFINE_string("out", "flow_demo.png", "Where to write the PNG.")


def built_in_pair(height: int = 128, width: int = 160) -> tuple[np.ndarray, np.ndarray]:
    """A smooth random texture and the same texture zoomed in by 6% about its centre, so the flow
    points away from the centre and grows towards the edges (every colour of the wheel)."""
    rng = np.random.default_rng(0)
    coarse = rng.uniform(0, 255, (height // 8, width // 8, 3)).astype(np.uint8)
    texture = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
    zoom = 1.06
    crop_w, crop_h = width / zoom, height / zoom
    box = ((width - crop_w) / 2, (height - crop_h) / 2, (width + crop_w) / 2, (height + crop_h) / 2)
    zoomed = texture.resize((width, height), Image.BICUBIC, box=box)
    return np.asarray(texture, np.uint8), np.asarray(zoomed, np.uint8)


def read_rgb(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise app.UsageError(f"--image1/--image2: {path} is not a file")
    return np.asarray(Image.open(path).convert("RGB"), np.uint8)


def main(argv: list[str]) -> int:
    del argv
    if (FLAGS.image1 is None) != (FLAGS.image2 is None):
        raise app.UsageError("Give both --image1 and --image2, or neither for the built-in pair.")
    if FLAGS.image1:
        image1, image2 = read_rgb(FLAGS.image1), read_rgb(FLAGS.image2)
        if image1.shape != image2.shape:
            raise app.UsageError(f"images differ in size: {image1.shape} vs {image2.shape}")
    else:
        image1, image2 = built_in_pair()
    try:
        raft = RAFT.from_preset(FLAGS.preset)
    except PresetUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    _, flow = raft.compute_flow(
        image1[None].astype("float32"), image2[None].astype("float32"), iters=FLAGS.iters
    )
    flow = np.asarray(flow)[0]
    legend = np.full_like(image1, 255)
    size = min(64, *image1.shape[:2])
    legend[:size, :size] = color_wheel_legend(size)
    picture = np.concatenate([image1, image2, flow_to_color(flow), legend[:, : size + 4]], axis=1)
    Image.fromarray(picture).save(FLAGS.out)
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    print(
        f"wrote {FLAGS.out} (image 1 | image 2 | flow colour | colour wheel): flow magnitude "
        f"mean {magnitude.mean():.2f} px, max {magnitude.max():.2f} px"
    )
    return 0


def _parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, except that `--help` (and `--helpfull` ...) exits with status 0
    after printing the help (absl exits with 1)."""
    try:
        return FLAGS(argv)
    except flags.Error:
        return app.parse_flags_with_usage(argv)  # absl reports the bad flag and exits with 1
    except SystemExit as exit_:
        if exit_.code == 1:  # only the help flags exit while flags are parsed
            raise SystemExit(0) from None
        raise


def run() -> None:
    _define_flags()
    app.run(main, flags_parser=_parse_flags)


if __name__ == "__main__":
    run()
