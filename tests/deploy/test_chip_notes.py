"""The chip reports' notes (``deploy.neurons``): an input encoder whose output is not unsigned event counts (analog
values, signed spikes) is named; spike and event-frame encoders, and delta coding without OFF spikes, are not."""

import pytest

from deepspike.deploy.neurons import chip_input_note
from deepspike.methods import get_method
from deepspike.models import create_architecture


@pytest.mark.parametrize("options, what", [
    ({"encoder": "direct"}, "analog values"),
    ({"encoder": "bipolar"}, "signed spikes"),
    ({"encoder": "population", "population_size": 2}, "analog values"),
    ({"encoder": "delta"}, "signed ON/OFF spikes"),
    ({"encoder": "poisson"}, None),
    ({"encoder": "frames"}, None),
    ({"encoder": "delta", "delta_off_spikes": False}, None),
    ({"encoder": "population", "population_size": 2, "population_spikes": True}, None),
])
def test_encoders_the_chips_inputs_cannot_carry_are_named(options, what):
    width = 2 * 4 if options["encoder"] == "population" else 4
    net = get_method("stbp", options).build(create_architecture("rsnn", num_classes=2, input_shape=(width,),
                                                                hidden=[3]))
    note = chip_input_note(net)
    if what is None:
        assert note is None
    else:
        assert note == (f"its input encoder ({options['encoder']}) gives {what}"
                        + (" (delta_off_spikes; 2F unsigned channels would carry them)" if "ON/OFF" in what else "")
                        + ", not the unsigned event counts the chip's inputs take")


@pytest.mark.parametrize("encoding, what", [("direct", "analog values"), ("poisson", "signed spikes")])
def test_a_converted_nets_encoders_are_named_too(encoding, what):
    """A converted net's direct encoder (the image every step) had no ``kind``, so the chip reports said nothing
    of its analog input; its signed Poisson encoder gives -a, 0, a."""
    arch = create_architecture("mlp", num_classes=2, input_shape=(4,), hidden=[3])
    net = get_method("converted", {"timesteps": 4, "encoding": encoding}).build(arch)
    kind = "direct" if encoding == "direct" else "bipolar"
    assert chip_input_note(net) == (f"its input encoder ({kind}) gives {what}, not the unsigned event counts the "
                                    "chip's inputs take")


@pytest.mark.parametrize("options", [{"initial_membrane": 0.5}, {"spike_value": "threshold"},
                                     {"reset": "subtract", "signed": True}, {"thresholds": [[0.5, 0.7, 0.9], 1.0]}])
def test_a_low_latency_converted_net_is_refused_by_the_chip_mappers(options):
    # before: speck_layers / xylo_layers mapped each ChunkedIF as a plain IF layer of its layer threshold (v_0 = 0,
    # 0/1 spikes), and the reports said the net fits: the chip would run another net (NIR export refuses it so)
    from deepspike.core.errors import ConfigError
    from deepspike.deploy.speck import speck_layers
    from deepspike.deploy.xylo import xylo_layers

    arch = create_architecture("mlp", num_classes=2, input_shape=(4,), hidden=[3])
    net = get_method("converted", {"timesteps": 4, **options}).build(arch)
    for mapper, chip in ((lambda: speck_layers(net, (4,)), "speck"), (lambda: xylo_layers(net), "xylo")):
        with pytest.raises(ConfigError, match=rf"^{chip}: layer \d \(ChunkedIF\) is a low-latency converted neuron"):
            mapper()
    plain = get_method("converted", {"timesteps": 4}).build(arch)
    assert len(speck_layers(plain, (4,))) == len(xylo_layers(plain)) == 2
