"""A Keras callback that presses Ctrl-C at the start of a chosen trial's training, shared by the
tests of resuming a user's study."""

from __future__ import annotations

import keras


class StopAt(keras.callbacks.Callback):
    """Ctrl-C as the n-th trial starts training."""

    def __init__(self, trial: int) -> None:
        super().__init__()
        self.trial, self.fits = trial, 0

    def on_train_begin(self, logs=None):
        self.fits += 1
        if self.fits == self.trial:
            raise KeyboardInterrupt
