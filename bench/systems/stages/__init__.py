"""The stages a built-in system is declared with, each as data that knows how to run and what it builds.

A system is a retriever over a query side (DESIGN.md §2: ``[translate] ► first stage ► [rerank]``):

- **query sides**: :class:`Raw` (the query as asked), :class:`Human` (its human English translation),
  :class:`Psq` (probabilistic structured queries from an IBM Model 1 table of the pair's bitext),
  :class:`Nmt` (machine-translated by the model ``bench train mt`` trains, or an ``mt_model``);
- **encoders** of a dense retriever, by role: :class:`Encoder` (the multilingual encoder, zero-shot),
  :class:`Teacher` (the English-side encoder), :class:`Student` (a distilled student of a recipe);
- **retrievers**: :class:`Bm25`, :class:`Dense` (a foreign-side and an English-side encoder, a
  scoring), :class:`Fusion` (other systems' runs fused).

Every stage states its identity (``spec``), the run options it reads (``reads``) and its facts (learns
from the bitext, trains a model, needs translated queries), and has two faces computed from the same
settings: ``run``/``texts`` (what a ``bench run`` does, given a :class:`~bench.systems.context.RunContext`)
and ``needs`` (the cached artifacts that run builds, as :class:`~bench.systems.needs.Need` tasks of the
grid, given a :class:`Job`). The settings (:func:`encoder_spec`, :func:`student_config`,
:func:`mt_config`, the tuned constants) are declared once in :mod:`.settings` and read by both faces.
One module a concept: :mod:`.settings`, :mod:`.queries`, :mod:`.encoders`, :mod:`.retrievers`.
"""

from bench.systems.stages.encoders import Encoder, Role, Student, Teacher
from bench.systems.stages.queries import Human, Nmt, Psq, QuerySide, Raw
from bench.systems.stages.retrievers import Bm25, Dense, Fusion, OverQueries, Retriever, component
from bench.systems.stages.settings import (CI_DISTILL_STEPS, CI_MT_STEPS, DEFAULT_ENCODER, HYBRID_PSQ_WEIGHT,
                                           NMT_DECODE, PSQ_IBM1, PSQ_QUERY, Job, encoder_spec, mt_config,
                                           student_config, teacher_spec)

__all__ = ["Bm25", "CI_DISTILL_STEPS", "CI_MT_STEPS", "DEFAULT_ENCODER", "Dense", "Encoder", "Fusion",
           "HYBRID_PSQ_WEIGHT", "Human", "Job", "NMT_DECODE", "Nmt", "OverQueries", "PSQ_IBM1", "PSQ_QUERY", "Psq",
           "QuerySide", "Raw", "Retriever", "Role", "Student", "Teacher", "component", "encoder_spec", "mt_config",
           "student_config", "teacher_spec"]
