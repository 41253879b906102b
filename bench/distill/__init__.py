"""Distillation of a multilingual student from an English teacher on bitext (DESIGN.md §4).

- :mod:`bench.distill.sinkhorn`: batched, masked, log-domain Sinkhorn (balanced or unbalanced);
- :mod:`bench.distill.optical`: the OT cost and loss, token masks, IDF marginals;
- :mod:`bench.distill.sentence`: the sentence-level term (the ``sdistill`` ablation);
- :mod:`bench.distill.teacher_cache`: the frozen teacher's states of the bitext, computed once and cached;
- :mod:`bench.distill.trainer`: the cached, resumable, deterministic trainer, on any device;
- :mod:`bench.distill.checkpoint`: a finished student loaded back (on the CPU).

Importing this package imports torch; import it only where training or a trained student is needed.
"""

from bench.distill.optical import cosine_cost, ot_loss
from bench.distill.sentence import mean_pool, sentence_loss
from bench.distill.sinkhorn import sinkhorn
from bench.distill.checkpoint import Student, load_student, student_ref
from bench.distill.trainer import Net, OpticalConfig, checkpoint_dir, train, train_specs
from bench.distill.recipes import SDISTILL  # defined once, with the budget the systems use

__all__ = [
    "SDISTILL", "Net", "OpticalConfig", "Student", "checkpoint_dir", "cosine_cost", "load_student", "mean_pool",
    "ot_loss", "sentence_loss", "sinkhorn", "student_ref", "train", "train_specs",
]
