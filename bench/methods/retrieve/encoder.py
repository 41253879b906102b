"""An encoder: a resolved model with its own conventions, applied in length-sorted batches on a device.

An :class:`Encoder` applies its model's conventions (E5: ``query: `` / ``passage: `` prefixes; mean
pooling over non-padding tokens; L2 normalisation) in length-sorted batches under
``torch.inference_mode`` with torch threads set to the cores. Its model is loaded only when something
has to be encoded, so a fully cached run never loads it.

The device is :func:`bench.infra.devices.resolve`'s (``--device``, ``BENCH_DEVICE``) unless one is given,
and the batches are sized for it (:func:`bench.infra.devices.batch_tokens`, ``--batch-tokens``). On CUDA
the forward pass runs under bfloat16 autocast (:func:`bench.infra.devices.bf16_autocast`); pooling and
normalisation are computed in float32 whatever the device, and the vectors come back as float32
numpy arrays. On the CPU the forward pass runs in torch, or in OpenVINO fp32 where ``--cpu-runtime openvino``
asks for it (:func:`bench.infra.devices.cpu_runtime`): an execution setting like the device, so not in the key.
The model that :func:`bench.data.models.load` shares in the process is never moved: a CUDA
encoder uses a copy of it on the GPU (one per model and device).

``quantize="int8"``: torch dynamic quantisation (:func:`torch.ao.quantization.quantize_dynamic`)
of every ``nn.Linear`` to qint8 weights with per-channel scales, activations quantised per batch;
on the CPU only (on CUDA the setting is ignored with a warning: bf16 is the fast path there). Chosen
over ONNX Runtime because it needs no export step and no second runtime: the same tokenisation,
batching, pooling and cache code run, on a quantised copy of the same model, and nothing new is
installed. Per channel rather than per tensor because it keeps the vectors closer to fp32 (one batch of
16 AfriQA passages through the packaged multilingual-e5-small: worst cosine to fp32 0.972 per channel,
0.960 per tensor, for a forward pass ~20% faster per tensor). The
encoder's cache key names the quantisation, so int8 vectors never reuse fp32 caches (and fp32 keys
are as before).
"""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Collection, Sequence

import numpy as np

from bench.infra import batching, devices

from bench.data import models
from bench.errors import BenchError
from bench.methods.token_states import TokenStates

log = logging.getLogger(__name__)

ENCODE_VERSION = 1  # bump when the way texts are encoded changes
# the quantisations an encoder can apply, and what each is (its name in the cache key)
QUANTIZATIONS = {"int8": "torch-dynamic-qint8-per-channel-linear"}
_PLURAL = {"query": "queries", "doc": "documents"}


@dataclass(init=False)
class Encoded(TokenStates):
    """Pooled vectors of n texts and, where they were kept, their token states (float16, L2-normalised per
    token; ``states`` and ``offsets`` are None where they were not)."""

    vectors: np.ndarray  # (n, d) float32

    def __init__(self, vectors: np.ndarray, states: np.ndarray | None = None, offsets: np.ndarray | None = None):
        super().__init__(states, offsets)
        self.vectors = vectors

    def __len__(self) -> int:
        return len(self.vectors)


