"""35-nlu-heldout-v9: the demo bot against a ninth held-out set
(tests/e2e/data/nlu_heldout_v9.jsonl, 100 customer messages) written in
session 8 by the lead, not by the engineer who tuned the bot that session,
after that tuning, as a check that it generalizes; no line equal to a line
of any earlier held-out or dev set. Nothing was tuned against it and its
misses were not read. Families: clean 10, typo 12, layout 8 (typed with
the English layout on), translit 10, situation 25 (no keyword), long 15
(voice-style, greeting or thanks first), out_of_scope 20 (other
businesses and near-misses; must fall back). No entities.

Figures when written (bot check --eval, docs/nlu-evaluation.md "Session
8"): the bot at the session's start 94.0 % intent accuracy, fallback
precision 98.7 %; at its end 97.0 %, 100 %. The floors are the end's less
about one line, so that a change that loses on messages nobody tuned for
shows here."""

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v9.jsonl"

MIN_ALL = {"intent_accuracy": 0.96, "fallback_precision": 0.98}
MIN_FAMILY_ACCURACY = {"clean": 0.9, "typo": 0.91, "layout": 0.87, "translit": 0.8,
                       "situation": 0.88, "long": 0.93, "out_of_scope": 0.95}


def test_heldout_v9_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
