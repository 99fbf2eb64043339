"""``training.run_setup``: data whose samples hold a time axis (sequences, event frames) is refused in one line by a
method or encoder that reads single images, before anything is built or written; augmentation sizes are checked
against the samples' shape and steps."""

import pytest

from deepspike.config import load_config
from deepspike.core.errors import ConfigError
from deepspike.data.augment import Augment
from deepspike.training.trainer import Trainer

FEW = ["train.epochs=1", "train.progress=false", "train.max_steps_per_epoch=1"]


@pytest.mark.parametrize("data, args, reader", [
    ("digits_rows", ["method.name=ann", "model.name=mlp", "model.args.hidden=[8]"], "method 'ann'"),
    ("digits_rows", ["method.name=stbp", "method.encoder=direct", "model.name=rsnn", "model.args.hidden=[8]"],
     "method 'stbp' with encoder 'direct'"),
    ("digits_events", ["method.name=stbp", "method.encoder=poisson", "model.name=mlp", "model.args.hidden=[8]"],
     "method 'stbp' with encoder 'poisson'"),
    ("digits_events", ["method.name=spikebp", "model.name=mlp", "model.args.hidden=[8]"],
     "method 'spikebp' with encoder 'bipolar'"),
])
def test_time_axis_data_with_an_image_reader_is_refused_before_the_run_starts(tmp_path, data, args, reader):
    with pytest.raises(ConfigError, match=f"^data '{data}' holds 8 steps per sample .* which {reader} does not read: "
                                          f"train it with stbp and method.encoder frames, delta or population$"):
        Trainer(load_config(None, [*args, f"data.name={data}", *FEW]), tmp_path / "run").fit()
    assert not (tmp_path / "run" / "config.yaml").exists()


def test_sequences_with_a_reading_encoder_train(tmp_path):
    for encoder in ("frames", "delta", "population"):
        Trainer(load_config(None, ["method.name=stbp", f"method.encoder={encoder}", "method.timesteps=8",
                                   "model.name=rsnn", "model.args.hidden=[8]", "data.name=digits_rows", *FEW]),
                tmp_path / encoder).fit()


def test_augmentation_sizes_must_fit_the_samples():
    Augment(crop_padding=8, roll=8, cutout=8).check_sample_shape((1, 8, 8))
    Augment(channel_shift=7, channel_mask=7, time_mask=7).check_sample_shape((8,), steps=8)
    for bad, shape, steps, limit in (({"crop_padding": 9}, (1, 8, 8), None, 8), ({"roll": 15}, (2, 14, 20), 6, 14),
                                     ({"cutout": 65536}, (1, 8, 8), None, 8), ({"channel_shift": 8}, (8,), 8, 7),
                                     ({"channel_mask": 700}, (700,), 100, 699), ({"time_mask": 8}, (8,), 8, 7)):
        name, value = next(iter(bad.items()))
        with pytest.raises(ConfigError, match=rf"^data.augment.{name}={value} does not fit samples of shape "
                                              rf".* at most {limit}$"):
            Augment(**bad).check_sample_shape(shape, steps)
    with pytest.raises(ConfigError, match="^augment.one_of picks one of roll, rotate, shear and cutout per sample, "
                                          "but none of them is on$"):
        Augment(one_of=True, crop_padding=1)
