"""Run many programs, compare each with torch, shrink each disagreement and class it.

A *class* is (kind of mismatch, op labels of the minimal program's body): programs that
shrink to the same class are one bug as far as routing goes; the report keeps a count and
one minimal repro per class.
"""
from __future__ import annotations

import dataclasses
import time

from .compare import compare
from .features import select
from .generator import generate
from .runner import run
from .shrink import shrink

__all__ = ["check", "fuzz", "merge", "shrink_findings", "Finding", "Report", "program_seed"]


def program_seed(seed, k):
    """The seed of program ``k`` of a run with ``seed`` (so one program can be rerun alone)."""
    return (int(seed), int(k))


def check(program, torch, tg, compiled=True, checks=None):
    """All mismatches of ``program``: tracegrad eager (and compiled, cache hit) vs torch."""
    checks = select() if checks is None else checks
    ref = run(program, torch, "eager")[0]
    out = []
    for mode in ("eager", "compiled") if compiled else ("eager",):
        for obs in run(program, tg, mode):
            out += compare(program, ref, obs, checks)
    return out


def _family(kind):
    """Error kinds shrink into one another (dropping the step where torch raised turns
    "error:type" into "error:raised"); every other kind is its own family."""
    return "error" if kind.startswith("error:") and kind != "error:jax" else kind


# a program is classed by its most serious mismatch: silent wrong numbers first, then
# errors, then metadata; names and version counters last
_SEVERITY = ["value", "grad", "shape", "dtype", "grad:dtype", "grad:none", "error:not-raised",
             "error:raised", "error:type", "error:jax", "error:where", "missing", "requires_grad",
             "is_leaf", "grad_fn", "grad_fn_name", "grad_fn_class", "version"]


def _severity(m):
    kind = m.kind.removeprefix("backward:")
    kind = "grad" if m.kind == "backward:value" else kind
    return (_SEVERITY.index(kind) if kind in _SEVERITY else len(_SEVERITY), m.mode != "eager")


def most_serious(mismatches):
    return sorted(mismatches, key=_severity)


def _signature(m):
    return (m.mode, _family(m.kind), m.op)


@dataclasses.dataclass
class Finding:
    """One class of disagreement."""
    kind: str
    ops: tuple
    count: int
    modes: set
    minimal: object         # the minimal Program
    mismatches: list        # its mismatches
    seed: tuple             # the first program of the class

    @property
    def key(self):
        return f"{self.kind} | {' + '.join(self.ops) or '(no body)'}"


@dataclasses.dataclass
class Report:
    programs: int
    disagreeing: int
    findings: dict
    seconds: float
    features: frozenset
    compiled: bool
    generator_errors: list


    def summary(self):
        lines = [f"{self.programs} programs ({'eager + compiled' if self.compiled else 'eager'}), "
                 f"{self.disagreeing} disagree, {len(self.findings)} classes, {self.seconds:.0f} s"]
        for seed, what in self.generator_errors:
            lines.append(f"  generator error on program {seed}: {what}")
        for f in sorted(self.findings.values(), key=lambda f: -f.count):
            lines.append(f"  {f.count:5d}  {f.key}   [{', '.join(sorted(f.modes))}]")
        return "\n".join(lines)


def _class_of(program, mismatches):
    """(kind, ops): the op of the step that made the first mismatching tensor, or (for a
    gradient or an input changed through a view) the ops of the minimal program's body."""
    first = mismatches[0]
    if first.op not in ("input", "backward"):
        return first.kind, (first.op,)
    return first.kind, tuple(dict.fromkeys(s.label for s in program.body))


