"""Bitext: sources as data, cleaning steps, leakage guard, noise injection, user TSV files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.data.bitext import Bitext, bitext_from_pairs, load_bitext, read_tsv
from bench.data.bitext import sources
from bench.data.bitext.clean import (
    CleanConfig, add_noise, clean, deduplicate, leakage_guard, length_filter, normalise, ratio_filter,
)
from bench.errors import BenchError
from bench.data.pairs import Pair, all_pairs

MIRROR = Path(os.environ.get("BENCH_MIRROR", Path(__file__).resolve().parents[2] / "shared" / "mirror"))

TEN = [(f"sentensi ya {w}", f"sentence of {w}") for w in
       ("moja", "mbili", "tatu", "nne", "tano", "sita", "saba", "nane", "tisa", "kumi")]


# --- sources ------------------------------------------------------------------------------------


def test_every_pair_names_declared_training_corpora():
    for pair in all_pairs():
        for name in pair.bitext:
            corpus = sources.training_corpus(name)  # raises if unknown or eval-only
            assert corpus.lang == pair.foreign_lang
            assert all(len(f.sha256) == 64 for f in corpus.files)


def test_flores_is_refused_for_training():
    name = sources.flores_devtest("sw")
    assert name == "flores200-devtest-swh" and sources.get_corpus(name).eval_only
    with pytest.raises(BenchError, match="evaluation set"):
        sources.read_corpus(name)
    with pytest.raises(BenchError, match="evaluation set"):
        sources.training_corpus("flores200-devtest-hau")
    pair = Pair("xx-en", "sw", "en", "none", "test pair", bitext=("tico19-en-sw", "flores200-devtest-swh"))
    with pytest.raises(BenchError, match="flores200-devtest-swh is an evaluation set"):
        load_bitext(pair)


def test_unknown_corpus_suggests_the_closest_name():
    with pytest.raises(BenchError, match="did you mean lafand-en-swa"):
        sources.get_corpus("lafand-en-sw")


def test_tmx_reader_takes_sides_by_language(tmp_path):
    import zipfile

    tmx = (
        '<?xml version="1.0" encoding="UTF-8"?><tmx version="1.4"><header/><body>'
        '<tu><tuv xml:lang="sw"><seg>nyumba kubwa</seg></tuv><tuv xml:lang="en"><seg>big house</seg></tuv></tu>'
        '<tu><tuv xml:lang="en"><seg>small dog</seg></tuv><tuv xml:lang="sw"><seg>mbwa mdogo</seg></tuv></tu>'
        '<tu><tuv xml:lang="en"><seg>only english</seg></tuv></tu>'
        "</body></tmx>"
    )
    path = tmp_path / "x.tmx.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("x.tmx", tmx)
    assert list(sources.tmx_reader("sw")([path])) == [("nyumba kubwa", "big house"), ("mbwa mdogo", "small dog")]


def test_line_aligned_files_must_have_as_many_lines(tmp_path):
    (tmp_path / "a.sw").write_text("moja\nmbili\n", encoding="utf-8")
    (tmp_path / "a.en").write_text("one\n", encoding="utf-8")
    with pytest.raises(BenchError, match="a.sw has 2 lines but a.en has 1"):
        list(sources.read_line_aligned([tmp_path / "a.sw", tmp_path / "a.en"]))


# --- cleaning -----------------------------------------------------------------------------------


def test_normalise_nfc_and_whitespace():
    assert normalise("  Habari\u00a0za\tasubuhi\u200b \n") == "Habari za asubuhi"
    assert normalise("cafe\u0301") == "caf\u00e9"


def test_deduplicate_ignores_case_punctuation_and_spacing():
    pairs = [("Habari yako?", "How are you?"), ("habari  yako", "how are you"), ("Habari yako?", "How are you doing?")]
    assert deduplicate(pairs) == [pairs[0], pairs[2]]


def test_length_and_ratio_filters():
    config = CleanConfig(min_tokens=1, max_tokens=5, max_ratio=2.0)
    pairs = [("moja", "one"), ("!!", "two"), ("a b c d e f", "x"), ("a", "b c d"), ("a b", "c d e f")]
    assert length_filter(pairs, config) == [("moja", "one"), ("a", "b c d"), ("a b", "c d e f")]
    assert ratio_filter(pairs, config) == [("moja", "one"), ("!!", "two"), ("a b", "c d e f")]  # empties: length filter


def test_leakage_guard_removes_a_planted_query_and_its_translation():
    bitext = [
        ("Mji mkuu wa Kenya ni upi?", "What is the capital of Kenya?"),  # planted query (foreign side)
        ("Jua linawaka", "Who was the first president of Tanzania?"),  # planted translation (English side)
        ("Mji mkuu wa Kenya ni Nairobi.", "The capital of Kenya is Nairobi."),  # similar, not the query
        ("Mbwa mkubwa", "a big dog"),
    ]
    kept = leakage_guard(bitext, ["mji mkuu wa kenya ni upi"], ["Who was the FIRST president of Tanzania ?"])
    assert kept == bitext[2:]


def test_leakage_guard_on_a_pair_collection(tmp_path):
    """A planted evaluation query in the user pair's bitext TSV is dropped by load_bitext."""
    pair = _user_pair(tmp_path, [
        "Mji mkuu wa Kenya ni upi?\tWhat is the capital of Kenya?",
        "Mbwa mkubwa\ta big dog",
        "nyumba ndogo\ta small house",
        "Who wrote it?\tNani aliandika?",  # sides swapped: neither side matches, kept
    ])
    bitext = load_bitext(pair)
    assert isinstance(bitext, Bitext)
    assert [p[0] for p in bitext.pairs] == ["Mbwa mkubwa", "nyumba ndogo", "Who wrote it?"]
    assert bitext.counts["ratio_filtered"] == 4 and bitext.counts["leakage_guarded"] == 3
    assert bitext.sources == {"bitext.tsv": 4}


