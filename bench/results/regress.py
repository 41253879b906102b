"""The regression check: expected scores per (pair, system, measure) in a YAML file, and verdicts.

The file (validated against ``regress_schema.json``; unknown or repeated keys, NaN and infinite numbers
are errors naming the file and line)::

    version: 1
    tolerance: 0.005            # the default, absolute
    expected:
      sw-en:
        bm25:
          AP: 0.4123
          nDCG@10: {score: 0.5012, tolerance: 0.01}   # a row may override the tolerance

Measures are ir_measures canonical names. The observed score is the mean over the judged queries of
the run's ``perquery.csv`` (what every report shows). A system's row is checked against its default
cell, ``runs/<pair>/<system>/`` (seed 0, no bitext noise); other seeds and noise rates are ignored
unless the file names one by its run name (``optical+seed1``). With ``d = observed − expected``:

- **OK**: ``|d| <= EPSILON`` (1e-4; :func:`update` writes scores to 4 decimals, so a run that
  reproduces exactly is always within 5e-5);
- **OKISH**: better than expected by more than EPSILON (any amount: worth an ``--update``), or worse by
  at most the tolerance;
- **FAIL**: worse by more than the tolerance, or no complete run, or the run lacks the measure.
- **SKIP**: no run directory of the (pair, system) under the runs folder, when :func:`check` was not
  told which systems to check (a partial run is checked for what it ran; an interrupted or damaged
  run is still a FAIL; ``systems=[...]`` makes a missing run of those systems a FAIL).

:func:`exit_code` is 1 when any verdict is FAIL, and when no row was checked (none, or all SKIP), else 0.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple

import yaml

from bench.errors import BenchError
from bench.infra.store import atomic_file
from bench.infra.strict import load_yaml, utf8_text, where
from bench.results.scoring import means

log = logging.getLogger(__name__)

EPSILON = 1e-4
DEFAULT_TOLERANCE = 0.005
DIGITS = 4
SCHEMA_PATH = Path(__file__).with_name("regress_schema.json")
INVALID = "invalid YAML"  # how an error calls a file that cannot be read as YAML
OK, OKISH, FAIL, SKIP = "OK", "OKISH", "FAIL", "SKIP"
HEADER = f"""\
# Expected scores for `bench check`: pair -> system -> ir_measures measure -> score, or
# {{score: S, tolerance: T}} to override the default tolerance for one row. With d = observed - expected:
# OK when |d| <= {EPSILON:g}; OKISH when better, or worse by at most the tolerance; FAIL when worse by more
# than the tolerance or the run is missing. `bench check --update` rewrites the scores from the runs
# (keeping tolerances and the measures listed per system; comments are not kept): review the diff.
"""


@dataclass(frozen=True)
class Verdict:
    pair: str
    system: str
    measure: str
    expected: float
    tolerance: float
    observed: float | None
    status: str  # OK | OKISH | FAIL | SKIP
    reason: str = ""

    @property
    def delta(self) -> float | None:
        return None if self.observed is None else self.observed - self.expected

    def line(self) -> str:
        observed = "missing" if self.observed is None else f"{self.observed:.4f}"
        delta = "" if self.delta is None else f" ({self.delta:+.4f})"
        text = (f"{self.status:<5}  {self.pair}  {self.system}  {self.measure}: expected {self.expected:.4f}, "
                f"observed {observed}{delta}")
        return text + (f"  [{self.reason}]" if self.reason else "")


class Change(NamedTuple):
    pair: str
    system: str
    measure: str
    old: float | None
    new: float


def verdict(expected: float, observed: float | None, tolerance: float) -> str:
    """OK, OKISH or FAIL for one row (see the module docstring)."""
    if observed is None or math.isnan(observed):
        return FAIL
    d = observed - expected
    if abs(d) <= EPSILON + 1e-12:
        return OK
    if d > 0 or -d <= tolerance + 1e-12:
        return OKISH
    return FAIL


def exit_code(verdicts: Iterable[Verdict]) -> int:
    verdicts = list(verdicts)
    return 1 if all(v.status == SKIP for v in verdicts) or any(v.status == FAIL for v in verdicts) else 0


def skipped_line(verdicts: list[Verdict]) -> str | None:
    """One line for every SKIP verdict (they would bury the checked rows): how many, of which systems."""
    skipped = [v for v in verdicts if v.status == SKIP]
    if not skipped:
        return None
    systems = list(dict.fromkeys(f"{v.pair}/{v.system}" for v in skipped))
    why = list(dict.fromkeys(v.reason.split(":")[0] for v in skipped))
    return (f"SKIP   {len(skipped)} rows of {len(systems)} systems ({', '.join(systems)}): "
            f"{why[0] if len(why) == 1 else 'no run, or a run made otherwise'}")


def summary(verdicts: list[Verdict]) -> str:
    counts = {s: sum(v.status == s for v in verdicts) for s in (OK, OKISH, FAIL, SKIP)}
    text = ", ".join(f"{n} {s}" for s, n in counts.items() if n or s != SKIP)
    return text + ("; nothing was checked" if all(v.status == SKIP for v in verdicts) else "")


# --- the file -------------------------------------------------------------------------------------


def _schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def _non_finite(node, path: Path, keys: tuple = ()) -> str | None:
    """``path[:line]: keys: value`` of the first NaN or infinity in ``node`` (JSON Schema cannot refuse them:
    every comparison with NaN is false), else None."""
    if not isinstance(node, dict):
        return None
    for key, value in node.items():
        if isinstance(value, float) and not math.isfinite(value):
            return f"{where(path, node, key)}: {'/'.join(map(str, (*keys, key)))}: {value}"
        found = _non_finite(value, path, (*keys, key))
        if found:
            return found
    return None


def validate(data, path: Path) -> dict:
    """Check ``data`` against the schema and the measure names; a one-line BenchError names the problem."""
    import jsonschema

    hint = "fix the file, or rewrite it with `bench check --update`"
    found = _non_finite(data, path)
    if found:
        raise BenchError(f"{found} is not a finite number", hint)
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        error = jsonschema.exceptions.best_match(errors)
        where = "/".join(str(p) for p in error.absolute_path) or "top level"
        message = error.message
        if error.validator == "oneOf":  # a row that is neither a number nor {score, tolerance}
            message = f"{error.instance!r} is neither a score nor {{score, tolerance}} with nothing else"
        raise BenchError(f"{path}: {where}: {message}", hint)
    import ir_measures

    for pair, systems in data["expected"].items():
        for system, measures in systems.items():
            for measure in measures:
                try:
                    canonical = str(ir_measures.parse_measure(measure))
                except (ValueError, NameError, SyntaxError):
                    raise BenchError(f"{path}: expected/{pair}/{system}: unknown measure {measure!r}",
                                     "use ir_measures names such as AP, nDCG@10, R@100") from None
                if canonical != measure:
                    raise BenchError(f"{path}: expected/{pair}/{system}: write {measure!r} as {canonical!r}",
                                     "use the canonical ir_measures name") from None
    return data


def load_expected(path: Path) -> dict:
    """The parsed, validated file."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise BenchError(f"no expected scores at {path}", "create them with `bench check --update`") from None
    except OSError as exc:
        raise BenchError(f"cannot read {path}: {exc.strerror or exc}",
                         "give the expected scores file with --expected") from None
    data = load_yaml(utf8_text(path, raw), path, "fix the file", invalid=INVALID)
    if data is None:
        raise BenchError(f"{path}: the file is empty", "create it with `bench check --update`")
    return validate(data, path)


