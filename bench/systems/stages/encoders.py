"""The encoders of a dense retriever, by role: the multilingual encoder (zero-shot), the English-side
teacher, a distilled student (trained on first use), with the models and trainings they need."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from bench.data.pairs import Pair
from bench.errors import BenchError
from bench.infra.store import fingerprint
from bench.systems import builders as b
from bench.systems.context import RunContext
from bench.systems.needs import Need
from bench.systems.options import RunOptions
from bench.systems.stages.settings import (DEFAULT_ENCODER, STUDENT_OPTIONS, Job, encoder_spec, keys, model_needs,
                                           student_config, teacher_spec)


class Role:
    """Which model encodes one side of a dense retriever."""

    spec: dict = {}
    reads: tuple[str, ...] = ()
    zero_shot = False  # the multilingual encoder as it is packaged (what a student starts from)

    def model(self, ctx: RunContext) -> str:
        """The model spec the run encodes with (a student: trained now if not cached)."""
        raise NotImplementedError

    def encodes(self, job: Job):
        """What the encoding needs name as the model: a spec, or a student (:class:`builders.Student`)."""
        raise NotImplementedError

    def identity(self, job: Job) -> tuple:
        raise NotImplementedError

    def needs(self, job: Job) -> list[Need]:
        return []

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return False

    def check(self, pair: Pair) -> None:
        """Refuse a pair this role cannot serve, before anything runs."""


class Encoder(Role):
    """The multilingual encoder, zero-shot (the ``encoder`` option replaces it)."""

    spec = {"encoder": DEFAULT_ENCODER}
    reads = ("encoder",)
    zero_shot = True

    def model_spec(self, options: RunOptions) -> str:
        return encoder_spec(options)

    def model(self, ctx: RunContext) -> str:
        return self.model_spec(ctx.options)

    def encodes(self, job: Job):
        return self.model_spec(job.options)

    def identity(self, job: Job) -> tuple:
        return ("spec", self.model_spec(job.options))

    def needs(self, job: Job) -> list[Need]:
        return model_needs(self.model_spec(job.options))


class Teacher(Encoder):
    """The English-side encoder (the OPTICAL teacher): the ``teacher`` option, else the encoder."""

    spec = {"teacher": DEFAULT_ENCODER}
    reads = ("teacher", "encoder")
    zero_shot = False

    def model_spec(self, options: RunOptions) -> str:
        return teacher_spec(options)


@dataclass(frozen=True)
class Student(Role):
    """The student of a distillation ``recipe`` (:mod:`bench.methods.distill.recipes`), trained on the
    pair's bitext on first use (``bitext_noise``, ``distill_steps``, ``encoder``/``teacher``, the seed)."""

    recipe: str
    reads = STUDENT_OPTIONS

    @property
    def spec(self) -> dict:
        # "encoder": the multilingual encoder the student starts from (the `encoder` option replaces it)
        return {"teacher": DEFAULT_ENCODER, "encoder": DEFAULT_ENCODER, "trained_on": "pair bitext",
                "recipe": self.recipe}

    def check(self, pair: Pair) -> None:
        if "en" not in (pair.query_lang, pair.doc_lang) or pair.query_lang == pair.doc_lang:
            raise BenchError(f"{self.recipe} needs English on exactly one side of the pair, not {pair.name}",
                             "the student is distilled from an English teacher on foreign-English bitext")

    def model(self, ctx: RunContext) -> str:
        from bench.methods.distill.recipes import describe, trained_student, training_summary

        self.check(ctx.pair)
        config = student_config(self.recipe, ctx.options, ctx.pair)
        checkpoint, bitext = trained_student(ctx.pair, config, noise=ctx.options.bitext_noise, seed=ctx.seed)
        ctx.artifacts["bitext"] = bitext.manifest()
        ctx.artifacts["student"] = {"recipe": self.recipe, "config": describe(config), "checkpoint": checkpoint.name,
                                    "training": training_summary(checkpoint)}
        return str(checkpoint)

    def _config(self, job: Job):
        return student_config(self.recipe, job.options, job.pair)

    def encodes(self, job: Job):
        return b.Student(job.ref, self.recipe, self._config(job), float(job.options.bitext_noise), int(job.seed))

    def identity(self, job: Job) -> tuple:
        return ("student", self._student(job).identity)

    def _student(self, job: Job) -> Need:
        config, pair = self._config(job), job.pair
        noise, seed = float(job.options.bitext_noise), int(job.seed)
        models = self._models(job)
        return Need("student", (pair.dataset_id, self.recipe, fingerprint(asdict(config)), noise, seed),
                    f"{self.recipe} student of {pair.name} (seed {seed}{f', noise {noise:g}' if noise else ''})",
                    b.build_student, (job.ref, config, noise, seed), keys(models), gpu=True,
                    shares=("teacher-states", pair.dataset_id, noise, seed, config.teacher, config.teacher_prefix,
                            config.epochs, config.steps, config.batch_size))

    def _models(self, job: Job) -> list[Need]:
        config = self._config(job)
        teacher = model_needs(config.teacher)
        return teacher + [n for n in model_needs(config.student) if n.key not in set(keys(teacher))]

    def needs(self, job: Job) -> list[Need]:
        return [*self._models(job), self._student(job)]

    def learns_from_bitext(self, options: RunOptions) -> bool:
        return True
