"""Run options: declared, typed, validated once; a system's spec records the options it used."""

import pytest

from bench.errors import BenchError
from bench.systems.options import RunOptions, unread
from bench.systems import SYSTEMS, get_system


def test_a_typo_is_one_line_with_the_closest_option():
    with pytest.raises(BenchError) as err:
        RunOptions.from_mapping({"encodr": "x"})
    assert str(err.value) == "unknown run option 'encodr' (did you mean encoder?)"


@pytest.mark.parametrize("values,message", [
    ({"rerank_depth": "ten"}, "option rerank_depth must be a int, not 'ten'"),
    ({"rerank_depth": 2.5}, "option rerank_depth must be an integer, not 2.5"),
    ({"bitext_noise": 1.0}, r"option bitext_noise must be in \[0, 1\), not 1.0"),
    ({"profile": "fast"}, "option profile must be one of full, ci, not 'fast'"),
    ({"distill_steps": 0}, "option distill_steps must be a positive integer, not 0"),
    ({"hybrid_weight": True}, "option hybrid_weight must be a float, not True"),
    ({"bm25_b": 2}, r"option bm25_b must be in \[0, 1\], not 2.0"),
    ({"bm25_k1": -1}, "option bm25_k1 must be a finite number >= 0, not -1.0"),
    ({"mt_size": "tiny"}, "option mt_size must be one of base, small, not 'tiny'"),
])
def test_bad_values_are_refused(values, message):
    with pytest.raises(BenchError, match=message):
        RunOptions.from_mapping(values)


def test_values_are_typed_and_none_means_the_default():
    options = RunOptions.from_mapping({"rerank_depth": "20", "bitext_noise": 0, "encoder": None, "max_length": 64.0})
    assert options == RunOptions(rerank_depth=20, bitext_noise=0.0, max_length=64)
    assert isinstance(options.bitext_noise, float) and isinstance(options.max_length, int)
    assert RunOptions.from_mapping(options) is options
    with pytest.raises(Exception):
        options.encoder = "x"  # frozen


def test_used_without_and_key():
    options = RunOptions(encoder="e", rerank="bm25", rerank_depth=5, profile="ci")
    assert options.used(["encoder", "teacher", "rerank_depth", "profile"]) == {"encoder": "e", "rerank_depth": 5,
                                                                                "profile": "ci"}
    assert options.without("rerank", "rerank_depth") == RunOptions(encoder="e", profile="ci")
    assert options.key() != RunOptions(encoder="f", rerank="bm25", rerank_depth=5, profile="ci").key()
    assert unread(RunOptions(bitext_noise=0.2, profile="ci"), get_system("bm25").reads) == ["bitext_noise"]
    assert unread(RunOptions(bitext_noise=0.2), get_system("bm25-psq").reads) == []


def test_the_recorded_spec_names_the_options_a_system_used():
    mdense = get_system("mdense")
    assert mdense.spec_for(RunOptions())["encoder"] == "multilingual-e5-small"
    a, b = mdense.spec_for(RunOptions(encoder="model-a")), mdense.spec_for(RunOptions(encoder="model-b"))
    assert a["encoder"] == "model-a" and a != b  # two encoders never share one identity
    assert mdense.spec_for(RunOptions(bitext_noise=0.2)) == mdense.spec_for(RunOptions())  # not read: not recorded
    optical = get_system("optical").spec_for(RunOptions(encoder="m", distill_steps=7))
    assert (optical["encoder"], optical["teacher"], optical["distill_steps"]) == ("m", "m", 7)
    hybrid = get_system("optical-hybrid")
    assert hybrid.spec_for(RunOptions(hybrid_weight=0.25))["hybrid_weight"] == 0.25
    assert {"hybrid_weight", "bitext_noise", "distill_steps", "encoder"} <= set(hybrid.reads)  # its components' too
    nmt = get_system("bm25-nmt")
    assert "mt_size" not in nmt.spec_for(RunOptions())  # the default size: the identity of the runs made before it
    assert nmt.spec_for(RunOptions(mt_size="small"))["mt_size"] == "small"
    assert "mt_size" not in mdense.spec_for(RunOptions(mt_size="small"))


def test_every_system_reads_only_declared_options():
    declared = set(RunOptions.__dataclass_fields__)
    for name in SYSTEMS:
        assert set(get_system(name).reads) <= declared, name


def test_every_option_has_its_help_and_a_flag():
    from bench.cli import cli
    from bench.systems.options import HELP, flag

    declared = set(RunOptions.__dataclass_fields__)
    assert set(HELP) == declared and all(HELP.values())
    run_flags = {o for p in cli.commands["run"].params for o in p.opts}
    assert {flag(n) for n in declared} <= run_flags  # every option is a flag of bench run, generated
    assert flag("rerank_depth") == "--rerank-depth"


def test_the_systems_chosen_for_a_pair(bench_home):
    from pathlib import Path

    from bench.data.collection.local import load_pair_file
    from bench.experiment.plan import choose_systems
    from bench.systems import ci_systems

    pair = load_pair_file(Path(__file__).parent / "data" / "tiny-pair" / "pair-foreign-docs.yaml")
    plain = [s.name for s in choose_systems(pair, None, RunOptions())]
    assert "bm25-nmt" not in plain and "nmt-dense" not in plain and plain[:2] == ["bm25", "oracle-bm25"]
    with_mt = [s.name for s in choose_systems(pair, None, RunOptions(mt_model="org/some-model"))]
    assert sorted(set(with_mt) - set(plain)) == ["bm25-nmt", "nmt-dense"]  # a translation model into yy is given
    ci = ["bm25", "oracle-bm25", "mdense", "mdense-maxsim", "oracle-dense", "bm25-psq", "bm25-nmt", "nmt-dense",
          "sdistill", "sdistill-maxsim", "optical", "optical-maxsim"]  # every system but the hybrids
    assert ([s.name for s in choose_systems(pair, None, RunOptions(profile="ci"))] == ci
            == [s.name for s in ci_systems()])
    assert [s.name for s in choose_systems(pair, ["mdense", "bm25", "mdense"], RunOptions())] == ["mdense", "bm25"]
    assert [s.name for s in choose_systems(pair, "bm25, mdense", RunOptions())] == ["bm25", "mdense"]


def test_measure_names_are_ir_measures_canonical_names():
    from bench.experiment.plan import measure_names

    assert measure_names("AP, nDCG@10,AP,R@100") == ["AP", "nDCG@10", "R@100"]
    assert measure_names(["P@5", "AP(rel=2)"]) == ["P@5", "AP(rel=2)"]
    assert measure_names(None) is None
    with pytest.raises(BenchError, match="names no measure"):
        measure_names(" , ")
    with pytest.raises(BenchError, match="unknown measure"):
        measure_names("ndcg@10")