def rows(data: dict) -> list[tuple[str, str, str, float, float]]:
    """(pair, system, measure, expected, tolerance) for every row of a loaded file."""
    out = []
    for pair, systems in data["expected"].items():
        for system, measures in systems.items():
            for measure, value in measures.items():
                if isinstance(value, dict):
                    tolerance = float(value.get("tolerance", data["tolerance"]))
                    out.append((pair, system, measure, float(value["score"]), tolerance))
                else:
                    out.append((pair, system, measure, float(value), float(data["tolerance"])))
    return out


def observed_runs(runs_root: Path, pairs: Iterable[str] | None = None, variants: bool = False) -> dict:
    """(pair, run name) → the complete stored run, for every default-cell run (of ``pairs``), whose run name
    is its system's; ``variants`` adds the other seeds and noise rates under their run names
    (``optical+seed1``)."""
    from bench.results.runs import load_runs

    runs = load_runs(Path(runs_root)) if pairs is None else [r for p in pairs for r in load_runs(Path(runs_root), p)]
    return {(r.pair, r.system if r.is_default else r.name): r for r in runs if variants or r.is_default}


def observed_scores(runs_root: Path, pairs: Iterable[str] | None = None,
                    variants: bool = False) -> dict[tuple[str, str], dict[str, float]]:
    """(pair, run name) → measure → mean over queries, of :func:`observed_runs`."""
    return {key: means(run.per_query) for key, run in observed_runs(runs_root, pairs, variants).items()}


def made_with(run) -> dict:
    """What a row of the expected scores records of the run it came from: its profile and spec (as JSON
    reads them back), so :func:`check` never compares a run made otherwise with those scores."""
    manifest = run.manifest
    profile = (manifest.get("options") or {}).get("profile") or "full"
    return {"profile": str(profile), "spec": json.loads(json.dumps(manifest.get("spec") or {}, sort_keys=True))}


