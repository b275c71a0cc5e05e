"""33-nlu-heldout-v6: the demo bot against a sixth held-out set
(tests/e2e/data/nlu_heldout_v6.jsonl, 308 customer messages written and
committed (1c051fb on the nlu branch) before the changes it measures, no
line equal to a line of an earlier set; rules, examples and mechanisms are
written against nlu_dev_v6.jsonl and the earlier dev sets, never against its
lines, and only its family table is read: check_heldout prints no misses).
Families: clean, typo, layout, translit, situation (no keyword; a fifth of
the set), long (voice-style run-ons, greeting or thanks first; a fifth),
out_of_scope (other businesses and near-misses; must fall back) and entity
(order numbers, relative dates back and forward, money in words and "5к",
phones, e-mails).

The floors below are the figures reached (docs/nlu-evaluation.md, "Session
7", raised in "Session 8") less about one line, so they cannot silently
regress; raise them as the matcher improves. The issue's targets are 97 % intent accuracy, 95 % fallback
precision and 99 % entity recall."""

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v6.jsonl"

MIN_ALL = {"intent_accuracy": 0.935, "fallback_precision": 0.98, "entity_recall": 0.97}
MIN_FAMILY_ACCURACY = {"clean": 0.92, "typo": 0.94, "layout": 0.95, "translit": 0.93,
                       "situation": 0.81, "long": 0.95, "out_of_scope": 0.93}


def test_heldout_v6_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