class Encoder:
    """A resolved model with its conventions; the model itself is loaded on first use.

    ``device``: a spec or torch device (default: :func:`bench.infra.devices.resolve`'s at each use, so the
    process's ``--device``); ``batch_tokens`` / ``max_batch``: the batch bounds (default: sized for the
    device); ``quantize``: None or ``"int8"`` (see the module's text); ``bf16``: autocast the forward
    pass in bfloat16 (default: where :func:`bench.infra.devices.bf16_autocast` says; True forces it, as a
    test does on the CPU).
    """

    def __init__(self, ref: models.ModelRef, max_length: int | None = None, batch_tokens: int | None = None,
                 max_batch: int | None = None, *, device=None, quantize: str | None = None, bf16: bool | None = None):
        if quantize is not None and quantize not in QUANTIZATIONS:
            raise BenchError(f"unknown quantisation {quantize!r}", "use " + " or ".join(QUANTIZATIONS) + ", or none")
        self.ref = ref
        self.conventions = ref.conventions
        self.max_length = int(max_length or ref.conventions.max_length)
        self._batch_tokens, self._max_batch = batch_tokens, max_batch
        self._device = device
        self.requested_quantize = quantize
        self.bf16 = bf16
        self._warned = False

    @property
    def device(self):
        """The torch device this encoder runs on now."""
        return devices.resolve(self._device) if self._device is None or isinstance(self._device, str) else self._device

    @property
    def quantize(self) -> str | None:
        """The quantisation applied: the one asked for, on the CPU only."""
        if self.requested_quantize and self.device.type != "cpu":
            if not self._warned:
                log.warning("%s quantisation is for the CPU: ignored on %s (bf16 autocast there)",
                            self.requested_quantize, self.device)
                self._warned = True
            return None
        return self.requested_quantize

    @property
    def batch_tokens(self) -> int:
        return self._batch_tokens or devices.batch_tokens(self.device)

    @property
    def max_batch(self) -> int:
        return self._max_batch or devices.max_batch(self.device)

    @property
    def runtime(self) -> str:
        """What runs the forward pass: :func:`bench.infra.devices.cpu_runtime`'s (torch, or OpenVINO on the CPU)."""
        return devices.cpu_runtime(self.device, self.quantize)

    @property
    def autocast(self) -> bool:
        return devices.bf16_autocast(self.device) if self.bf16 is None else bool(self.bf16)

    @property
    def loaded(self):
        """``(model, tokenizer)``: the model on this encoder's device, quantised if asked."""
        _, tokenizer = models.load(self.ref)
        return placed_model(self.ref, self.device, self.quantize), tokenizer

    def prefix(self, side: str) -> str:
        return self.conventions.query_prefix if side == "query" else self.conventions.doc_prefix

    def key(self, side: str) -> dict:
        """Everything about this encoder that determines the vectors of one side (not the device)."""
        c = self.conventions
        key = {"model": self.ref.fingerprint, "max_length": self.max_length, "prefix": self.prefix(side),
               "pooling": c.pooling, "normalize": c.normalize, "version": ENCODE_VERSION}
        if self.quantize:  # only when set, so the fp32 keys (and caches) are those of before
            key["quantize"] = QUANTIZATIONS[self.quantize]
        return key

    def encode(self, texts: Sequence[str], side: str, token_states: bool = False, desc: str | None = None,
               bar=None) -> Encoded:
        """Encode ``texts`` as queries or documents (``side``); keep token states if asked.

        Token states drop special tokens and padding; on the query side also the prefix tokens. The texts
        encoded are counted on a progress bar of their own (``desc``), or on ``bar``, a bar of a larger
        encoding that this call is a part of (left open).
        """
        import contextlib

        import torch
        from bench.infra import progress

        device, autocast = self.device, self.autocast
        model, tokenizer = self.loaded
        torch.set_num_threads(batching.threads())
        forward = self._forward(model)
        prefix = self.prefix(side)
        drop_prefix = token_states and side == "query" and bool(prefix.strip())
        batch = tokenizer([prefix + t for t in texts], truncation=True, max_length=self.max_length,
                          return_attention_mask=False, return_token_type_ids=False,
                          return_special_tokens_mask=token_states, return_offsets_mapping=drop_prefix)
        ids = batch["input_ids"]
        keep = _kept_tokens(batch, len(prefix.rstrip()) if drop_prefix else 0) if token_states else None
        vectors = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        states: list[np.ndarray | None] = [None] * len(texts)
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        own = bar is None
        if own:
            bar = progress.bar(total=len(texts), desc=desc or f"encoding {_PLURAL[side]} ({self.ref.name})",
                               unit=side, disable=len(texts) < 256, mininterval=2.0)
        with torch.inference_mode(), bar if own else contextlib.nullcontext():
            for rows in batching.length_batches([len(x) for x in ids], self.batch_tokens, self.max_batch):
                input_ids, mask = (t.to(device) for t in batching.pad_batch(ids, rows, pad_id))
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                    hidden = forward(input_ids, mask)
                hidden = hidden.float()  # pooling and normalisation in float32, whatever ran the model
                vectors[rows] = self._pool(hidden, mask).cpu().numpy()
                if token_states:
                    normed = torch.nn.functional.normalize(hidden, dim=-1).to(torch.float16).cpu().numpy()
                    for j, i in enumerate(rows):
                        states[i] = normed[j, :len(ids[i])][keep[i]]
                bar.update(len(rows))
        if not token_states:
            return Encoded(vectors)
        kept = TokenStates.join(states, vectors.shape[1], np.float16)
        return Encoded(vectors, kept.states, kept.offsets)

    def _forward(self, model):
        """``(input_ids, attention_mask) -> last hidden states`` of ``model`` in this encoder's runtime."""
        if self.runtime == "openvino":
            from bench.infra import openvino_runtime

            return openvino_runtime.forward(model, batching.threads())
        return lambda input_ids, mask: model(input_ids=input_ids, attention_mask=mask).last_hidden_state

    def _pool(self, hidden, mask):
        import torch

        if self.conventions.pooling == "cls":
            pooled = hidden[:, 0]
        else:  # mean over real tokens only: padding never counts
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1) if self.conventions.normalize else pooled


