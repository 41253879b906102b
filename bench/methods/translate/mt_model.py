"""bench's own translation model: a Transformer decoder with a copy mechanism over a frozen encoder.

Why this shape (DESIGN.md §7: 2 CPU cores, an hour, ~35k sentence pairs):

* The **encoder** is the packaged multilingual encoder, frozen, so its states for the whole bitext are
  computed once (:func:`bench.methods.translate.mt_data.source_states`) and a training step costs the
  decoder alone. The decoder reads a learned mix of one encoder layer's states and the source tokens'
  own (layer-0) word embeddings, which keep the lexical identity that upper layers blur.
* The **target vocabulary** is the encoder's own sentencepiece vocabulary restricted to the pieces of
  the bitext's English side, so source and target pieces share ids and the output embeddings start
  from the encoder's word embeddings.
* The generator's softmax is over every target piece by default. With ``output_clusters`` (an **adaptive
  softmax**, Grave et al. 2017) the pieces are ranked by frequency and cut into a head and tail clusters:
  the head's softmax covers the frequent pieces plus one entry per cluster, and a piece of a cluster gets
  P(cluster) × P(piece | cluster). The distribution stays exactly normalised, but a training step computes
  a cluster's softmax only at the positions whose label is in it. The output weights stay tied to the
  input embeddings (so they start from the encoder's); torch's ``AdaptiveLogSoftmaxWithLoss`` has its own.
* A **pointer-generator** (See et al., 2017) copy head mixes the vocabulary distribution with an
  attention distribution over the source pieces. Names and numbers (what retrieval needs most) are
  copied even when the bitext never showed them; source pieces outside the vocabulary get extended
  ids for the sentence.

A model directory holds ``model.safetensors`` (the decoder), ``bench-mt-model.json`` (architecture,
vocabulary, the encoder's spec and fingerprint) and the source tokenizer files. The encoder is not
copied: it is the packaged model, resolved and checked by fingerprint when the model loads.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from bench.infra.batching import pad_batch

MODEL_FILE = "bench-mt-model.json"
PAD, BOS, EOS, UNK = 0, 1, 2, 3  # local ids of the tokenizer's pad, bos (cls), eos (sep) and unk tokens


@dataclass(frozen=True)
class Architecture:
    encoder: dict  # {"spec", "fingerprint"} of the frozen encoder
    encoder_layer: int
    source_dim: int
    d_model: int
    layers: int
    heads: int
    ffn: int
    dropout: float
    max_target_len: int
    # adaptive softmax: ranks (by label frequency) where the head ends and each tail cluster ends; () a full softmax
    output_clusters: tuple[int, ...] = ()


class Vocabulary:
    """Local target ids ↔ encoder-tokenizer ids; specials first, then the kept pieces in id order."""

    def __init__(self, token_ids: Sequence[int], tokenizer_size: int):
        self.ids = np.asarray(token_ids, dtype=np.int64)  # the first four: pad, bos, eos, unk
        self.lookup = np.full(tokenizer_size, -1, dtype=np.int64)
        self.lookup[self.ids] = np.arange(len(self.ids))

    @classmethod
    def from_texts(cls, target_ids: Sequence[Sequence[int]], tokenizer, min_count: int = 1) -> "Vocabulary":
        """The tokenizer's specials, then the pieces seen ``min_count`` times in ``target_ids`` (id order).

        Rarer pieces cost softmax width for little mass; the copy head still produces them when the
        source has them."""
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.cls_token_id
        eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
        specials = [tokenizer.pad_token_id, bos, eos, tokenizer.unk_token_id]
        if None in specials or len(set(specials)) < 4:
            raise ValueError(f"the tokenizer needs distinct pad, bos/cls, eos/sep and unk tokens, has {specials}")
        counts = Counter(t for ids in target_ids for t in ids)
        seen = sorted({t for t, n in counts.items() if n >= min_count} - set(specials))
        return cls([*specials, *seen], len(tokenizer))

    def __len__(self) -> int:
        return len(self.ids)

    def extend_one(self, source_ids: Sequence[int]) -> tuple[list[int], list[int]]:
        """A sentence's source pieces as (extended) local ids, and the encoder ids of the extensions.

        A source piece outside the vocabulary gets id ``len(self) + k`` for its k-th distinct such
        piece in the sentence, so the copy head can still produce it.
        """
        ext: dict[int, int] = {}
        row = []
        for t in source_ids:
            k = int(self.lookup[t])
            row.append(k if k >= 0 else len(self) + ext.setdefault(int(t), len(ext)))
        return row, list(ext)

    def extend(self, source_ids: Sequence[Sequence[int]]) -> tuple[torch.Tensor, list[list[int]]]:
        """:meth:`extend_one` for a batch: right-padded (with <pad>) local ids and the extensions."""
        rows = [self.extend_one(ids) for ids in source_ids]
        return pad_rows([r for r, _ in rows], PAD), [e for _, e in rows]

    def targets(self, target_ids: Sequence[int], extensions: Sequence[int]) -> list[int]:
        """Target pieces as local ids: extended ids for copyable out-of-vocabulary pieces, else <unk>."""
        ext = {t: len(self) + k for k, t in enumerate(extensions)}
        out = []
        for t in target_ids:
            k = int(self.lookup[t])
            out.append(k if k >= 0 else ext.get(int(t), UNK))
        return out

    def decode_ids(self, local_ids: Sequence[int], extensions: Sequence[int]) -> list[int]:
        """Local (possibly extended) ids → encoder-tokenizer ids, specials dropped."""
        out = []
        for k in local_ids:
            if k in (PAD, BOS, EOS):
                continue
            out.append(int(self.ids[k]) if k < len(self) else int(extensions[k - len(self)]))
        return out


def pad_rows(rows: Sequence[Sequence[int]], value: int) -> torch.Tensor:
    width = max((len(r) for r in rows), default=1)
    out = torch.full((len(rows), max(width, 1)), value, dtype=torch.long)
    for j, r in enumerate(rows):
        out[j, :len(r)] = torch.tensor(r, dtype=torch.long)
    return out


class _DecoderLayer(nn.Module):
    """Pre-norm Transformer decoder layer with an incremental self-attention cache."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float):
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.self_out = nn.Linear(d, d)
        self.cross_q, self.cross_kv, self.cross_out = nn.Linear(d, d), nn.Linear(d, 2 * d), nn.Linear(d, d)
        self.ff = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Dropout(dropout), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) → (B, H, T, d/H)
        b, t, d = x.shape
        return x.view(b, t, self.heads, d // self.heads).transpose(1, 2)

    @staticmethod
    def _merge(x: torch.Tensor) -> torch.Tensor:
        b, h, t, k = x.shape
        return x.transpose(1, 2).reshape(b, t, h * k)

    def cross_keys(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.cross_kv(memory).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(self, x, cross_kv, memory_bias, cache: dict | None = None):
        p = self.dropout if self.training else 0.0
        q, k, v = (self._split(t) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        if cache is not None:  # incremental decoding: x is the newest position only
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
            attn = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        x = x + self.drop(self.self_out(self._merge(attn)))
        q = self._split(self.cross_q(self.norm2(x)))
        attn = F.scaled_dot_product_attention(q, *cross_kv, attn_mask=memory_bias, dropout_p=p)
        x = x + self.drop(self.cross_out(self._merge(attn)))
        return x + self.drop(self.ff(self.norm3(x)))


class CopyTranslator(nn.Module):
    """Decoder + copy head over frozen encoder states; log-probabilities over the extended vocabulary."""

    def __init__(self, arch: Architecture, vocab: Vocabulary, source_embeddings: torch.Tensor,
                 target_init: torch.Tensor | None = None, by_rank: torch.Tensor | None = None):
        """``by_rank``: with ``arch.output_clusters``, the local ids from the most to the least frequent label
        (saved with the model; a loaded model gets it from its weights)."""
        super().__init__()
        self.arch, self.vocab = arch, vocab
        d = arch.d_model
        # frozen word embeddings of the encoder (not saved: they come from the encoder at load time)
        self.register_buffer("source_embeddings", source_embeddings, persistent=False)
        self.state_proj = nn.Linear(arch.source_dim, d)
        self.lexical_proj = nn.Linear(source_embeddings.shape[1], d)
        self.memory_norm = nn.LayerNorm(d)
        self.embed = nn.Embedding(len(vocab), d)
        if target_init is not None:
            with torch.no_grad():
                self.embed.weight.copy_(target_init / target_init.std() * d ** -0.5)
        self.positions = nn.Embedding(arch.max_target_len + 2, d)
        self.layers = nn.ModuleList(_DecoderLayer(d, arch.heads, arch.ffn, arch.dropout) for _ in range(arch.layers))
        self.final_norm = nn.LayerNorm(d)
        self.out_bias = nn.Parameter(torch.zeros(len(vocab)))
        if arch.output_clusters:
            self._init_clusters(by_rank)
        self.copy_query = nn.Linear(d, d)
        self.gate = nn.Linear(2 * d, 1)
        self.drop = nn.Dropout(arch.dropout)

    # --- encoder side -----------------------------------------------------------------------------

    def memory(self, states: torch.Tensor, source_ids: torch.Tensor) -> torch.Tensor:
        """Decoder memory from encoder states (B, S, source_dim) and the source token ids (B, S)."""
        lexical = self.source_embeddings[source_ids]
        return self.drop(self.memory_norm(self.state_proj(states) + self.lexical_proj(lexical)))

    def prepare(self, memory: torch.Tensor, source_mask: torch.Tensor) -> dict:
        bias = torch.zeros_like(source_mask, dtype=memory.dtype).masked_fill(source_mask == 0, float("-inf"))
        return {"memory": memory, "bias": bias[:, None, None, :],
                "cross": [layer.cross_keys(memory) for layer in self.layers]}

    # --- decoder side -----------------------------------------------------------------------------

    def _inputs(self, tokens: torch.Tensor, offset: int) -> torch.Tensor:
        tokens = tokens.masked_fill(tokens >= len(self.vocab), UNK)  # extended (copied) pieces
        pos = torch.arange(offset, offset + tokens.shape[1], device=tokens.device)
        pos = pos.clamp_max(self.positions.num_embeddings - 1)
        return self.drop(self.embed(tokens) * math.sqrt(self.arch.d_model) + self.positions(pos)[None])

    def _init_clusters(self, by_rank: torch.Tensor | None) -> None:
        cuts = [0, *self.arch.output_clusters, len(self.vocab)]
        if any(a >= b for a, b in zip(cuts, cuts[1:])):
            raise ValueError(f"adaptive softmax cutoffs must rise from above 0 to below the {len(self.vocab)} "
                             f"target pieces, got {list(self.arch.output_clusters)}")
        order = torch.arange(len(self.vocab)) if by_rank is None else by_rank.long()
        if sorted(order.tolist()) != list(range(len(self.vocab))):
            raise ValueError("by_rank must order every target piece once")
        self.register_buffer("by_rank", order.clone())
        # each tail cluster starts as its pieces' mean embedding, with the log of its size as bias: about the
        # mass its pieces would have under a full softmax at the start
        members = [self.embed.weight[order[a:b]] for a, b in zip(cuts[1:], cuts[2:])]
        self.cluster_weight = nn.Parameter(torch.stack([m.detach().mean(0) for m in members]))
        self.cluster_bias = nn.Parameter(torch.tensor([math.log(len(m)) for m in members]))

    def _cuts(self) -> list[int]:
        return [0, *self.arch.output_clusters, len(self.vocab)]

    def _rank_of(self) -> torch.Tensor:
        """The frequency rank of every local id (the inverse of ``by_rank``)."""
        ranks = torch.arange(len(self.by_rank), device=self.by_rank.device)
        return torch.empty_like(self.by_rank).scatter_(0, self.by_rank, ranks)

    def _head_log_probs(self, h: torch.Tensor) -> torch.Tensor:
        """Adaptive softmax head: log-probabilities of the head pieces (rank order), then of each tail cluster."""
        head = self.by_rank[:self._cuts()[1]]
        weight = torch.cat([self.embed.weight[head], self.cluster_weight])
        return F.log_softmax(h @ weight.T + torch.cat([self.out_bias[head], self.cluster_bias]), dim=-1)

    def _cluster_log_probs(self, h: torch.Tensor, cluster: int, head: torch.Tensor) -> torch.Tensor:
        """log P(piece) = log P(cluster) + log P(piece | cluster) for the pieces of tail ``cluster`` (0-based),
        in rank order; ``head`` is :meth:`_head_log_probs` at the same positions."""
        cuts = self._cuts()
        ids = self.by_rank[cuts[cluster + 1]:cuts[cluster + 2]]
        within = F.log_softmax(h @ self.embed.weight[ids].T + self.out_bias[ids], dim=-1)
        return within + head[..., cuts[1] + cluster, None]

    def _generator(self, h: torch.Tensor, shortlist: torch.Tensor | None = None) -> torch.Tensor:
        """The generator's log-probabilities over every piece (local-id order), from normed states ``h``.

        With a ``shortlist`` (local ids), a softmax over those pieces only, in that order."""
        weight, bias = self.embed.weight, self.out_bias
        if shortlist is not None:
            weight, bias = weight[shortlist], bias[shortlist]
        elif self.arch.output_clusters:
            head = self._head_log_probs(h)
            parts = [head[..., :self._cuts()[1]]]
            parts += [self._cluster_log_probs(h, c, head) for c in range(len(self.arch.output_clusters))]
            return torch.cat(parts, dim=-1)[..., self._rank_of()]
        return F.log_softmax(h @ weight.T + bias, dim=-1)

    def _adaptive_label_terms(self, h: torch.Tensor, labels: torch.Tensor, valid: torch.Tensor):
        """log P_gen(label) under the adaptive softmax and the smoothing term, computing a tail cluster's softmax
        only at the ``valid`` positions whose label is in it. The smoothing term is the mean over the head's
        entries (its pieces and clusters): the mean over every piece would need every cluster everywhere."""
        cuts, rank = self._cuts(), self._rank_of()[labels]
        head = self._head_log_probs(h)
        label = head.gather(-1, rank.clamp_max(cuts[1] - 1)[..., None])[..., 0]
        for c in range(len(self.arch.output_clusters)):
            rows = (valid & (rank >= cuts[c + 1]) & (rank < cuts[c + 2])).nonzero(as_tuple=True)
            if len(rows[0]):
                part = self._cluster_log_probs(h[rows], c, head[rows])
                label = label.index_put(rows, part.gather(-1, (rank[rows] - cuts[c + 1])[:, None])[:, 0])
        return label, -head.mean(-1)

    def _copy(self, h: torch.Tensor, enc: dict):
        """(copy attention over the source, gate = P(generate)) from normed states ``h``."""
        scores = self.copy_query(h) @ enc["memory"].transpose(1, 2) / math.sqrt(self.arch.d_model)
        attn = F.softmax(scores + enc["bias"][:, 0], dim=-1)  # (B, T, S)
        gate = torch.sigmoid(self.gate(torch.cat([h, attn @ enc["memory"]], dim=-1)))  # (B, T, 1)
        return attn, gate

    def _heads(self, h: torch.Tensor, enc: dict, shortlist: torch.Tensor | None = None):
        """(generator log-probabilities, copy attention over the source, gate = P(generate)).

        With a ``shortlist`` (local ids), the generator's softmax runs over those pieces only, in that order."""
        h = self.final_norm(h)
        return self._generator(h, shortlist), *self._copy(h, enc)

    def _output(self, h: torch.Tensor, enc: dict, source_local: torch.Tensor, n_ext: int) -> torch.Tensor:
        """log p(token) over vocabulary + ``n_ext`` extended ids: generation and copy mixed by the gate."""
        gen, attn, gate = (t.float() for t in self._heads(h, enc))  # one dtype under autocast
        probs = F.pad(gate * gen.exp(), (0, n_ext))
        index = source_local[:, None, :].expand(-1, h.shape[1], -1)
        probs = probs.scatter_add(-1, index, (1 - gate) * attn)
        return torch.log(probs.clamp_min(1e-12))

    def _decode(self, enc: dict, decoder_in: torch.Tensor) -> torch.Tensor:
        x = self._inputs(decoder_in, 0)
        for layer, cross in zip(self.layers, enc["cross"]):
            x = layer(x, cross, enc["bias"])
        return x

    def forward(self, enc: dict, source_local: torch.Tensor, n_ext: int, decoder_in: torch.Tensor) -> torch.Tensor:
        """log p over the extended vocabulary at every target position (teacher forcing)."""
        return self._output(self._decode(enc, decoder_in), enc, source_local, n_ext)

    def loss_terms(self, enc: dict, source_local: torch.Tensor, decoder_in: torch.Tensor, labels: torch.Tensor,
                   shortlist: torch.Tensor | None = None):
        """Per target position: -log p(label) under the mixture, and the generator's mean -log p
        (the label-smoothing term). Never builds the mixture over the whole vocabulary.

        ``shortlist``: sorted local ids holding every in-vocabulary label of the batch; the generator is
        then normalised over them alone (a cheaper output layer in training; decoding uses them all)."""
        if shortlist is not None and self.arch.output_clusters:
            raise ValueError("a shortlist and an adaptive softmax exclude each other")
        h = self.final_norm(self._decode(enc, decoder_in))
        attn, gate = self._copy(h, enc)
        in_vocab = labels < len(self.vocab)
        index = labels.clamp(0, len(self.vocab) - 1)
        if self.arch.output_clusters:
            label_log_p, smooth = self._adaptive_label_terms(h, index, in_vocab & (labels >= 0))
        else:
            gen = self._generator(h, shortlist)
            if shortlist is not None:
                index = torch.searchsorted(shortlist, index).clamp_max(len(shortlist) - 1)
                if not bool((shortlist[index] == labels)[in_vocab & (labels >= 0)].all()):
                    raise ValueError("the shortlist must hold every in-vocabulary label of the batch")
            label_log_p, smooth = gen.gather(-1, index[..., None])[..., 0], -gen.mean(-1)
        p_gen = label_log_p.exp() * in_vocab
        p_copy = (attn * (source_local[:, None, :] == labels[..., None])).sum(-1)
        p = gate[..., 0] * p_gen + (1 - gate[..., 0]) * p_copy
        return -torch.log(p.clamp_min(1e-12)), smooth

    def step(self, enc: dict, source_local, n_ext: int, tokens: torch.Tensor, offset: int, caches: list[dict]):
        """log-probabilities of the next token after ``tokens`` (B, 1) at position ``offset``."""
        x = self._inputs(tokens, offset)
        for layer, cross, cache in zip(self.layers, enc["cross"], caches):
            x = layer(x, cross, enc["bias"], cache)
        return self._output(x, enc, source_local, n_ext)[:, -1]


def token_loss(nll: torch.Tensor, smooth: torch.Tensor, labels: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Mean over real target positions (labels != -100) of the label-smoothed loss."""
    keep = labels != -100
    return ((1 - smoothing) * nll + smoothing * smooth)[keep].mean()


@torch.inference_mode()
def beam_search(model: CopyTranslator, enc: dict, source_local: torch.Tensor, n_ext: int, max_len: Sequence[int],
                beams: int = 4, length_penalty: float = 1.0) -> list[list[int]]:
    """Best local-id sequence per sentence (batched beam search; scores divided by length**penalty).

    ``max_len[b]`` counts the pieces of sentence b including </s>. With ``beams=1`` it is greedy decoding.
    The model runs on its device (that of ``enc``), the search's bookkeeping on the CPU.
    """
    batch, dev = source_local.shape[0], enc["memory"].device
    expand = torch.arange(batch, device=dev).repeat_interleave(beams)
    enc = {"memory": enc["memory"][expand], "bias": enc["bias"][expand],
           "cross": [(k[expand], v[expand]) for k, v in enc["cross"]]}
    source_local = source_local[expand]
    caches: list[dict] = [{} for _ in model.layers]
    scores = torch.full((batch, beams), float("-inf"))
    scores[:, 0] = 0.0
    scores = scores.view(-1)
    tokens = torch.full((batch * beams, 1), BOS, dtype=torch.long)
    finished = torch.zeros(batch * beams, dtype=torch.bool)
    limit = torch.tensor(list(max_len)).repeat_interleave(beams)
    best: list[tuple[float, list[int]]] = [(float("-inf"), []) for _ in range(batch)]
    for t in range(int(limit.max())):
        logp = model.step(enc, source_local, n_ext, tokens[:, -1:].to(dev), t, caches).float().cpu()
        logp = logp.masked_fill((limit <= t + 1)[:, None] & (torch.arange(logp.shape[1]) != EOS)[None], float("-inf"))
        logp[:, PAD] = float("-inf")
        logp[:, BOS] = float("-inf")
        cand = (scores[:, None] + logp).masked_fill(finished[:, None], float("-inf"))
        vocab = cand.shape[1]
        top, index = cand.view(batch, -1).topk(2 * beams, dim=-1)
        next_scores = torch.full((batch, beams), float("-inf"))
        origin = torch.zeros((batch, beams), dtype=torch.long)
        chosen = torch.full((batch, beams), PAD, dtype=torch.long)
        for b in range(batch):
            k = 0
            for s, i in zip(top[b].tolist(), index[b].tolist()):
                if s == float("-inf") or k == beams:
                    break
                src, tok = divmod(i, vocab)
                if tok == EOS:
                    seq = tokens[b * beams + src, 1:].tolist()
                    normed = s / max(len(seq) + 1, 1) ** length_penalty
                    if normed > best[b][0]:
                        best[b] = (normed, seq)
                    if beams == 1:  # greedy decoding ends at the first </s>
                        break
                    continue
                next_scores[b, k], origin[b, k], chosen[b, k] = s, b * beams + src, tok
                k += 1
        # a sentence is done once no open hypothesis can beat its best finished one
        open_best = next_scores.max(-1).values
        for b in range(batch):
            if best[b][0] > float("-inf") and open_best[b] / (t + 2) ** length_penalty <= best[b][0] \
                    and length_penalty >= 0:
                next_scores[b] = float("-inf")
        origin = origin.view(-1)
        tokens = torch.cat([tokens[origin], chosen.view(-1, 1)], dim=1)
        for cache in caches:
            cache["k"], cache["v"] = cache["k"][origin.to(dev)], cache["v"][origin.to(dev)]
        scores = next_scores.view(-1)
        finished = torch.isinf(scores)
        if bool(finished.all()):
            break
    for b in range(batch):  # nothing finished: take the best open hypothesis
        if not best[b][1] and best[b][0] == float("-inf"):
            k = int(scores.view(batch, beams)[b].argmax())
            best[b] = (0.0, tokens[b * beams + k, 1:].tolist())
    return [seq for _, seq in best]


# --- saving and loading ---------------------------------------------------------------------------


def save(model: CopyTranslator, tokenizer, out: Path) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    (out / MODEL_FILE).write_text(json.dumps({"architecture": asdict(model.arch),
                                              "vocabulary": model.vocab.ids.tolist()}))
    tokenizer.save_pretrained(out)


def is_bench_model(path: Path) -> bool:
    return (Path(path) / MODEL_FILE).exists()


def load(path: Path) -> tuple[CopyTranslator, object, object]:
    """(model, encoder truncated to its layer, source tokenizer) of a saved bench MT model."""
    from safetensors.torch import load_file

    from bench.data import models
    from bench.errors import BenchError
    from bench.methods.translate import mt_data

    meta = json.loads((path / MODEL_FILE).read_text())
    arch = Architecture(**meta["architecture"])
    ref = models.resolve(arch.encoder["spec"])
    if ref.fingerprint != arch.encoder["fingerprint"]:
        raise BenchError(f"the MT model in {path} was trained on encoder {arch.encoder['spec']} with fingerprint "
                         f"{arch.encoder['fingerprint']}, but that spec now resolves to {ref.fingerprint}",
                         "install the encoder the model was trained with, or retrain with `bench train mt`")
    encoder = mt_data.truncated_encoder(ref, arch.encoder_layer)
    _, tokenizer = models.load(ref)
    vocab = Vocabulary(meta["vocabulary"], len(tokenizer))
    model = CopyTranslator(arch, vocab, encoder.embeddings.word_embeddings.weight.detach())
    model.load_state_dict(load_file(str(path / "model.safetensors")))
    model.eval()
    encoder.eval()
    return model, encoder, tokenizer


@torch.inference_mode()
def decode(model: CopyTranslator, tokenizer, states: torch.Tensor, source_ids: Sequence[Sequence[int]], *,
           beams: int, max_new_tokens: int, length_penalty: float = 1.0) -> list[str]:
    """Translations of one batch from encoder states (B, S, d) and source ids (unpadded), on the model's device."""
    dev = model.out_bias.device
    input_ids, mask = (t.to(dev) for t in pad_batch(source_ids, range(len(source_ids)), tokenizer.pad_token_id))
    enc = model.prepare(model.memory(states.to(dev), input_ids), mask)
    source_local, extensions = model.vocab.extend(source_ids)
    source_local = source_local.to(dev)
    n_ext = max((len(e) for e in extensions), default=0)
    limits = [min(max_new_tokens, model.arch.max_target_len, 2 * len(x) + 10) for x in source_ids]
    out = beam_search(model, enc, source_local, n_ext, limits, beams, length_penalty)
    return [tokenizer.decode(model.vocab.decode_ids(seq, ext), skip_special_tokens=True).strip()
            for seq, ext in zip(out, extensions)]


@torch.inference_mode()
def translate(model: CopyTranslator, encoder, tokenizer, source_ids: Sequence[Sequence[int]], *, beams: int,
              max_new_tokens: int, length_penalty: float) -> list[str]:
    """:func:`decode` with the (truncated) encoder run live on the tokenised sources, as in training."""
    dev = model.out_bias.device  # the encoder is on the same device
    input_ids, mask = (t.to(dev) for t in pad_batch(source_ids, range(len(source_ids)), tokenizer.pad_token_id))
    states = encoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
    return decode(model, tokenizer, states, source_ids, beams=beams, max_new_tokens=max_new_tokens,
                  length_penalty=length_penalty)