def test_leakage_guard_on_english_queries(tmp_path):
    """For an en-xx pair the queries are English: the guard checks the bitext's English side."""
    pair = _user_pair(tmp_path, [
        "Mji mkuu wa Kenya ni upi?\tWhat is the capital of Kenya?",
        "Mbwa mkubwa\ta big dog",
    ], prefix="en-sw", query="q1\tWhat is the capital of Kenya")
    assert load_bitext(pair).pairs == [("Mbwa mkubwa", "a big dog")]


def test_noise_misaligns_exactly_the_rate_and_is_seeded():
    noisy, changed = add_noise(TEN, 0.5, seed=13)
    assert len(changed) == 5
    misaligned = [i for i, (a, b) in enumerate(zip(TEN, noisy)) if a != b]
    assert misaligned == sorted(changed.tolist())
    assert [f for f, _ in noisy] == [f for f, _ in TEN]  # foreign sides stay in place
    assert sorted(e for _, e in noisy) == sorted(e for _, e in TEN)  # English sides are permuted
    again, changed_again = add_noise(TEN, 0.5, seed=13)
    assert again == noisy and changed_again.tolist() == changed.tolist()
    other, _ = add_noise(TEN, 0.5, seed=14)
    assert other != noisy


def test_noise_edge_cases():
    assert add_noise(TEN, 0.0, seed=0)[0] == TEN
    full, changed = add_noise(TEN, 1.0, seed=0)
    assert len(changed) == 10 and all(a != b for a, b in zip(TEN, full))
    one, changed = add_noise(TEN, 0.1, seed=0)  # a single pair: borrows another pair's English side
    assert len(changed) == 1 and sum(a != b for a, b in zip(TEN, one)) == 1
    with pytest.raises(BenchError, match="between 0 and 1"):
        add_noise(TEN, 1.5, seed=0)


def test_clean_counts_each_step_and_fingerprints_content():
    raw = TEN + [TEN[0], ("", "empty"), ("a", "b c d e f g h")]
    pairs, counts = clean(raw, queries=["Sentensi ya tatu"], noise=0.0)
    assert counts == {
        "read": 13, "deduplicated": 12, "length_filtered": 11, "ratio_filtered": 10,
        "leakage_guarded": 9, "noised": 0,
    }
    a = bitext_from_pairs(raw, queries=["Sentensi ya tatu"])
    b = bitext_from_pairs(raw, queries=["Sentensi ya tatu"], noise=0.3, seed=1)
    assert a.pairs == pairs and len(a.fingerprint) == 16
    assert b.counts["noised"] == 3 and b.fingerprint != a.fingerprint