def _made_otherwise(recorded: dict | None, run) -> str:
    """Why ``run`` was not made as ``recorded`` says the expected scores were ('' when it was)."""
    if not recorded or run is None:
        return ""
    actual = made_with(run)
    if actual["profile"] != recorded["profile"]:
        return f"the run was made with profile {actual['profile']}, the expected scores with {recorded['profile']}"
    if actual["spec"] != recorded["spec"]:
        differ = sorted(k for k in {*actual["spec"], *recorded["spec"]}
                        if actual["spec"].get(k) != recorded["spec"].get(k))
        return f"the run was made with another spec ({', '.join(differ)}) than the expected scores"
    return ""


# --- check and update -----------------------------------------------------------------------------


def check(expected_path: Path, runs_root: Path, systems: list[str] | None = None, *, known_pairs=None,
          known_systems=None) -> list[Verdict]:
    """One verdict per row of the expected scores (of ``systems`` only, if given), in file order.

    ``known_pairs``/``known_systems`` (registries: ``in`` and ``suggestion``; the caller's) tell a typo in
    the file from a run that is missing: see :func:`check_names`."""
    data = load_expected(expected_path)
    table = rows(data)
    if not table:
        raise BenchError(f"{expected_path} lists no expected scores", "fill it with `bench check --update`")
    if systems is not None:
        listed = {row[1] for row in table}
        unknown = [s for s in systems if s not in listed]
        if not systems or unknown:
            raise BenchError(f"{expected_path} has no expected scores for system {(unknown or [''])[0]!r}",
                             "it has: " + ", ".join(sorted(listed)))
        table = [row for row in table if row[1] in systems]
    if known_pairs is not None and known_systems is not None:
        check_names(expected_path, runs_root, table, known_pairs, known_systems)
    stored = observed_runs(runs_root, sorted({row[0] for row in table}), variants=True)
    observed = {key: means(run.per_query) for key, run in stored.items()}
    recorded = data.get("made_with", {})
    verdicts = []
    for pair, system, measure, expected, tolerance in table:
        run = observed.get((pair, system))
        if run is None and systems is None and not (Path(runs_root) / pair / system).exists():
            verdicts.append(Verdict(pair, system, measure, expected, tolerance, None, SKIP,
                                    f"no run in {Path(runs_root) / pair / system}: not checked"))
            continue
        otherwise = _made_otherwise(recorded.get(pair, {}).get(system), stored.get((pair, system)))
        if otherwise:  # another configuration's numbers: never compared with these
            verdicts.append(Verdict(pair, system, measure, expected, tolerance, None,
                                    SKIP if systems is None else FAIL, f"{otherwise}: not compared"))
            continue
        if run is None:
            value, reason = None, f"no complete run in {Path(runs_root) / pair / system}"
        elif measure not in run:
            value, reason = None, f"the run has no {measure} (it has {', '.join(run)})"
        else:
            value, reason = run[measure], ""
        status = verdict(expected, value, tolerance)
        if status == OKISH and value is not None and value > expected:
            reason = "better than expected: `bench check --update` to raise the bar"
        elif status == FAIL and not reason:
            reason = f"worse than expected by more than {tolerance:g}"
        verdicts.append(Verdict(pair, system, measure, expected, tolerance, value, status, reason))
    return verdicts


def check_names(expected_path: Path, runs_root: Path, table, pairs, systems) -> None:
    """A pair or system of the file that is neither known (``pairs``, ``systems``: registries) nor stored
    under ``runs_root`` is a mistake in the file (a typo), not a missing run: an error naming it and the
    closest names."""
    for pair, system, *_ in table:
        if pair not in pairs and not (Path(runs_root) / pair).is_dir():
            raise BenchError(f"{expected_path}: expected/{pair}: unknown pair {pair!r}, and no runs of it under "
                             f"{runs_root}",
                             pairs.suggestion(pair))
        if system not in systems and not (Path(runs_root) / pair / system).is_dir():
            raise BenchError(f"{expected_path}: expected/{pair}/{system}: unknown system {system!r}, and no run of it "
                             f"under {runs_root}", systems.suggestion(system) + " (an external run counts once stored)")


