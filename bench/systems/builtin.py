"""bench's own systems (DESIGN.md §3): one declaration each.

A declaration is a name, a description, its stages (:mod:`bench.systems.stages`) and whether it is in
the ``ci`` profile (every system that runs in minutes on sw-en: the regression check of MAP). How it
runs, the options it reads, its spec, its needs, whether it learns from the bitext or depends on a seed
are all derived from the stages, and so is its place in the report's tables (by family: lexical,
translation, zero-shot, distilled, fusion, ceiling; within a family, the order below, which is also
the order systems run in and are listed by ``bench systems``).
"""

from __future__ import annotations

from bench.systems.registry import declare
from bench.systems.stages import Bm25, Dense, Encoder, Fusion, Human, Nmt, Psq, Raw, Student, Teacher

declare("bm25", "Lucene BM25 on the untranslated query (the floor)", Bm25(Raw()), ci=True)
declare("oracle-bm25", "Lucene BM25 on the human English translation of the query (ceiling)", Bm25(Human()),
        ci=True)
# the vanilla encoder is not aligned with another teacher: it encodes its own document side
declare("mdense", "multilingual encoder, zero-shot, on the raw query (mean pooling)",
        Dense(Raw(), Encoder(), Encoder()), ci=True)
declare("mdense-maxsim", "the same multilingual encoder scored by late interaction (MaxSim over token states)",
        Dense(Raw(), Encoder(), Encoder(), "maxsim"), ci=True)
declare("oracle-dense", "the teacher on the human English translation of the query (ceiling)",
        Dense(Human(), Teacher(), Teacher()), ci=True)
declare("bm25-psq", "BM25 on probabilistic structured queries: IBM Model 1 word translations learned on the "
        "pair's bitext", Bm25(Psq()), ci=True)
declare("bm25-nmt", "Lucene BM25 on the NMT-translated query", Bm25(Nmt()), ci=True)
# the same retrieval as oracle-dense, with machine instead of human translations: passages are shared
declare("nmt-dense", "the NMT pipeline: NMT-translated query, English dense retriever (the OPTICAL teacher)",
        Dense(Nmt(), Teacher(), Teacher()), ci=True)
# one student per recipe, shared by its two scorings
declare("sdistill", "student distilled from the teacher by the sentence-level term alone (mean pooling)",
        Dense(Raw(), Student("sdistill"), Teacher()), ci=True)
declare("sdistill-maxsim", "the sentence-distilled student scored by late interaction (MaxSim)",
        Dense(Raw(), Student("sdistill"), Teacher(), "maxsim"), ci=True)
declare("optical", "OPTICAL: student distilled from the teacher by optimal-transport token alignment (mean pooling)",
        Dense(Raw(), Student("optical"), Teacher()), ci=True)
declare("optical-maxsim", "the OPTICAL student scored by late interaction (MaxSim over token states)",
        Dense(Raw(), Student("optical"), Teacher(), "maxsim"), ci=True)
declare("mdense-hybrid", "zero-shot mdense-maxsim fused with bm25-psq (the reference for optical-hybrid)",
        Fusion("mdense-maxsim"))
declare("optical-hybrid", "optical-maxsim fused with bm25-psq (lexical and distilled evidence)",
        Fusion("optical-maxsim"))
