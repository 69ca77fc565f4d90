from medgate.plugin.scheduling import model_scope

MODELS = ["llama-3", "llama-3-70b", "smollm2"]


def test_model_scope_reads_the_model_from_the_parameter_id():
    assert model_scope("tests_medical/test_mednli.py::test_mednli[smollm2-accuracy]", MODELS) == "smollm2"
    assert model_scope("t.py::test_x[accuracy-llama-3-70b]", MODELS) == "llama-3-70b"
    assert model_scope("t.py::test_x[llama-3-accuracy]", MODELS) == "llama-3"
    assert model_scope("t.py::test_x[other-accuracy]", MODELS) is None
    assert model_scope("t.py::test_plain", MODELS) is None
