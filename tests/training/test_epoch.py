"""The console line of a finished epoch."""

from deepspike.training.epoch import epoch_line


def test_epoch_line_format():
    record = {
        "epoch": 3,
        "train_loss": 0.41234,
        "train_accuracy": 0.85712,
        "test_accuracy": 0.86281,
        "epoch_seconds": 41.23,
        "val_accuracy": None,
    }
    assert epoch_line(record, 10) == "epoch 3/10  train_loss 0.4123  train_acc 0.8571  test_acc 0.8628  (41.2 s)"
    record["val_accuracy"] = 0.9
    assert "  val_acc 0.9000  test_acc" in epoch_line(record, 10)