def _kept_tokens(batch, prefix_chars: int) -> list[np.ndarray]:
    """Per text, a boolean mask of the tokens whose states are kept (not special, not prefix)."""
    out = []
    for i, special in enumerate(batch["special_tokens_mask"]):
        keep = np.asarray(special, dtype=np.int8) == 0
        if prefix_chars:
            starts = np.array([s for s, _ in batch["offset_mapping"][i]])
            keep &= starts >= prefix_chars
        out.append(keep)
    return out


_PLACED: dict[tuple, object] = {}  # (model path, fingerprint, device, quantisation) -> model


def placed_model(ref: models.ModelRef, device, quantize: str | None = None):
    """:func:`bench.data.models.load`'s model on ``device`` (a copy, on CUDA), quantised if asked (a copy,
    on the CPU); the shared model itself is returned as it is on the CPU and never changed."""
    import torch

    model, _ = models.load(ref)
    device = torch.device(device)
    if device.type == "cpu" and not quantize:
        return model
    key = (str(ref.path), ref.fingerprint, str(device), quantize)
    if key not in _PLACED:
        if quantize:
            if device.type != "cpu":
                raise BenchError(f"{quantize} quantisation runs on the CPU only, not on {device}", "use --device cpu")
            log.info("quantising %s to %s (%s)", ref.name, quantize, QUANTIZATIONS[quantize])
            _PLACED[key] = quantize_int8(model)
        else:
            log.info("copying %s to %s", ref.name, device)
            _PLACED[key] = copy.deepcopy(model).to(device).eval()
    return _PLACED[key]


def quantize_int8(model, fp32_layers: Collection[str] = ()):
    """A copy of ``model`` with every ``nn.Linear`` dynamically quantised to qint8 (per-channel weight
    scales), except those named in ``fp32_layers`` (names as ``model.named_modules()`` gives them);
    embeddings, LayerNorms and attention stay float32. torch marks ``torch.ao.quantization``
    deprecated in favour of torchao but ships it in the pinned version: the warnings are silenced."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    linears = [name for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    unknown = sorted(set(fp32_layers) - set(linears))
    if unknown:
        raise BenchError(f"no linear layer named {unknown[0]!r} in the model", "name layers as named_modules() does")
    spec = {name: per_channel_dynamic_qconfig for name in linears if name not in set(fp32_layers)}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*")
        quantized = quantize_dynamic(model, spec, inplace=False)
    return quantized.eval()


_ENCODERS: dict[tuple, Encoder] = {}


def encoder(spec: str, max_length: int | None = None, quantize: str | None = None) -> Encoder:
    """The encoder of a model spec (one per spec, length and quantisation per process, so a model loads
    once); it runs on the process's device (:func:`bench.infra.devices.resolve`) at each use."""
    key = (spec, max_length) if quantize is None else (spec, max_length, quantize)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(models.resolve(spec), max_length, quantize=quantize)
    return _ENCODERS[key]
