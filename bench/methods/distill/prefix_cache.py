"""The student's frozen lower layers, computed once: with ``freeze_layers=k`` a step runs only the layers above.

With ``freeze_layers=k`` the student's embedding block and lowest k transformer layers never change,
so what they give a foreign sentence is as fixed as the teacher's states: a function of the initial
student's weights, k, the prefix, the maximum length and the sentence. :func:`frozen_prefix` computes
it once for the sentences the training's plan visits (as :mod:`bench.methods.distill.teacher_cache` does
for the teacher, in the same storage: :mod:`bench.methods.distill.state_cache`) under
``BENCH_HOME/student-prefix-states/<fingerprint>`` (key: the initial student's fingerprint, k, prefix,
maximum length, the fingerprint of the *set* of sentences, a version), and a step runs the upper
layers only (``model.encoder.layer[k:]``, the student's own modules, with the attention mask its own
forward pass builds) on the cached states. ``freeze_layers=0`` has no frozen prefix and no cache.

Dropout: the frozen layers run in eval mode, cached or not (the trainer puts them in eval mode), so
their output is deterministic and can be cached. Until issue 21 the uncached frozen run kept them in
train mode: dropout (embedding, attention and hidden) acted on the frozen embedding block and lowest k
layers and fed the trainable layers noisy inputs, and drew random numbers that the trainable layers'
dropout now draws instead. A ``freeze_layers > 0`` checkpoint of that code therefore differs from
today's, and the checkpoint key says which (``frozen_dropout``, :func:`bench.methods.distill.trainer.checkpoint_key`);
``freeze_layers=0`` trains exactly as before. The trainable layers' dropout is untouched, and the same
in the cached and uncached runs (they draw the same random numbers), so the two give the same loss
and weights to float tolerance, and the cache is not part of the checkpoint's key.

The split forward pass (embedding block and lower layers, then upper layers) must give what the
student's own forward pass gives. Before a cache is built it is checked on a padded batch (the
shortest and longest sentences); a student it does not reproduce (another layout, another
transformers' attention masks) trains without the cache, with a warning.

The cached states come from other batches than the step's (other widths and neighbours), so they
equal the uncached ones to float tolerance; padding positions are zeros, which the upper layers'
attention mask hides from every real token, and which never reach the loss.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch

from bench.infra.store import cached_build
from bench.methods.distill.optical import Tokenized, tokenize
from bench.methods.distill.state_cache import (
    autocast, forward, padded, positions, row_index, sentences_key, write_states,
)
from bench.methods.token_states import TokenStates

log = logging.getLogger(__name__)

CACHE_VERSION = 1  # bump when the way the lower layers' states are computed or stored changes
KIND = "student-prefix-states"


class Unreproduced(Exception):
    """The split forward pass does not give what the student's own forward pass gives."""


# --- the split forward pass --------------------------------------------------------------------------------


def has_layout(model) -> bool:
    """Whether the student has the BERT/XLM-R layout the split runs on: ``embeddings``, ``encoder.layer``."""
    stack = getattr(getattr(model, "encoder", None), "layer", None)
    return isinstance(getattr(model, "embeddings", None), torch.nn.Module) and isinstance(stack, torch.nn.ModuleList)


def layer_mask(model, hidden: torch.Tensor, attention_mask: torch.Tensor):
    """The attention mask as the student's layers take it: what its own forward pass builds from ``attention_mask``."""
    if hasattr(model, "get_extended_attention_mask"):  # transformers 4: the additive (B, 1, 1, L) mask
        return model.get_extended_attention_mask(attention_mask, attention_mask.shape)
    from transformers.masking_utils import create_bidirectional_mask  # transformers 5

    return create_bidirectional_mask(config=model.config, inputs_embeds=hidden, attention_mask=attention_mask)


def run_layers(stack: Iterable[torch.nn.Module], hidden: torch.Tensor, mask) -> torch.Tensor:
    """``hidden`` through the transformer layers of ``stack`` in turn, each given ``mask`` (:func:`layer_mask`)."""
    for layer in stack:
        out = layer(hidden, mask)
        hidden = out[0] if isinstance(out, tuple) else out  # transformers 4 layers return a tuple
    return hidden


