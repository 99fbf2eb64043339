"""The recipe reference lists exactly the keys a run's config.yaml holds, with the defaults that loading gives."""

import json

import pytest
import yaml

from deepspike.config import load_config, save_config
from deepspike.config.reference import method_keys, section_doc, section_keys
from deepspike.core.errors import ConfigError


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for name, value in tree.items():
        key = f"{prefix}{name}"
        is_section = isinstance(value, dict) and key not in ("model.args", "data.args", "method.surrogate_args")
        out.update(_flat(value, key + ".") if is_section else {key: value})
    return out


@pytest.mark.parametrize("method", sorted(method_keys()))
def test_the_keys_and_defaults_are_those_of_a_saved_config(tmp_path, method):
    save_config(load_config(None, [f"method.name={method}"]), tmp_path / "config.yaml")
    saved = _flat(yaml.safe_load((tmp_path / "config.yaml").read_text()))
    listed = {k.key: k.default for keys in section_keys().values() for k in keys}
    listed.update({k.key: k.default for k in method_keys()[method]}, **{"method.name": method})
    assert listed == saved


def test_every_key_takes_its_default_as_an_override_and_refuses_a_wrong_type():
    for keys in section_keys().values():
        for k in keys:
            load_config(None, [f"{k.key}={json.dumps(k.default)}"])
            if k.type in ("int", "float", "bool"):
                with pytest.raises(ConfigError, match=k.key.split(".")[-1]):
                    load_config(None, [f"{k.key}=[1]"])


def test_the_choices_listed_are_exactly_the_values_taken():
    choice_keys = [k for keys in section_keys().values() for k in keys if k.choices]
    assert {k.key for k in choice_keys} == {"optim.name", "schedule.name", "train.precision", "train.temporal_grad",
                                            "train.log", "train.eprop_feedback"}
    needs = {"train.eprop_feedback": ["train.temporal_grad=eprop"]}  # an option of one mode
    for k in choice_keys:
        for value in k.choices:
            shown = json.dumps([value] if k.type.startswith("list") else value)
            load_config(None, [*needs.get(k.key, []), f"{k.key}={shown}"])
        wrong = ["nope"] if k.type.startswith("list") else "nope"
        with pytest.raises(ConfigError, match=f"valid: {', '.join(k.choices)}"):
            load_config(None, [*needs.get(k.key, []), f"{k.key}={json.dumps(wrong)}"])


def test_section_docs_name_their_keys():
    for section, keys in section_keys().items():
        doc = section_doc(section)
        assert doc, section
        if section in ("model", "data", "data.augment", "optim"):
            assert all(f"``{k.key.rsplit('.', 1)[1]}``" in doc for k in keys), section


# Options whose non-default values need another option set: per-channel / per-neuron constants need a neuron that
# learns some (the fixed default lif learns none, and refuses them).
COMPANIONS = {"method.neuron_params": ["method.neuron=plif"]}


def test_every_string_option_of_a_method_lists_the_values_it_takes():
    for method, keys in method_keys().items():
        for k in keys:
            assert bool(k.choices) == (k.type == "str"), k.key
            assert k.default in k.choices or not k.choices
            for value in k.choices:
                companions = COMPANIONS.get(k.key, [])
                config = load_config(None, [f"method.name={method}", *companions, f"{k.key}={json.dumps(value)}"])
                assert getattr(config.method.options, k.key.split(".")[1]) == value
