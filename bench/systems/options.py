"""Run options: the per-run settings that systems read, declared, typed and validated once.

The CLI (or the runner, for a plain dict from the Python API or a test) builds one frozen
:class:`RunOptions`; an unknown key is an error with the closest names, a value of the wrong type is
an error naming the option. Each system declares which options it reads (``System.reads``), so its
recorded spec is its defaults plus the options it used, and two runs that differ in an option never
carry one identity.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Iterable, Mapping

from bench.errors import BenchError, did_you_mean
from bench.methods.retrieve.encoder import QUANTIZATIONS
from bench.methods.translate.mt_config import MT_SIZES

PROFILES = ("full", "ci")
QUANTIZE = (None, *QUANTIZATIONS)  # unset (fp32) or one of the encoders' quantisations


def option(default: Any, help: str, metavar: str = "N", *, choices: tuple | None = None) -> Any:
    """A run option's declaration: its default, its help (the help of its flag and of ``bench systems``),
    the flag's metavar and, where the values are few, its choices. Its type is the field's annotation,
    its check is in :meth:`RunOptions.__post_init__`, its flag is :func:`flag` of its name."""
    return field(default=default, metadata={"help": help, "metavar": metavar, "choices": choices})


@dataclass(frozen=True)
class RunOptions:
    """Every option a system may read; the defaults are what a plain ``bench run`` uses. Each is declared
    once, here: the command-line flags are generated from these declarations (:mod:`bench.cli.common`)."""

    profile: str = option("full", "the training budgets: full, or ci (short: the regression check of MAP)", "full|ci",
                          choices=PROFILES)
    bitext_noise: float = option(0.0, "fraction of the bitext replaced by misaligned pairs (seeded) for trained "
                                 "systems", "RATE")
    encoder: str | None = option(None, "the multilingual encoder: a packaged name (multilingual-e5-small), a local "
                                 "directory or a Hugging Face id", "MODEL")
    teacher: str | None = option(None, "the English-side encoder of the dense and distilled systems (default: the "
                                 "encoder)", "MODEL")
    mt_model: str | None = option(None, "a seq2seq translation model (directory or Hugging Face id) instead of the "
                                  "one `bench train mt` trains", "MODEL")
    mt_steps: int | None = option(None, "training steps of the MT model that `bench train mt` trains")
    mt_size: str = option("base", "the size of the MT model that `bench train mt` trains: base (3-layer decoder, full "
                          "softmax, 2,000 steps) or small (2 layers, adaptive softmax, 2,500 steps: 0.45x the "
                          "training time on sw-en, 0.6-0.7x on the smaller ha and yo bitexts; FLORES chrF 0.3 lower "
                          "on sw→en, 0.6 on ha→en, 0.1 on yo→en)", "|".join(MT_SIZES),
                          choices=tuple(MT_SIZES))
    distill_steps: int | None = option(None, "training steps of the distilled students (default: the recipe's "
                                        "budget in epochs of the bitext, with a step cap)")
    rerank: str | None = option(None, "a system whose top --rerank-depth documents the dense systems rescore",
                                "SYSTEM")
    rerank_depth: int = option(100, "how many documents of the --rerank system are rescored")
    hybrid_weight: float | None = option(None, "weight of bm25-psq in the hybrids, in [0, 1] (default: the tuned "
                                         "0.4)", "W")
    max_length: int | None = option(None, "maximum tokens per text for the encoders (default: the model's own)")
    memory_budget: int | None = option(None, "memory the MaxSim systems' token states may take, e.g. 4G or 512M "
                                       "(default: a quarter of RAM); a corpus over it is reranked from the "
                                       "mean-pooled top --rerank-depth instead", "SIZE")
    bm25_k1: float | None = option(None, "BM25's k1, the term-frequency saturation (default 0.9, Anserini's)", "K1")
    bm25_b: float | None = option(None, "BM25's b, the document-length normalisation, in [0, 1] (default 0.4)", "B")
    quantize: str | None = option(None, "quantise the dense systems' encoders: int8 runs their linear layers "
                                  "dynamically quantised (CPU only; cached apart from fp32)", "|".join(QUANTIZE[1:]),
                                  choices=QUANTIZE[1:])

    def __post_init__(self):
        if self.profile not in PROFILES:
            raise BenchError(f"option profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if self.mt_size not in MT_SIZES:
            raise BenchError(f"option mt_size must be one of {', '.join(MT_SIZES)}, not {self.mt_size!r}",
                             "e.g. --mt-size small")
        if not 0.0 <= self.bitext_noise < 1.0:
            raise BenchError(f"option bitext_noise must be in [0, 1), not {self.bitext_noise}")
        for name in ("mt_steps", "distill_steps", "max_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise BenchError(f"option {name} must be a positive integer, not {value}")
        if self.rerank_depth < 1:
            raise BenchError(f"option rerank_depth must be a positive integer, not {self.rerank_depth}")
        if self.hybrid_weight is not None and not 0.0 <= self.hybrid_weight <= 1.0:
            raise BenchError(f"option hybrid_weight must be in [0, 1], not {self.hybrid_weight}")
        if self.bm25_k1 is not None and not 0.0 <= self.bm25_k1 < float("inf"):
            raise BenchError(f"option bm25_k1 must be a finite number >= 0, not {self.bm25_k1}", "e.g. --bm25-k1 1.2")
        if self.bm25_b is not None and not 0.0 <= self.bm25_b <= 1.0:
            raise BenchError(f"option bm25_b must be in [0, 1], not {self.bm25_b}", "e.g. --bm25-b 0.75")
        if self.quantize not in QUANTIZE:
            raise BenchError(f"option quantize must be {' or '.join(QUANTIZE[1:])} or unset, not {self.quantize!r}",
                             f"e.g. --quantize {QUANTIZE[1]}")
        if self.memory_budget is not None:  # a size given as text ("4G") is held in bytes
            object.__setattr__(self, "memory_budget", parse_size("memory_budget", self.memory_budget))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | "RunOptions" | None) -> "RunOptions":
        """Options from a plain mapping (None values mean the default); unknown keys are errors."""
        if isinstance(values, RunOptions):
            return values
        values = dict(values or {})
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise BenchError(f"unknown run option {unknown[0]!r}",
                             did_you_mean(unknown[0], known, "known options: " + ", ".join(known)))
        typed = {name: _coerce(name, known[name].type, value) for name, value in values.items() if value is not None}
        return cls(**typed)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def used(self, names: Iterable[str]) -> dict[str, Any]:
        """The options among ``names`` that differ from their defaults (what a system's spec records)."""
        default = RunOptions()
        return {n: getattr(self, n) for n in names if getattr(self, n) != getattr(default, n)}

    def without(self, *names: str) -> "RunOptions":
        """These options back at their defaults (e.g. a first stage run without the reranking options)."""
        default = RunOptions()
        return replace(self, **{n: getattr(default, n) for n in names})

    def key(self) -> tuple:
        """A hashable identity of the options (runs made under the same options are shared)."""
        return tuple(sorted(self.as_dict().items()))


# What each option does (the help of its flag, and `bench systems`): from the declarations
HELP = {f.name: f.metadata["help"] for f in fields(RunOptions)}


def flag(name: str) -> str:
    """The command-line flag of an option: ``rerank_depth`` -> ``--rerank-depth``."""
    return "--" + name.replace("_", "-")


def unread(options: RunOptions, reads: Iterable[str], ignore: Iterable[str] = ("profile",)) -> list[str]:
    """Options set away from their defaults that none of ``reads`` (the chosen systems' options) reads."""
    read = set(reads) | set(ignore)
    return sorted(n for n in options.used(f.name for f in fields(RunOptions)) if n not in read)


_TYPES = {"str | None": str, "int | None": int, "float | None": float, "str": str, "int": int, "float": float}


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(name: str, value: Any) -> int:
    """A positive number of bytes from ``4G``, ``512M``, ``1.5g``, ``64KiB`` or ``1000000`` (binary units)."""
    match = None if isinstance(value, bool) else _SIZE.match(str(value))
    if match is None or (isinstance(value, float) and value != int(value)):
        raise BenchError(f"option {name} must be a size such as 4G, 512M or a number of bytes, not {value!r}")
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if size < 1:
        raise BenchError(f"option {name} must be a positive size, not {value!r}", "e.g. 4G or 512M")
    return size


_PARSERS = {"memory_budget": parse_size}  # options with their own syntax


def _coerce(name: str, annotation: str, value: Any) -> Any:
    if name in _PARSERS:
        return _PARSERS[name](name, value)
    kind = _TYPES[annotation]
    if isinstance(value, bool) or (kind is not str and isinstance(value, str) and not value.strip()):
        raise BenchError(f"option {name} must be a {kind.__name__}, not {value!r}")
    try:
        coerced = kind(value)
    except (TypeError, ValueError):
        raise BenchError(f"option {name} must be a {kind.__name__}, not {value!r}") from None
    if kind is int and isinstance(value, float) and value != coerced:
        raise BenchError(f"option {name} must be an integer, not {value!r}")
    return coerced