def update(expected_path: Path, runs_root: Path, pairs: Iterable[str] | None = None,
           tolerance: float | None = None) -> list[Change]:
    """Rewrite the expected scores of ``pairs`` (default: every pair with a complete run) from the runs.

    A (pair, system) already in the file keeps its measures and per-row tolerances; a new one gets every
    measure of its run. Rows whose run (or measure) is gone are kept, with a warning: remove them by
    hand. Other pairs are left as they are. ``tolerance`` sets the file's default (else kept, or
    :data:`DEFAULT_TOLERANCE` for a new file). Returns the rows whose score changed or appeared.
    """
    from bench.results.report import MEASURE_ORDER, ordered, system_order
    from bench.results.runs import load_runs

    expected_path = Path(expected_path)
    if expected_path.exists():
        data = load_expected(expected_path)
    else:
        data = {"version": 1, "tolerance": DEFAULT_TOLERANCE, "expected": {}}
    if tolerance is not None:
        data["tolerance"] = tolerance
    defaults = observed_scores(runs_root, pairs)  # a new row comes from a default cell only
    stored = observed_runs(runs_root, pairs, variants=True)  # a variant already in the file is updated
    observed = {key: means(run.per_query) for key, run in stored.items()}
    data.setdefault("made_with", {})
    selected = sorted(set(pairs) if pairs is not None else {p for p, _ in defaults})
    changes = []
    for pair in selected:
        current = data["expected"].get(pair, {})
        systems = ordered([*current, *(s for p, s in defaults if p == pair)], system_order(load_runs(runs_root, pair)))
        if not any((pair, s) in observed for s in systems):
            log.warning("no complete run of %s under %s: its expected scores are unchanged", pair, runs_root)
            continue
        new_pair = {}
        for system in systems:
            old = current.get(system, {})
            run = observed.get((pair, system))
            if run is None:
                log.warning("no complete run of %s on %s: keeping its expected scores", system, pair)
                new_pair[system] = old
                continue
            entries = {}
            for measure in (list(old) if old else ordered(run, MEASURE_ORDER)):
                if measure not in run:
                    log.warning("%s on %s has no %s: keeping its expected score", system, pair, measure)
                    entries[measure] = old[measure]
                    continue
                score = round(run[measure], DIGITS)
                previous = old.get(measure)
                before = previous["score"] if isinstance(previous, dict) else previous
                if isinstance(previous, dict) and "tolerance" in previous:
                    entries[measure] = {"score": score, "tolerance": previous["tolerance"]}
                else:
                    entries[measure] = score
                if before is None or abs(before - score) > 10 ** -(DIGITS + 2):
                    changes.append(Change(pair, system, measure, before, score))
            new_pair[system] = entries
            if stored[(pair, system)].manifest.get("spec"):  # a run that records how it was made
                data["made_with"].setdefault(pair, {})[system] = made_with(stored[(pair, system)])
        data["expected"][pair] = new_pair
    data["expected"] = {p: data["expected"][p] for p in sorted(data["expected"])}
    text = dump(data)
    validate(load_yaml(text, expected_path, "a bug to report", invalid=INVALID), expected_path)
    with atomic_file(expected_path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("wrote %s (%d changed rows)", expected_path, len(changes))
    return changes


def _key(key: str) -> str:
    """``key`` as a YAML mapping key: plain when it reads back as the same string, else quoted."""
    try:
        plain = yaml.safe_load(f"{key}: 0") == {key: 0}
    except yaml.YAMLError:
        plain = False
    return key if plain else json.dumps(key)


def _number(x: float) -> str:
    return f"{x:.{DIGITS}f}" if isinstance(x, float) and round(x, DIGITS) == x else repr(x)


def dump(data: dict) -> str:
    """The file's text: a fixed layout and order, so an update shows as a small diff."""
    lines = [HEADER.rstrip("\n"), "version: 1", f"tolerance: {data['tolerance']!r}", "expected:"]
    for pair, systems in data["expected"].items():
        lines.append(f"  {_key(pair)}:")
        for system, measures in systems.items():
            lines.append(f"    {_key(system)}:")
            for measure, value in measures.items():
                if isinstance(value, dict):
                    inner = ", ".join(f"{k}: {_number(v) if k == 'score' else repr(v)}" for k, v in value.items())
                    lines.append(f"      {_key(measure)}: {{{inner}}}")
                else:
                    lines.append(f"      {_key(measure)}: {_number(value)}")
    if not data["expected"]:
        lines[-1] = "expected: {}"
    made = {p: s for p, s in (data.get("made_with") or {}).items() if s}
    if made:
        lines.append("# the profile and spec of the run each system's scores came from (bench check --update)")
        lines.append("made_with:")
        for pair in sorted(made):
            lines.append(f"  {_key(pair)}:")
            for system, record in made[pair].items():
                lines.append(f"    {_key(system)}: {json.dumps(record, sort_keys=True)}")
    return "\n".join(lines) + "\n"
