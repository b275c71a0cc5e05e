"""34-nlu-heldout-v8: the demo bot against an eighth held-out set
(tests/e2e/data/nlu_heldout_v8.jsonl, 208 customer messages written and
committed at the start of session 8 before the changes it measures, no line
equal to a line of an earlier set or a bot example; examples and mechanisms
are written against the dev sets (nlu_dev_v2..v8), never against its lines,
and only its family table is read: check_heldout prints no misses).
Families: clean, typo, layout, translit, situation (no keyword: a wrong
colour or size, damage, couriers, double charges, promo codes not applied,
corporate orders, warranty; a quarter of the set), long (voice-style
run-ons), out_of_scope (other businesses and near-misses; must fall back)
and entity (order numbers, relative dates, money in words and "7к", phones,
e-mails).

The floors below are the figures this set reached (docs/nlu-evaluation.md,
"Session 8": its baseline 92.2 %, after that session 93.8 %), so that
a regression fails. The issue's targets are 97 % intent accuracy, 95 %
fallback precision and 99 % entity recall."""

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v8.jsonl"

MIN_ALL = {"intent_accuracy": 0.937, "fallback_precision": 0.993, "entity_recall": 1.0}
MIN_FAMILY_ACCURACY = {"clean": 1.0, "typo": 1.0, "layout": 1.0, "translit": 0.95,
                       "situation": 0.86, "long": 0.921, "out_of_scope": 0.966}


def test_heldout_v8_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
