"""nlu_helpers.py -- shared by the held-out evaluations of the demo bot
(tests/e2e/10-nlu-heldout-v*.py): runs `easyflow bot check --eval` on one
tagged set and asserts its figures as floors.

A set is one JSON object a line: {"family", "text", "intent" ("fallback" for
messages the shop must not answer, null for entity-only lines), "entities":
[{"type", "value"}]}. `bot check --eval` prints a table by family (intent
accuracy, fallback precision, out-of-scope, entity recall, repaired, model)
and one summary line, `eval: intent_accuracy A fallback_precision P
entity_recall R`; the floors are checked against those."""

import re

import eftest
from eftest import fail

BOT = str(eftest.REPO / "bots" / "demo.yaml")
NOW = "2026-03-10T12:00:00+03:00"  # a Tuesday, 12:00 Moscow: relative dates are stable
FIGURES = ("intent_accuracy", "fallback_precision", "entity_recall")


def check_heldout(path, min_all, min_family, bot=BOT, now=NOW):
    """Evaluates the bot on the set at path (a str or Path); fails listing
    every figure under its floor. min_all maps some of FIGURES to floors
    (0..1); min_family maps a family to the floor of its intent accuracy."""
    unknown = set(min_all) - set(FIGURES)
    if unknown:
        fail("unknown figures: %s" % ", ".join(sorted(unknown)))
    code, out = eftest.run_bin(["bot", "check", "--eval", str(path), "--now", now, bot],
                               timeout=120)
    if code != 0:
        fail("bot check --eval exited %d: %s" % (code, out[-2000:]))
    # the table by family only: the misses are not printed, so that a
    # held-out set's lines are not read while rules are being written
    table = out[out.find("evaluation:"):]
    print(table[:table.find("misses:")] if "misses:" in table else table)
    m = re.search(r"^eval: intent_accuracy ([\d.]+) fallback_precision ([\d.]+) "
                  r"entity_recall ([\d.]+)$", out, re.M)
    if not m:
        fail("no eval: line in %s" % out[-2000:])
    got = dict(zip(FIGURES, map(float, m.groups())))
    problems = ["%s %.4f < %.3f" % (k, got[k], v) for k, v in min_all.items()
                if got[k] + 1e-9 < v]
    for fam, floor in min_family.items():
        fm = re.search(r"^%s\s+([\d.]+)%%" % re.escape(fam), out, re.M)
        if not fm:
            problems.append("family %s missing from the report" % fam)
        elif float(fm.group(1)) / 100 + 1e-9 < floor:
            problems.append("family %s: intent accuracy %s%% < %.1f%%"
                            % (fam, fm.group(1), floor * 100))
    if problems:
        fail("\n".join(problems))
    return got