def lower(model, layers: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """What the student's embedding block and lowest ``layers`` layers give the batch: (B, L, d) float32."""
    with autocast(input_ids.device):
        hidden = model.embeddings(input_ids=input_ids)
        hidden = run_layers(model.encoder.layer[:layers], hidden, layer_mask(model, hidden, attention_mask))
    return hidden.float()


def upper(model, layers: int, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The student's last hidden state (float32) from its lowest ``layers`` layers' output: the layers above run."""
    with autocast(hidden.device):
        hidden = run_layers(model.encoder.layer[layers:], hidden, layer_mask(model, hidden, attention_mask))
    return hidden.float()


@contextmanager
def evaluating(model) -> Iterator[None]:
    """``model`` in eval mode (no dropout) inside, every module's own mode restored after."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, mode in modes:
            module.training = mode


def check_split(model, layers: int, side: Tokenized, device) -> None:
    """Raise :class:`Unreproduced` unless lower then upper layers give the student's own last hidden state
    on the shortest and longest of ``side``'s sentences, padded into one batch (call in eval mode)."""
    lengths = [len(x) for x in side.ids]
    batch = side.batch(sorted({int(np.argmin(lengths)), int(np.argmax(lengths))}))
    input_ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    with torch.no_grad():
        whole = forward(model, input_ids, mask)
        try:
            split = upper(model, layers, lower(model, layers, input_ids, mask), mask)
        except (AttributeError, IndexError, RuntimeError, TypeError, ValueError) as exc:
            raise Unreproduced(f"{type(exc).__name__}: {exc}") from exc
    real = mask.bool()
    if not torch.allclose(split[real], whole[real], rtol=1e-3, atol=1e-3):
        difference = (split[real] - whole[real]).abs().max().item()
        raise Unreproduced(f"the states differ by up to {difference:.3g}")


# --- the cache -------------------------------------------------------------------------------------------


def build_prefix_states(model, tokenizer, texts: Sequence[str], prefix: str, max_length: int, layers: int,
                        out: Path, device) -> None:
    """Check the split on ``texts``, then write the lower layers' states of ``prefix + text`` to ``out``."""
    side = tokenize(tokenizer, texts, prefix, max_length)
    with evaluating(model):
        check_split(model, layers, side, device)
        log.info("computing the student's frozen embedding block and lowest %d layers for %d foreign sentences "
                 "once (cached)", layers, len(texts))
        write_states(out, side.ids, side.pad_id, model.config.hidden_size,
                     lambda ids, mask: lower(model, layers, ids, mask), device=device, desc="student prefix states")


def prefix_key(student_fp: str, texts: Sequence[str], prefix: str, max_length: int, layers: int) -> dict:
    """What determines the cache of ``texts`` (sorted and unique: their order and repeats do not matter)."""
    return {"artifact": KIND, "version": CACHE_VERSION, "student": student_fp, "layers": layers, "prefix": prefix,
            "max_length": max_length, **sentences_key(texts)}


def cached_prefix_states(model, tokenizer, student_fp: str, texts: Sequence[str], prefix: str, max_length: int,
                         layers: int, device) -> tuple[TokenStates, list[str], Path]:
    """The lower layers' states of the unique ``texts``, cached; with the sorted unique texts (row order) and the path.

    Raises :class:`Unreproduced` (and builds nothing) where the split does not reproduce the student.
    """
    unique = sorted(set(texts))
    key = prefix_key(student_fp, unique, prefix, max_length, layers)
    path = cached_build(KIND, key, lambda tmp: build_prefix_states(model, tokenizer, unique, prefix, max_length,
                                                                   layers, tmp, device))
    return TokenStates.read(path, mmap=True), unique, path


class FrozenPrefix:
    """The student's states for batches of bitext rows: its frozen lower layers' output read from the cache,
    the upper layers run on it (see :func:`frozen_prefix`)."""

    def __init__(self, model, layers: int, cache: TokenStates, index: np.ndarray, path: Path, device):
        self.model, self.layers, self.cache, self.index, self.path = model, layers, cache, index, path
        self.device = torch.device(device)

    def __call__(self, rows: Sequence[int], batch: dict) -> torch.Tensor:
        """The last hidden state (B, L, d) of ``rows``, float32 on the device, with the upper layers' gradient.

        ``batch`` is the rows' student batch (:meth:`Tokenized.batch`) on the device.
        """
        index = positions(self.index, rows, "student prefix cache")
        hidden = padded(self.cache, index, batch["input_ids"].shape[1]).to(self.device)
        return upper(self.model, self.layers, hidden, batch["attention_mask"])


def frozen_prefix(model, tokenizer, student_fp: str, foreign: Sequence[str], side: Tokenized, rows: Iterable[int], *,
                  layers: int, prefix: str, max_length: int, device) -> FrozenPrefix | None:
    """The cached lowest ``layers`` layers of the training student ``model`` for the bitext ``rows``.

    ``foreign[i]`` is row i's foreign side and ``side`` its tokens (the trainer's own); ``student_fp``
    is the fingerprint of the initial student (the frozen layers keep its weights); ``model`` is on
    ``device`` and stays there. None, with a warning, where the split does not reproduce the student:
    the trainer then runs the frozen layers in every step.
    """
    if not has_layout(model):
        log.warning("the student has no embeddings and encoder.layer modules: its %d frozen layers run in every "
                    "step (no prefix cache)", layers)
        return None
    rows = sorted(set(rows))
    try:
        cache, unique, path = cached_prefix_states(model, tokenizer, student_fp, [foreign[i] for i in rows], prefix,
                                                   max_length, layers, device)
    except Unreproduced as exc:
        log.warning("the split forward pass does not reproduce the student (%s): its %d frozen layers run in every "
                    "step (no prefix cache)", exc, layers)
        return None
    return FrozenPrefix(model, layers, cache, row_index(cache, unique, foreign, side, rows, path), path, device)
