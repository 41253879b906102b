"""Distillation of a multilingual student from an English teacher on bitext (DESIGN.md §4).

- :mod:`bench.methods.distill.sinkhorn`: batched, masked, log-domain Sinkhorn (balanced or unbalanced);
- :mod:`bench.methods.distill.optical`: the OT cost and loss, token masks, IDF marginals;
- :mod:`bench.methods.distill.sentence`: the sentence-level term (the ``sdistill`` ablation);
- :mod:`bench.methods.distill.teacher_cache`: the frozen teacher's states of the bitext, computed once and cached;
- :mod:`bench.methods.distill.prefix_cache`: the student's frozen lower layers' states, cached the same way
  (what the two caches share: :mod:`bench.methods.distill.state_cache`);
- :mod:`bench.methods.distill.trainer`: the cached, resumable, deterministic trainer, on any device;
- :mod:`bench.methods.distill.checkpoint`: a finished student loaded back (on the CPU).

Importing this package imports torch; import it only where training or a trained student is needed.
"""

from bench.methods.distill.optical import cosine_cost, ot_loss
from bench.methods.distill.sentence import mean_pool, sentence_loss
from bench.methods.distill.sinkhorn import sinkhorn
from bench.methods.distill.checkpoint import Student, load_student, student_ref
from bench.methods.distill.trainer import Net, OpticalConfig, checkpoint_dir, train, train_specs
from bench.methods.distill.recipes import SDISTILL  # defined once, with the budget the systems use

__all__ = [
    "SDISTILL", "Net", "OpticalConfig", "Student", "checkpoint_dir", "cosine_cost", "load_student", "mean_pool",
    "ot_loss", "sentence_loss", "sinkhorn", "student_ref", "train", "train_specs",
]
