"""The TensorFlow-free pipeline as a keras PyDataset (imports keras, so loaded lazily)."""

from __future__ import annotations

import keras

from avlae_keras.data.clip_loader import ClipLoader
from avlae_keras.data.step_batches import StepBatches


class ClipPyDataset(keras.utils.PyDataset):
    """TensorFlow-free pipeline: batch `i` of the current epoch (step epoch * len + i of
    `StepBatches`), as a keras PyDataset.

    The epoch advances in `on_epoch_end` (called by `model.fit`) when batches were served
    since the last advance (Keras also calls it before the first epoch); `set_epoch`
    sets it.
    Pass `shuffle=False` to `fit`: the clip order is already shuffled per epoch, and
    Keras would otherwise reorder whole batches with Python's `random`.
    """

    def __init__(
        self,
        loader: ClipLoader,
        batch_size: int,
        *,
        with_labels: bool = False,
        drop_remainder: bool = False,
        epoch: int = 0,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
    ):
        super().__init__(
            workers=workers, use_multiprocessing=use_multiprocessing, max_queue_size=max_queue_size
        )
        self.batch_size = batch_size
        self.with_labels = with_labels
        self.drop_remainder = drop_remainder
        self.loader = loader
        self.epoch = epoch
        self._served = False

    @property
    def loader(self) -> ClipLoader:
        return self.batches.loader

    @loader.setter
    def loader(self, loader: ClipLoader) -> None:
        self.batches = StepBatches(loader, self.batch_size, drop_remainder=self.drop_remainder)

    def __len__(self) -> int:
        return self.batches.steps_per_epoch

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range for {len(self)} batches")
        clips, labels = self.batches.load(self.epoch * len(self) + index)
        self._served = True
        return (clips, labels) if self.with_labels else clips

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._served = False

    def on_epoch_end(self) -> None:
        if self._served:
            self.epoch += 1
            self._served = False
