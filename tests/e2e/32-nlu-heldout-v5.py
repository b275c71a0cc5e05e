"""32-nlu-heldout-v5: the demo bot against a fifth held-out set
(tests/e2e/data/nlu_heldout_v5.jsonl, 283 customer messages written and
committed (94546fb) before the changes it measures; rules, repairs and
examples are written against nlu_dev_v5.jsonl and the earlier dev sets, never
against its lines, and only its family table is read: check_heldout prints
no misses). Families: clean, typo, layout, translit (several schemes, digits
and apostrophes), situation (no keyword), long (voice-style run-ons),
out_of_scope (must fall back) and entity (order numbers in groups, ranges of
days, amounts and hours, ordinal day words, phones, e-mails).

The floors below are the figures reached (docs/nlu-evaluation.md, "Session
6", raised in "Session 8") less about one line, so they cannot silently
regress; raise them as the matcher improves. The issue's targets are 97 % intent accuracy, 95 % fallback
precision and 99 % entity recall."""

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v5.jsonl"

MIN_ALL = {"intent_accuracy": 0.96, "fallback_precision": 0.98, "entity_recall": 0.97}
MIN_FAMILY_ACCURACY = {"clean": 1.0, "typo": 0.97, "layout": 1.0, "translit": 0.93,
                       "situation": 0.89, "long": 0.92, "out_of_scope": 0.94}


def test_heldout_v5_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
