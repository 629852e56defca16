"""Differential fuzzing of tracegrad against PyTorch (see docs/fuzzing.md).

    python scripts/fuzz.py --programs 2000 --seed 0 --compiled --second-order --out fuzz_report.json
    python scripts/fuzz.py --programs 200 --known-open-off        # what the CI slice runs
    python scripts/fuzz.py --replay 0 17 --compiled                # program 17 of seed 0, printed

Prints a summary (disagreement classes by kind of mismatch and op, with counts) and one
minimal repro per class; ``--out`` writes the same as JSON.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import pickle
import sys
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's tracegrad and tests.fuzz

from tests.fuzz import campaign, features  # noqa: E402


def _features(args):
    off = set(args.off)
    if not args.second_order:
        off.add("second_order")
    if args.known_open_off:
        off |= set(features.KNOWN_OPEN)
    return features.select(args.on or None, off)


def _finding_json(f):
    return {"class": f.key, "kind": f.kind, "ops": list(f.ops), "count": f.count,
            "modes": sorted(f.modes), "first_program": list(f.seed),
            "mismatches": [str(m) for m in f.mismatches[:6]],
            "repro": f.minimal.render(compiled=any(m.mode != "eager" for m in f.mismatches))}


def _markdown(report):
    findings = sorted(report.findings.values(), key=lambda f: (-f.count, f.key))
    lines = [f"{report.programs} programs ({'eager, compiled and cache hit' if report.compiled else 'eager'}), "
             f"{report.disagreeing} disagree, {len(findings)} classes.", "",
             "| programs | class (kind \\| ops) | where |", "|---:|---|---|"]
    lines += [f"| {f.count} | `{f.key.replace('|', chr(92) + '|')}` | {', '.join(sorted(f.modes))} |"
              for f in findings]
    lines += ["", "One minimal repro per class (inputs, body, tail; `# --` between them):", ""]
    for f in findings:
        lines += [f"**`{f.key}`** ({f.count}): {f.mismatches[0]}", "", "```python",
                  f.minimal.compact(), "```", ""]
    return "\n".join(lines)


def _shard(job, progress=None):
    args, feats, shard = job
    warnings.simplefilter("ignore")
    import torch
    import tracegrad
    max_shrinks = None if args.max_shrinks is None else -(-args.max_shrinks // shard[1])
    if args.shrink_after is not None:
        max_shrinks = 0
    part = f"{args.out}.part{shard[0]}" if args.out else None

    def checkpoint(report):   # what a run cut short leaves: --merge joins these
        with open(part, "wb") as fh:
            pickle.dump(report, fh)
    report = campaign.fuzz(args.programs, args.seed, feats, args.compiled, args.shrink_budget,
                           torch, tracegrad, progress, max_shrinks, shard=shard,
                           checkpoint=checkpoint if part else None)
    if part:
        checkpoint(report)
    return report


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compiled", action="store_true", help="also run under tracegrad.compile")
    ap.add_argument("--second-order", action="store_true", help="allow create_graph and grad of grad")
    ap.add_argument("--on", nargs="*", default=[], help="only these features (default: all)")
    ap.add_argument("--off", nargs="*", default=[], help="switch these features off")
    ap.add_argument("--known-open-off", action="store_true",
                    help="switch off the features in features.KNOWN_OPEN (as the CI slice does)")
    ap.add_argument("--shrink-budget", type=int, default=150, help="candidate runs per shrink")
    ap.add_argument("--max-shrinks", type=int, default=None, help="stop shrinking after this many")
    ap.add_argument("--shrink-after", type=int, default=None, metavar="N",
                    help="shrink no class while running (much faster on a busy machine), then "
                         "the first program of the N most frequent classes")
    ap.add_argument("--jobs", type=int, default=1, help="processes (programs are split among them)")
    ap.add_argument("--out", help="write the report as JSON here")
    ap.add_argument("--replay", nargs=2, type=int, metavar=("SEED", "K"),
                    help="print program K of SEED and its mismatches")
    ap.add_argument("--list-features", action="store_true")
    ap.add_argument("--markdown", action="store_true",
                    help="print the report as a markdown section (for docs/fuzzing.md)")
    ap.add_argument("--merge", nargs="+", metavar="PART",
                    help="print (and --out) the report joined from the .partN files of a --jobs run")
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    if args.list_features:
        for name, what in {**features.FEATURES, **features.CHECKS}.items():
            mark = "  (known open: " + features.KNOWN_OPEN[name] + ")" if name in features.KNOWN_OPEN else ""
            print(f"{name:20s} {what}{mark}")
        return 0
    import torch
    import tracegrad
    feats = _features(args)
    if args.replay:
        from tests.fuzz.generator import generate
        program = generate(campaign.program_seed(*args.replay), feats, torch)
        print(program.render(compiled=args.compiled))
        for m in campaign.check(program, torch, tracegrad, args.compiled, feats):
            print(m)
        return 0

    def progress(k, program, mismatches):
        if (k + 1) % 50 == 0:
            print(f"... {k + 1} programs", file=sys.stderr, flush=True)

    if args.merge:
        parts = []
        for name in args.merge:
            with open(name, "rb") as fh:
                parts.append(pickle.load(fh))
        report = campaign.merge(parts)
    elif args.jobs > 1:
        shards = [(args, feats, (i, args.jobs)) for i in range(args.jobs)]
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            report = campaign.merge(pool.map(_shard, shards))
    else:
        report = _shard((args, feats, (0, 1)), progress)
    if args.shrink_after is not None:
        report = campaign.shrink_findings(report, torch, tracegrad, args.shrink_budget, args.shrink_after)
    if args.markdown:
        print(_markdown(report))
        return 0
    print(report.summary())
    for f in sorted(report.findings.values(), key=lambda f: -f.count):
        print(f"\n=== {f.key}  ({f.count} programs; first: program {f.seed[1]} of seed {f.seed[0]})")
        for m in f.mismatches[:4]:
            print("#", m)
        print(f.minimal.render(compiled=any(m.mode != "eager" for m in f.mismatches)))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"programs": report.programs, "disagreeing": report.disagreeing,
                       "seconds": round(report.seconds, 1), "compiled": report.compiled,
                       "generator_errors": [list(map(str, e)) for e in report.generator_errors],
                       "features": sorted(report.features),
                       "classes": [_finding_json(f) for f in
                                   sorted(report.findings.values(), key=lambda f: -f.count)]},
                      fh, indent=1)
    return 1 if report.findings or report.generator_errors else 0


if __name__ == "__main__":
    sys.exit(main())
