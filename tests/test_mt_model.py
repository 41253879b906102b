"""bench's copy-aware translation model: vocabulary mapping, the copy mixture, incremental decoding."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from bench.methods.translate.mt_model import (  # noqa: E402
    BOS, EOS, PAD, UNK, Architecture, CopyTranslator, Vocabulary, beam_search, pad_rows, token_loss,
)

class _Tok(SimpleNamespace):
    def __len__(self):
        return 100


def tokenizer():
    return _Tok(pad_token_id=1, bos_token_id=0, eos_token_id=2, unk_token_id=3)


def test_vocabulary_keeps_frequent_pieces_and_extends_with_source_pieces():
    vocab = Vocabulary.from_texts([[10, 11, 12], [10, 11], [10, 40]], tokenizer(), min_count=2)
    assert vocab.ids.tolist() == [1, 0, 2, 3, 10, 11]  # specials (pad, bos, eos, unk), then 10 and 11
    assert vocab.targets([11, 12, 10], []) == [5, UNK, 4]  # no source to copy from
    # source 50 and 12 are outside the vocabulary: extended ids 6 and 7, in order of first occurrence
    row, ext = vocab.extend_one([0, 10, 50, 12, 50, 2])
    assert row == [BOS, 4, 6, 7, 6, EOS] and ext == [50, 12]
    # a target piece outside the vocabulary is copyable (extended id) only if the source has it
    assert vocab.targets([12, 10, 40], ext) == [7, 4, UNK]
    assert vocab.decode_ids([4, 7, 6, EOS, PAD], ext) == [10, 12, 50]


def tiny_model(seed=0, vocab_size=12, d=16):
    torch.manual_seed(seed)
    vocab = Vocabulary([1, 0, 2, 3, *range(4, vocab_size)], 40)
    arch = Architecture(encoder={"spec": "x", "fingerprint": "y"}, encoder_layer=1, source_dim=8, d_model=d,
                        layers=2, heads=2, ffn=32, dropout=0.0, max_target_len=20)
    model = CopyTranslator(arch, vocab, torch.randn(40, 8)).eval()
    return model, vocab


def test_loss_terms_equal_the_full_copy_mixture():
    model, vocab = tiny_model()
    source_ids = [[0, 5, 30, 7, 2], [0, 31, 2]]  # 30 and 31 are outside the 12-piece vocabulary
    source_local, ext = vocab.extend(source_ids)
    n_ext = max(len(e) for e in ext)
    ids = pad_rows(source_ids, 1)
    mask = (ids != 1).long()
    enc = model.prepare(model.memory(torch.randn(2, ids.shape[1], 8), ids), mask)
    labels = pad_rows([[5, 12, 7, EOS], [12, EOS]], -100)  # 12 = the first extended id: a copy only
    dec_in = pad_rows([[BOS, 5, 12, 7], [BOS, 12]], PAD)
    log_probs = model(enc, source_local, n_ext, dec_in)
    assert log_probs.shape == (2, 4, len(vocab) + n_ext)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 4), atol=1e-5)  # a distribution
    nll, smooth = model.loss_terms(enc, source_local, dec_in, labels)
    keep = labels != -100
    expected = -log_probs.gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    assert torch.allclose(nll[keep], expected[keep], atol=1e-5)
    # an extended id gets probability only through copying: P(copy) x attention on source token 30
    gen, attn, gate = model._heads(model._decode(enc, dec_in), enc)
    assert torch.allclose(nll[0, 1], -torch.log((1 - gate[0, 1, 0]) * attn[0, 1, 2]), atol=1e-5)
    loss = token_loss(nll, smooth, labels, 0.1)
    assert torch.isclose(loss, (0.9 * nll[keep] + 0.1 * smooth[keep]).mean())


def test_incremental_beam_search_matches_full_recomputation():
    """beams=1 is greedy decoding; the cached incremental steps must give the argmax of the full pass."""
    model, vocab = tiny_model(seed=3)
    source_ids = [[0, 5, 9, 30, 2], [0, 6, 2]]
    source_local, ext = vocab.extend(source_ids)
    n_ext = max(len(e) for e in ext)
    ids = pad_rows(source_ids, 1)
    enc = model.prepare(model.memory(torch.randn(2, ids.shape[1], 8), ids), (ids != 1).long())
    got = beam_search(model, enc, source_local, n_ext, [8, 8], beams=1)
    for b in range(2):
        prefix = [BOS]
        with torch.inference_mode():
            for _ in range(7):  # a limit of 8 positions: at most 7 pieces, then </s>
                logp = model(_select(enc, b), source_local[b:b + 1], n_ext, torch.tensor([prefix]))[0, -1]
                logp[PAD] = logp[BOS] = float("-inf")
                prefix.append(int(logp.argmax()))
                if prefix[-1] == EOS:
                    break
        expected = prefix[1:-1] if prefix[-1] == EOS else prefix[1:]
        assert got[b] == expected
    assert len(set(got[0])) > 1  # not a degenerate repetition of one piece


def _select(enc, b):
    return {"memory": enc["memory"][b:b + 1], "bias": enc["bias"][b:b + 1],
            "cross": [(k[b:b + 1], v[b:b + 1]) for k, v in enc["cross"]]}


def test_a_shortlist_normalises_the_generator_over_its_pieces_only():
    model, vocab = tiny_model()
    source_ids = [[0, 5, 30, 7, 2], [0, 31, 2]]
    source_local, _ = vocab.extend(source_ids)
    ids = pad_rows(source_ids, 1)
    enc = model.prepare(model.memory(torch.randn(2, ids.shape[1], 8), ids), (ids != 1).long())
    labels = pad_rows([[5, 12, 7, EOS], [12, EOS]], -100)
    dec_in = pad_rows([[BOS, 5, 12, 7], [BOS, 12]], PAD)
    keep = labels != -100
    full_nll, full_smooth = model.loss_terms(enc, source_local, dec_in, labels)
    every = torch.arange(len(vocab))
    nll, smooth = model.loss_terms(enc, source_local, dec_in, labels, every)
    assert torch.allclose(nll[keep], full_nll[keep]) and torch.allclose(smooth[keep], full_smooth[keep])
    # over pieces {EOS, 5, 7, 9}: the generator's logits of those four, renormalised
    shortlist = torch.tensor([EOS, 5, 7, 9])
    nll, smooth = model.loss_terms(enc, source_local, dec_in, labels, shortlist)
    h = model.final_norm(model._decode(enc, dec_in))
    logits = (h @ model.embed.weight.T + model.out_bias)[..., shortlist]
    gen = torch.log_softmax(logits, -1)
    _, attn, gate = model._heads(model._decode(enc, dec_in), enc)
    p_gen_7 = gen[0, 2, 2].exp()  # label 7 at position 2 of the first row: third piece of the shortlist
    p_copy_7 = attn[0, 2, 3]  # source token 7 is the fourth source position
    assert torch.isclose(nll[0, 2], -torch.log(gate[0, 2, 0] * p_gen_7 + (1 - gate[0, 2, 0]) * p_copy_7), atol=1e-5)
    assert torch.allclose(smooth, -gen.mean(-1), atol=1e-6)
    with pytest.raises(ValueError, match="every in-vocabulary label"):
        model.loss_terms(enc, source_local, dec_in, labels, torch.tensor([EOS, 5, 9]))  # 7 missing


def adaptive_model(seed=0, vocab_size=12, d=16, clusters=(4, 8)):
    """A tiny model whose generator is an adaptive softmax: head of 4 pieces, clusters of ranks 4-7 and 8-11."""
    torch.manual_seed(seed)
    vocab = Vocabulary([1, 0, 2, 3, *range(4, vocab_size)], 40)
    arch = Architecture(encoder={"spec": "x", "fingerprint": "y"}, encoder_layer=1, source_dim=8, d_model=d,
                        layers=2, heads=2, ffn=32, dropout=0.0, max_target_len=20, output_clusters=clusters)
    by_rank = torch.tensor([EOS, 5, 7, 9, 4, 6, 8, 10, 11, UNK, PAD, BOS])  # a frequency order
    model = CopyTranslator(arch, vocab, torch.randn(40, 8), torch.randn(vocab_size, d), by_rank).eval()
    with torch.no_grad():  # the cluster entries away from their start, so a wrong index shows
        model.cluster_weight.normal_()
        model.cluster_bias.copy_(torch.tensor([0.3, -0.7]))
    return model, vocab


def test_the_adaptive_softmax_is_p_cluster_times_p_piece_within_it_and_a_distribution():
    model, vocab = adaptive_model()
    h = torch.randn(2, 3, 16)
    gen = model._generator(h)
    assert torch.allclose(gen.exp().sum(-1), torch.ones(2, 3), atol=1e-5)
    w, b = model.embed.weight, model.out_bias
    head_logits = torch.cat([h @ w[[EOS, 5, 7, 9]].T + b[[EOS, 5, 7, 9]], h @ model.cluster_weight.T
                             + model.cluster_bias], -1)
    head = torch.log_softmax(head_logits, -1)
    assert torch.allclose(gen[..., 7], head[..., 2], atol=1e-6)  # piece 7 is in the head, third by rank
    # piece 10 is the fourth of the first tail cluster (ranks 4-7: 4, 6, 8, 10)
    within = torch.log_softmax(h @ w[[4, 6, 8, 10]].T + b[[4, 6, 8, 10]], -1)
    assert torch.allclose(gen[..., 10], head[..., 4] + within[..., 3], atol=1e-6)
    # UNK is in the second cluster (ranks 8-11: 11, UNK, PAD, BOS), second of four
    within = torch.log_softmax(h @ w[[11, UNK, PAD, BOS]].T + b[[11, UNK, PAD, BOS]], -1)
    assert torch.allclose(gen[..., UNK], head[..., 5] + within[..., 1], atol=1e-6)


def test_adaptive_loss_terms_equal_the_full_copy_mixture_and_smooth_over_the_head():
    model, vocab = adaptive_model()
    source_ids = [[0, 5, 30, 7, 2], [0, 31, 2]]
    source_local, ext = vocab.extend(source_ids)
    n_ext = max(len(e) for e in ext)
    ids = pad_rows(source_ids, 1)
    enc = model.prepare(model.memory(torch.randn(2, ids.shape[1], 8), ids), (ids != 1).long())
    labels = pad_rows([[5, 10, 12, UNK], [12, EOS]], -100)  # head, first cluster, copied, second cluster
    dec_in = pad_rows([[BOS, 5, 10, 12], [BOS, 12]], PAD)
    log_probs = model(enc, source_local, n_ext, dec_in)
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(2, 4), atol=1e-5)
    nll, smooth = model.loss_terms(enc, source_local, dec_in, labels)
    keep = labels != -100
    expected = -log_probs.gather(-1, labels.clamp_min(0)[..., None])[..., 0]
    assert torch.allclose(nll[keep], expected[keep], atol=1e-5)
    h = model.final_norm(model._decode(enc, dec_in))
    assert torch.allclose(smooth, -model._head_log_probs(h).mean(-1), atol=1e-6)
    with pytest.raises(ValueError, match="exclude each other"):
        model.loss_terms(enc, source_local, dec_in, labels, torch.arange(len(vocab)))


def test_an_adaptive_model_loads_its_frequency_order_from_its_weights():
    model, vocab = adaptive_model()
    loaded = CopyTranslator(model.arch, vocab, model.source_embeddings)  # as `load` builds it, before the weights
    assert loaded.by_rank.tolist() == list(range(12))
    loaded.load_state_dict(model.state_dict())
    h = torch.randn(1, 2, 16)
    assert loaded.by_rank.tolist() == model.by_rank.tolist()
    assert torch.allclose(loaded.eval()._generator(h), model._generator(h))


def test_adaptive_cutoffs_must_rise_inside_the_vocabulary():
    with pytest.raises(ValueError, match="must rise"):
        adaptive_model(clusters=(4, 12))
    with pytest.raises(ValueError, match="must rise"):
        adaptive_model(clusters=(6, 6))
