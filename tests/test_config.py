import pytest

from medgate.core.errors import ConfigError
from medgate.judging.criteria import resolve_criteria
from medgate.models.registry import load_registry
from tests.conftest import REPO, write_models

VALID = """
default = "m"
[models.m]
path = "."
dtype = "bfloat16"
max_model_len = 2048
gpu_memory_utilization = 0.8
[models.m.thresholds]
mednli = { accuracy = 0.5 }
"""


def test_shipped_models_toml_is_valid_and_has_the_papers_models():
    registry = load_registry(REPO / "models.toml")
    assert registry.default == "smollm2"
    for name in ("meditron-7b", "meditron-70b", "Llama-3.1-8B-Instruct", "Llama-3.1-70B-Instruct",
                 "BioMistral-7B", "Mistral-7B-Instruct", "smollm2"):
        assert name in registry.models
    meditron = registry.models["meditron-7b"]
    assert meditron.chat_template and meditron.chat_template.endswith("chatml.jinja")  # a base model
    assert all(not m.trust_remote_code for m in registry.models.values())
    assert resolve_criteria(REPO / "models.toml", "smollm2").threshold("mednli", "accuracy") is not None


def test_valid_file_parses(tmp_path):
    path = write_models(tmp_path / "models.toml", VALID)
    spec = load_registry(path).models["m"]
    assert (spec.source, spec.location) == ("path", str(tmp_path))
    assert spec.max_model_len == 2048 and spec.options["gpu_memory_utilization"] == 0.8
    criteria = resolve_criteria(path, "m")
    assert criteria.threshold("mednli", "accuracy") == 0.5 and criteria.threshold("mednli", "no_label_rate") is None


@pytest.mark.parametrize(
    ("body", "key", "words"),
    [
        ('[models.m]\npath = "."\ncolour = "red"', "models.m.colour", "unknown key"),
        ('[models.m]\npath = "."\nmax_model_len = "long"', "models.m.max_model_len", "must be a positive integer, got string"),
        ('[models.m]\npath = "."\ntrust_remote_code = 1', "models.m.trust_remote_code", "must be true or false"),
        ('[models.m]\npath = "."\nmax_model_len = true', "models.m.max_model_len", "got boolean"),
        ('[models.m]\npath = "."\ngpu_memory_utilization = 1.5', "models.m.gpu_memory_utilization", "(0, 1]"),
        ('[models.m]\ndtype = "auto"', "models.m", "exactly one of embedded, path, hub"),
        ('[models.m]\npath = "."\nhub = "a/b"', "models.m", "exactly one of"),
        ('[models.m]\npath = "."\n[models.m.thresholds]\nmednli = { accuracy = 1.5 }', "models.m.thresholds.mednli.accuracy", "outside the metric's range [0.0, 1.0]"),
        ('[models.m]\npath = "."\n[models.m.thresholds]\nmednli = { acuracy = 0.5 }', "models.m.thresholds.mednli.acuracy", "unknown metric (known for mednli: accuracy"),
        ('[models.m]\npath = "."\n[models.m.thresholds]\nmedqa = { accuracy = 0.5 }', "models.m.thresholds.medqa", "unknown task"),
        ('[models.m]\npath = "."\n[models.m.thresholds]\nmednli = { accuracy = "high" }', "models.m.thresholds.mednli.accuracy", "must be a number"),
        ('[models.m]\npath = "."\nchat_template = "nope"', "models.m.chat_template", "neither a built-in template"),
        ('default = "x"\n[models.m]\npath = "."', "default", "not a model or alias in this file"),
        ('verbose = true', "verbose", "unknown top-level key"),
        ('[aliases]\nmed = "meditron"\n[models.m]\npath = "."', "aliases.med", "names 'meditron', which is not a model in this file (models: m)"),
        ('[aliases]\nm = "m"\n[models.m]\npath = "."', "aliases.m", "is already the name of a model"),
        ('[aliases]\nx = 3\n[models.m]\npath = "."', "aliases.x", "must be a model name, got integer 3"),
        ('[aliases]\nllama-3.1 = "m"\n[models.m]\npath = "."', "aliases.llama-3", 'must be quoted: "llama-3.1" = ...'),
        ('aliases = "m"\n[models.m]\npath = "."', "aliases", "must be a table of alias = model name"),
        ('[models.m]\npath = "."\nbackend = "tgi"', "models.m.backend", "one of vllm, openai, fake"),
        ('[models.Llama-3.1-8B]\nhub = "a/b"', "models.Llama-3.1-8B", "must be quoted"),
        ("[models.m\npath = '.'", "", "not valid TOML"),
    ],
)
def test_malformed_file_names_the_key(tmp_path, body, key, words):
    path = write_models(tmp_path / "models.toml", body)
    with pytest.raises(ConfigError) as err:
        load_registry(path)
        resolve_criteria(path, "m")  # task and metric names: against the tasks (after collection in a run)
    message = str(err.value)
    assert message.startswith(f"{path}: {key}") and words in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="models file not found"):
        load_registry(tmp_path / "absent.toml")


def test_resolve_unknown_name_lists_known_models(tmp_path):
    registry = load_registry(write_models(tmp_path / "models.toml", VALID))
    with pytest.raises(ConfigError, match=r"unknown model 'gpt-9'.*known models: m$"):
        registry.resolve("gpt-9")


def test_aliases_resolve_to_their_model_and_names_match_regardless_of_case(tmp_path):
    registry = load_registry(write_models(tmp_path / "models.toml", 'default = "short"\n[aliases]\nshort = "Long-Name-7B"\n'
                                          '[models.Long-Name-7B]\npath = "."\n'))
    assert registry.resolve("short") is registry.models["Long-Name-7B"]
    assert registry.resolve("long-name-7b") is registry.resolve("SHORT") is registry.models["Long-Name-7B"]
    assert registry.default == "Long-Name-7B"  # the default may be an alias; runs name the model itself
    with pytest.raises(ConfigError, match=r"known models: Long-Name-7B; aliases: short -> Long-Name-7B$"):
        registry.resolve("gpt-9")


def test_shipped_aliases_include_the_design_cards_meditron():
    registry = load_registry(REPO / "models.toml")
    assert registry.resolve("meditron").name == "meditron-7b"
    assert all(target in registry.models for target in registry.aliases.values())


def test_resolve_path_and_hub_id_get_defaults_and_no_thresholds(tmp_path):
    registry = load_registry(write_models(tmp_path / "models.toml", VALID))
    local = registry.resolve(str(tmp_path))
    hub = registry.resolve("epfl-llm/meditron-7b")
    assert local.source == "path" and not local.registered and registry.criteria_of(local) == ("models." + local.name, {})
    assert (hub.source, hub.location, hub.name) == ("hub", "epfl-llm/meditron-7b", "epfl-llm_meditron-7b")
    assert hub.trust_remote_code is False
