"""Model registration (``models.registry``): a bad registration is refused at once, so it cannot break every later
``list_models`` / ``model_table`` of the process."""

import pytest

import deepspike as ds
from deepspike.core.errors import ConfigError
from deepspike.models import create_architecture, registry
from deepspike.models.spec import Flatten, Linear, Pool
from registries import keep_registrations_to_the_test


@pytest.fixture
def fresh_registry(monkeypatch):
    keep_registrations_to_the_test(monkeypatch)


@pytest.mark.parametrize(("name", "shape", "message"), [
    (5, (1, 8, 8), "the name must be a non-empty string"),
    ("", (1, 8, 8), "the name must be a non-empty string"),
    ("m", "abc", "default_input_shape must be positive ints"),
    ("m", (1, 0, 8), "default_input_shape must be positive ints"),
    ("m", (), "default_input_shape must be positive ints"),
])
def test_a_bad_registration_is_refused_and_the_table_still_works(fresh_registry, name, shape, message):
    with pytest.raises(TypeError, match=message):
        ds.register_model(name, shape)
    assert {row["name"] for row in ds.model_table()} >= {"mlp", "lenet"}


def test_a_factory_that_returns_no_layers_is_one_line(fresh_registry):
    @ds.register_model("returns_none", (1, 8, 8))
    def returns_none(num_classes, input_shape, width):
        return None

    @ds.register_model("returns_layers", (1, 8, 8))
    def returns_layers(num_classes, input_shape, width):
        return [Flatten(), Linear(num_classes, act=False)]

    with pytest.raises(ConfigError, match="'returns_none': its factory returned NoneType, not a non-empty tuple"):
        ds.create_architecture("returns_none")
    assert len(ds.create_architecture("returns_layers").layers) == 2


@pytest.mark.parametrize(("name", "args", "message"), [
    ("vgg", {"blocks": [[-5]]}, "for model.args.blocks: expected a non-empty list of lists of whole numbers"),
    ("vgg", {"blocks": [[32.9]]}, "model.args.blocks"), ("vgg", {"blocks": [["32"]]}, "model.args.blocks"),
    ("vgg", {"blocks": [32, 64]}, "list of lists"), ("vgg", {"hidden": [-1]}, "model.args.hidden"),
    ("vgg", {"batch_norm": "no"}, "model.args.batch_norm: expected true or false"),
    ("vgg", {"dropout": "x"}, "model.args.dropout: expected a finite number"),
    ("resnet", {"stem": "16"}, "model.args.stem: expected a whole number from 1 to 65536"),
    ("resnet", {"blocks": [1.5, 1, 1]}, "model.args.blocks"), ("sew_resnet", {"stages": []}, "non-empty list"),
    ("ms_resnet18", {"stem_kernel": 0}, "model.args.stem_kernel"), ("ms_resnet18", {"first_stride": 0}, "first_"),
    ("ms_resnet18", {"bn_init": "no"}, "model.args.bn_init: expected true or false"),
    ("spikformer", {"depth": 3_000_000}, "model.args.depth: expected a whole number from 1 to 65536")])
def test_model_arguments_of_the_wrong_kind_or_size_are_refused_before_the_factory_runs(name, args, message):
    """A sweep found these rounded (32.9 -> 32), clamped (-5 -> 1 channel), taken as true ("no"), crashing with
    tracebacks, or building for minutes (depth 3,000,000)."""
    with pytest.raises(ConfigError, match=f"^model '{name}': bad value .*{message}"):
        create_architecture(name, **args)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"width": float("inf")}, "model width must be a finite number > 0"), ({"width": True}, "model width"),
    ({"width": 1e308}, "^model width must be a finite number > 0 and at most 65536, got 1e[+]308$"),
    ({"width": 65537}, "at most 65536"),
    ({"num_classes": 2.5}, "num_classes must be a whole number, got 2.5"),
    ({"input_shape": (1, 0, 8)}, "input shape must be whole numbers from 1"),
    ({"input_shape": (1, -8, 8)}, "input shape"),
    ({"input_shape": 784}, "^model 'mlp': input shape must be whole numbers from 1 to 65536, got 784$"),
    ({"input_shape": "1x28x28"}, "input shape must be whole numbers from 1 to 65536, got '1x28x28'$"),
    ({"input_shape": {"C": 1}}, "got {'C': 1}$")])
