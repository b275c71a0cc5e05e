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

import eftest
from nlu_helpers import check_heldout

DATA = eftest.HERE / "data" / "nlu_heldout_v3.jsonl"

MIN_ALL = {"intent_accuracy": 0.965, "fallback_precision": 0.98, "entity_recall": 0.96}
MIN_FAMILY_ACCURACY = {"typo": 0.97, "layout": 1.0, "translit": 0.96, "long": 0.90,
                       "situation": 0.95, "out_of_scope": 0.94}


def test_heldout_v3_by_family():
    check_heldout(DATA, MIN_ALL, MIN_FAMILY_ACCURACY)
