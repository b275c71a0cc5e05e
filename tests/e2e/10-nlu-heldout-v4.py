"""10-nlu-heldout-v4: the demo bot against a fourth held-out set
(tests/e2e/data/nlu_heldout_v4.jsonl, 258 customer messages written and
committed (56518eb) before the changes it measures; rules and examples are
written against nlu_dev_v2.jsonl and nlu_dev_v4.jsonl, never against its
lines). Families: clean, typo, layout (Latin letters typed on ЙЦУКЕН),
translit (several schemes), situation (no keyword), long (voice-style run-ons,
a greeting or thanks first) and out_of_scope (other businesses and near misses
that share the shop's words: must fall back). No entity lines.

The floors below are the figures reached (docs/nlu-evaluation.md, "Intent
accuracy v4"), so they cannot silently regress; raise them as the matcher
improves. The issue's targets are 97 % intent accuracy and 95 % fallback
precision."""

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v4.jsonl"

MIN_ALL = {"intent_accuracy": 0.93, "fallback_precision": 0.98}
MIN_FAMILY_ACCURACY = {"clean": 1.0, "typo": 0.92, "layout": 1.0, "translit": 0.81,
                       "situation": 0.85, "long": 0.96, "out_of_scope": 0.94}


def test_heldout_v4_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
