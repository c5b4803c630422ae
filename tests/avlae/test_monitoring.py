import numpy as np

from avlae_keras.monitoring import MetricsLogger, tensorboard_available


def test_jsonl_log_and_truncate_on_resume(tmp_path):
    logger = MetricsLogger(tmp_path, tensorboard=False)
    for step in range(1, 6):
        logger.log_scalars(step, {"loss": np.float32(step), "bad": float("nan")})
    with open(logger.jsonl_path, "a") as f:
        f.write('{"step": 6, "lo')  # a line cut short by a kill
    logger.truncate_after(3)
    rows = logger.read()
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert rows[0] == {"step": 1, "loss": 1.0, "bad": None}


def test_tensorboard_when_available(tmp_path):
    logger = MetricsLogger(tmp_path)
    logger.log_scalars(1, {"loss": 0.5})
    logger.log_image(1, "samples", np.zeros((4, 6, 3), np.uint8))
    logger.close()
    events = list((tmp_path / "tensorboard").glob("events.*"))
    assert bool(events) == tensorboard_available()