def test_the_python_api_checks_width_classes_and_input_shape(kwargs, message):
    """A width of 1e308 (finite) crashed every factory with OverflowError: cannot convert float infinity to integer
    (``scaled``: 400 * 1e308 is inf), also from a recipe's model.width; an input shape of 784 where (784,) was meant
    crashed with TypeError: 'int' object is not iterable, a text or a mapping was read as its letters or keys."""
    with pytest.raises(ConfigError, match=message):
        create_architecture("mlp", **kwargs)
    assert create_architecture("mlp", width=65536).layers[1].out_features == 400 * 65536  # the largest width is taken


def test_googlenet_refuses_maps_its_global_pool_would_not_cover():
    """(3, 224, 320) left a 7 x 10 map that Pool(7) cut to 7 x 7 columns; (3, 32, 64) pooled nothing."""
    with pytest.raises(ConfigError, match="zhou2021_googlenet needs square maps before the global pool, got 7x10"):
        create_architecture("zhou2021_googlenet", input_shape=(3, 224, 320), width=0.25)


def test_a_registered_models_own_default_of_zero_is_taken(fresh_registry):
    """The whole-number check took 1 as the least value for every argument but a fixed list of names."""

    @ds.register_model("test_zero_default", (4,))
    def factory(num_classes, input_shape, width, extra_layers: int = 0):
        return (*(Linear(4) for _ in range(extra_layers)), Linear(num_classes, act=False))

    assert create_architecture("test_zero_default", extra_layers=0).layers[-1].out_features == 10
    with pytest.raises(ConfigError, match="bad value -1 for model.args.extra_layers: expected a whole number from 0"):
        create_architecture("test_zero_default", extra_layers=-1)


def test_a_factory_that_cannot_build_its_default_net_is_refused_when_registered(fresh_registry):
    """A factory with an option without a default registered, then ``deepspike models`` / ``ds.model_table()`` failed
    for every model (TypeError: factory() missing 1 required positional argument: 'hidden'), as did a recipe that
    left it out of model.args."""
    with pytest.raises(TypeError, match="register_model\\('test_needs_hidden'\\): the factory must take .* give every "
                                        "other argument a default .*'hidden'"):
        @ds.register_model("test_needs_hidden", (4,))
        def needs_hidden(num_classes, input_shape, width, hidden):
            return (Linear(hidden), Linear(num_classes, act=False))
    with pytest.raises(TypeError, match="the factory must take num_classes, input_shape and width"):
        @ds.register_model("test_no_width", (4,))
        def no_width(num_classes, input_shape):
            return (Linear(num_classes, act=False),)
    assert "test_needs_hidden" not in {row["name"] for row in ds.model_table()}


def test_a_factory_with_options_as_docs_architecture_writes_it_takes_any_option(fresh_registry):
    """docs/architecture.md: a model is ``factory(num_classes, input_shape, width, **options)``; every option given
    to one was refused ("has no argument 'hidden'; valid: options"). Its named arguments are still checked, and the
    arguments set by the recipe's other keys are still no model.args."""

    @ds.register_model("test_any_options", (4,))
    def factory(num_classes, input_shape, width, depth: int = 1, **options):
        return (*(Linear(options.get("hidden", 2)) for _ in range(depth)), Linear(num_classes, act=False))

    arch = create_architecture("test_any_options", hidden=3, depth=2)
    assert [layer.out_features for layer in arch.layers] == [3, 3, 10]
    with pytest.raises(ConfigError, match="bad value 0 for model.args.depth"):
        create_architecture("test_any_options", depth=0)
    with pytest.raises(ConfigError, match="has no argument 'width'; valid: depth$"):
        registry._check_kwargs(registry.get_model_entry("test_any_options"), {"width": 2.0})


@pytest.mark.parametrize("pooling", ["0011", "1111", "0101", "true"])
def test_a_text_argument_given_as_digits_says_to_quote_it(pooling):
    """sdt's documented ``pooling: "0011"`` typed as ``model.args.pooling=0011`` reached the factory as the number 9
    (YAML) and was refused as "bad value 9 ...: expected text", naming a value never typed; the message now says
    how to quote it, and the quoted override it gives builds the net."""
    from deepspike.config import load_config

    def build(item):
        config = load_config(None, ["model.name=sdt", item])
        return create_architecture("sdt", 10, (3, 32, 32), 1 / 16, **config.model.args)

    with pytest.raises(ConfigError, match="""expected text; YAML reads unquoted digits as a number .* """
                                          """model.args.pooling="'0011'" on the command line$"""):
        build(f"model.args.pooling={pooling}")
    if pooling != "true":  # the stem's pools, then the token mean
        assert sum(isinstance(layer, Pool) for layer in build(f"model.args.pooling='{pooling}'").layers) == (
            pooling.count("1") + 1)
