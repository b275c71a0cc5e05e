"""10-nlu-heldout-v3: the demo bot against a third held-out set
(tests/e2e/data/nlu_heldout_v3.jsonl, 244 customer messages written and
committed before the changes it measures; no rule, example or setting was
written from its lines, only its figures were read; rules may be written
against nlu_dev_v2.jsonl). Each line is
tagged with its family: typo, layout (Latin letters typed on ЙЦУКЕН),
translit, situation (no keyword), long (voice-style), out_of_scope (other
businesses, near-misses: must fall back) and entity. `easyflow bot check
--eval` reports intent accuracy, fallback precision (answered messages that
deserved an answer) and entity recall by family.

The floors below are the figures reached so far (docs/nlu-evaluation.md), so
they cannot silently regress; raise them as the matcher improves. The issue's
targets are 97 % / 95 % / 99 %."""

import re

import eftest
from eftest import fail

DATA = str(eftest.HERE / "data" / "nlu_heldout_v3.jsonl")
BOT = str(eftest.REPO / "bots" / "demo.yaml")
NOW = "2026-03-10T12:00:00+03:00"

MIN_ALL = {"intent_accuracy": 0.93, "fallback_precision": 0.97, "entity_recall": 0.96}
MIN_FAMILY_ACCURACY = {"typo": 0.97, "layout": 1.0, "translit": 0.96, "long": 0.90,
                       "situation": 0.90, "out_of_scope": 0.90}


def test_heldout_v3_by_family():
    code, out = eftest.run_bin(["bot", "check", "--eval", DATA, "--now", NOW, BOT], timeout=120)
    if code != 0:
        fail("bot check --eval exited %d: %s" % (code, out[-2000:]))
    print(out[out.find("evaluation:"):])
    m = re.search(r"^eval: intent_accuracy ([\d.]+) fallback_precision ([\d.]+) "
                  r"entity_recall ([\d.]+)$", out, re.M)
    if not m:
        fail("no eval: line in %s" % out[-2000:])
    got = dict(zip(("intent_accuracy", "fallback_precision", "entity_recall"),
                   map(float, m.groups())))
    problems = ["%s %.4f < %.3f" % (k, got[k], v) for k, v in MIN_ALL.items() if got[k] < v]
    for fam, floor in MIN_FAMILY_ACCURACY.items():
        fm = re.search(r"^%s\s+([\d.]+)%%" % re.escape(fam), out, re.M)
        if not fm:
            problems.append("family %s missing from the report" % fam)
        elif float(fm.group(1)) / 100 + 1e-9 < floor:
            problems.append("family %s: intent accuracy %s%% < %.0f%%"
                            % (fam, fm.group(1), floor * 100))
    if problems:
        fail("\n".join(problems))