def test_each_noise_rate_and_seed_misaligns_one_cleaning_of_the_files(tmp_path, monkeypatch):
    """The noise is cleaning's last step: a pair's files are read and cleaned once for every rate and seed, and
    each noised bitext is exactly what cleaning with that noise gives (pairs, counts, fingerprint)."""
    import bench.data.bitext as bitext_module

    lines = [f"{f}\t{e}" for f, e in TEN] + ["Mji mkuu wa Kenya ni upi?\tWhat is the capital of Kenya?"]
    pair = _user_pair(tmp_path, lines)
    read = []
    real_read = bitext_module._read_bitext

    def reading(*args):
        read.append(args)
        return real_read(*args)

    monkeypatch.setattr(bitext_module, "_read_bitext", reading)
    raw = [tuple(line.split("\t")) for line in lines]
    for noise, seed in ((0.3, 1), (0.5, 0), (0.5, 7), (0.0, 3)):
        got = load_bitext(pair, noise=noise, seed=seed)
        expected = bitext_from_pairs(raw, sources={"bitext.tsv": 11}, queries=["Mji mkuu wa Kenya ni upi?"],
                                     translations=["What is the capital of Kenya?"], noise=noise, seed=seed)
        assert (got.pairs, got.counts, got.sources, got.fingerprint) == (
            expected.pairs, expected.counts, expected.sources, expected.fingerprint)
    assert load_bitext(pair, noise=0.5, seed=7).counts["noised"] == 5  # half of the ten left after the guard
    assert len(read) == 1
    assert load_bitext(pair, seed=3) is load_bitext(pair)  # without noise the seed changes nothing


# --- user pair files ----------------------------------------------------------------------------


def _user_pair(tmp_path: Path, bitext_lines: list[str], prefix: str = "sw-en",
               query: str = "q1\tMji mkuu wa Kenya ni upi?\tWhat is the capital of Kenya?"):
    from bench.data.collection.local import load_pair_file

    (tmp_path / "queries.tsv").write_text(query + "\n", encoding="utf-8")
    (tmp_path / "docs.tsv").write_text("d1\tNairobi is the capital of Kenya.\nd2\tDodoma.\n", encoding="utf-8")
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\n", encoding="utf-8")
    (tmp_path / "bitext.tsv").write_text("\n".join(bitext_lines) + "\n", encoding="utf-8")
    name = f"{prefix}-t{abs(hash(str(tmp_path))) % 10**8}"
    (tmp_path / "pair.yaml").write_text(
        f"name: {name}\nqueries: queries.tsv\ndocs: docs.tsv\nqrels: qrels.txt\nbitext: bitext.tsv\n", encoding="utf-8"
    )
    return load_pair_file(tmp_path / "pair.yaml")


def test_read_tsv_names_file_and_line_of_a_malformed_line(tmp_path):
    path = tmp_path / "b.tsv"
    path.write_text("moja\tone\n\nmbili two\n", encoding="utf-8")
    with pytest.raises(BenchError, match=r"b\.tsv:3: expected 2 tab-separated fields"):
        read_tsv(path)
    path.write_text("moja\tone\n\n", encoding="utf-8")
    assert read_tsv(path) == [("moja", "one")]
    with pytest.raises(BenchError, match="does not exist"):
        read_tsv(tmp_path / "missing.tsv")


def test_a_pair_without_bitext_is_an_error():
    with pytest.raises(BenchError, match="has no bitext"):
        load_bitext(Pair("xx-en", "xx", "en", "none", "no bitext"))


# --- the real corpora (mirror) ------------------------------------------------------------------

SW_EN_COUNTS = {  # measured on the mirror (see the issue-4 report)
    "read": 36240, "deduplicated": 35748, "length_filtered": 35711, "ratio_filtered": 35568,
    "leakage_guarded": 35568, "noised": 0,
}


@pytest.mark.integration
def test_sw_en_bitext_from_the_mirror(monkeypatch, tmp_path):
    if not MIRROR.is_dir():
        pytest.skip("no mirror at " + str(MIRROR))
    monkeypatch.setenv("BENCH_MIRROR", str(MIRROR))
    monkeypatch.setenv("BENCH_HOME", os.environ.get("BENCH_HOME") or str(tmp_path))
    from bench.data.pairs import get_pair

    bitext = load_bitext(get_pair("sw-en"))
    assert bitext.sources == {"lafand-en-swa": 30782, "tico19-en-sw": 3071, "ntrex-swa": 1997, "tatoeba-swh": 390}
    assert bitext.counts == SW_EN_COUNTS
    assert bitext.pairs[0] == (
        "Kinyago cha mtumwa mweusi kilichochongwa na Luiz Paulino da Cunha.",
        "Polychromed woodcarving of an Orixá by Luiz Paulino da Cunha.",
    )
    assert ("Hakuna matata.", "There are no problems.") in set(bitext.pairs)
    noisy = load_bitext(get_pair("sw-en"), noise=0.2, seed=0)
    assert noisy.counts["noised"] == round(0.2 * 35568) and noisy.fingerprint != bitext.fingerprint