def fuzz(programs, seed=0, features=None, compiled=True, shrink_budget=150, torch=None, tg=None,
         progress=None, max_shrinks=None, compiled_every=1, shard=(0, 1), checkpoint=None):
    """Run ``programs`` programs; return a ``Report``. With ``compiled``, every
    ``compiled_every``-th program also runs under ``tracegrad.compile`` (a trace costs far
    more than an eager run). ``shard=(i, n)`` runs only the programs ``k`` with ``k % n == i``
    (``merge`` joins the shards' reports). ``progress(k, program, mismatches)`` is called
    after each program, ``checkpoint(report so far)`` after every 25."""
    if torch is None:
        import torch  # (the oracle, imported only when fuzzing)
    if tg is None:
        import tracegrad as tg
    feats = select() if features is None else features
    findings = {}
    seen = {}   # (mode, kind, op of the first mismatch, body labels) -> finding key
    disagreeing = shrinks = 0
    generator_errors = []
    start = time.time()
    done = 0
    for k in range(shard[0], programs, shard[1]):
        done += 1
        if checkpoint is not None and done % 25 == 0:
            checkpoint(Report(done - 1, disagreeing, findings, time.time() - start, feats, compiled,
                              generator_errors))
        try:
            program = generate(program_seed(seed, k), feats, torch)
        except Exception as e:  # noqa: BLE001 - a generator bug: reported, never hidden
            generator_errors.append((program_seed(seed, k), f"{type(e).__name__}: {e}"))
            continue
        run_compiled = compiled and k % compiled_every == 0
        try:
            mismatches = check(program, torch, tg, run_compiled, feats)
        except Exception as e:  # noqa: BLE001 - a harness bug: reported, never hidden
            generator_errors.append((program_seed(seed, k), f"harness: {type(e).__name__}: {e}"))
            continue
        if progress is not None:
            progress(k, program, mismatches)
        if not mismatches:
            continue
        disagreeing += 1
        mismatches = most_serious(mismatches)
        first = mismatches[0]
        raw = (first.mode, first.kind, first.op)
        if first.op in ("input", "backward"):  # the culprit is somewhere in the body
            raw += tuple(program.labels())
        key = seen.get(raw)
        if key is None:
            minimal, ms = program, mismatches
            if max_shrinks is None or shrinks < max_shrinks:
                shrinks += 1
                want = _signature(first)
                run_compiled = run_compiled and first.mode != "eager"

                def still(c, want=want, run_compiled=run_compiled):
                    return any(_signature(m) == want for m in check(c, torch, tg, run_compiled, feats))
                minimal = shrink(program, still, shrink_budget)
                ms = most_serious([m for m in check(minimal, torch, tg, run_compiled, feats)
                                   if _signature(m) == want])
                ms = ms or mismatches
            kind, ops = _class_of(minimal, ms)
            f = Finding(kind, ops, 0, set(), minimal, ms, program.seed)
            key = seen[raw] = f.key
            if key not in findings:
                findings[key] = f
            elif len(program.body) and _size(minimal) < _size(findings[key].minimal):
                findings[key].minimal, findings[key].mismatches = minimal, ms
        findings[key].count += 1
        findings[key].modes |= {m.mode for m in mismatches}
    return Report(len(range(shard[0], programs, shard[1])), disagreeing, findings,
                  time.time() - start, feats, compiled, generator_errors)


def shrink_findings(report, torch, tg, budget=40, limit=None):
    """Shrink each class's first program (the run kept it unshrunk, e.g. with max_shrinks=0)
    and class it again by its minimal program; classes that meet are joined."""
    out = {}
    for n, f in enumerate(sorted(report.findings.values(), key=lambda f: -f.count)):
        if limit is None or n < limit:
            program = generate(f.seed, report.features, torch)
            first = f.mismatches[0]
            want = _signature(first)
            run_compiled = report.compiled and first.mode != "eager"

            def still(c, want=want, run_compiled=run_compiled):
                return any(_signature(m) == want
                           for m in check(c, torch, tg, run_compiled, report.features))
            minimal = shrink(program, still, budget)
            ms = most_serious([m for m in check(minimal, torch, tg, run_compiled, report.features)
                               if _signature(m) == want]) or f.mismatches
            kind, ops = _class_of(minimal, ms)
            f = dataclasses.replace(f, kind=kind, ops=ops, minimal=minimal, mismatches=ms,
                                    modes=set(f.modes))
        have = out.get(f.key)
        if have is None:
            out[f.key] = f
        else:
            have.count += f.count
            have.modes |= f.modes
            have.seed = min(have.seed, f.seed)
    return dataclasses.replace(report, findings=out)


def merge(reports):
    """One report from the reports of the shards of a run."""
    first = reports[0]
    findings = {}
    for r in reports:
        for key, f in r.findings.items():
            have = findings.get(key)
            if have is None:
                findings[key] = dataclasses.replace(f, modes=set(f.modes))
                continue
            have.count += f.count
            have.modes |= f.modes
            if _size(f.minimal) < _size(have.minimal):
                have.minimal, have.mismatches = f.minimal, f.mismatches
            have.seed = min(have.seed, f.seed)
    return Report(sum(r.programs for r in reports), sum(r.disagreeing for r in reports), findings,
                  max(r.seconds for r in reports), first.features, first.compiled,
                  [e for r in reports for e in r.generator_errors])


def _size(program):
    return (len(program.body), sum(i.data.size for i in program.inputs), len(program.inputs))
