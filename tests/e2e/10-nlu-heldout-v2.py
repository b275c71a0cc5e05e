"""10-nlu-heldout-v2: the demo bot against the held-out part of the second
evaluation set (tests/e2e/data/nlu_heldout_v2.jsonl; its dev part,
nlu_dev_v2.jsonl, is the one rules may be written against). Each line is
tagged with its family: typo, layout (Latin letters typed on ЙЦУКЕН),
translit, situation (no keyword), long (voice-style), out_of_scope (other
businesses, near-misses: must fall back) and entity. `easyflow bot check
--eval` reports intent accuracy, fallback precision (answered messages that
deserved an answer) and entity recall by family.

The floors below are the figures reached so far (docs/nlu-evaluation.md), so
they cannot silently regress; raise them as the matcher improves. The issue's
targets are 97 % / 95 % / 99 %."""

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v2.jsonl"

MIN_ALL = {"intent_accuracy": 0.97, "fallback_precision": 0.99, "entity_recall": 0.99}
MIN_FAMILY_ACCURACY = {"typo": 0.95, "layout": 1.0, "translit": 0.95, "long": 1.0,
                       "situation": 0.92, "out_of_scope": 0.95}


def test_heldout_v2_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
