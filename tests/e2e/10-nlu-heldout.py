"""10-nlu-heldout: the demo bot against customer messages it was not written
from. tests/e2e/data/nlu_heldout.jsonl holds Russian and English messages the
way customers send them to a shop on Wildberries and Ozon (typos, no
punctuation, emoji, transliteration, one-word replies, long complaints), each
with the intent a person would expect and the entities with their normalized
values. `$EF_BIN nlu` runs on each one with a fixed --now (Tuesday 2026-03-10,
12:00 Moscow), so relative dates are stable.

A line is {"text": ..., "intent": ... or null, "entities": [{"type", "value"}]};
a null intent means the line is there for its entities only. The intent
accuracy must be at least 0.99 (it is 1.0); every listed entity must be found with exactly
its normalized value (other entities in the message are not checked)."""

import json
import subprocess

import eftest
from eftest import fail

DATA = eftest.HERE / "data" / "nlu_heldout.jsonl"
BOT = str(eftest.REPO / "bots" / "demo.yaml")
NOW = "2026-03-10T12:00:00+03:00"
MIN_INTENT_ACCURACY = 0.99


def _load():
    rows = []
    with open(DATA, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            r = json.loads(line)
            if not isinstance(r.get("text"), str) or not isinstance(r.get("entities"), list):
                fail("%s:%d: needs text and entities" % (DATA.name, n))
            r["line"] = n
            rows.append(r)
    return rows


def _nlu_one(row):
    code, out = eftest.run_bin(["nlu", "--bot", BOT, "--now", NOW, "--", row["text"]], timeout=30)
    if code != 0:
        fail("nlu exited %d on line %d %r: %s" % (code, row["line"], row["text"], out[-500:]))
    try:
        return json.loads(out)
    except ValueError:
        fail("nlu printed no JSON object on line %d %r: %s" % (row["line"], row["text"], out[-500:]))


def _nlu_all(rows):
    """Every one-line message through one `nlu --lines` process (the bot is
    compiled once); messages with a line break one process each."""
    batch = [r for r in rows if "\n" not in r["text"] and "\r" not in r["text"]]
    proc = subprocess.run(eftest.wrap_cmd() + [eftest.ef_bin(), "nlu", "--bot", BOT, "--now", NOW,
                                               "--lines"],
                          input="".join(r["text"] + "\n" for r in batch).encode("utf-8"),
                          capture_output=True, timeout=120)
    out = proc.stdout.decode("utf-8").splitlines()
    if proc.returncode != 0 or len(out) != len(batch):
        fail("nlu --lines exited %d with %d results for %d messages: %s"
             % (proc.returncode, len(out), len(batch), proc.stderr.decode("utf-8", "replace")[-500:]))
    results = {id(r): json.loads(line) for r, line in zip(batch, out)}
    for r in rows:
        if id(r) not in results:
            results[id(r)] = _nlu_one(r)
    return [results[id(r)] for r in rows]


def test_heldout_intents_and_entities():
    rows = _load()
    results = _nlu_all(rows)

    scored = hits = 0
    intent_misses, entity_misses = [], []
    wanted_entities = 0
    for row, res in zip(rows, results):
        if row.get("intent"):
            scored += 1
            if res["intent"] == row["intent"]:
                hits += 1
            else:
                ranked = ", ".join("%s %.2f" % (c["intent"], c["confidence"]) for c in res["ranked"][:3])
                intent_misses.append("  line %d: %r: want %s, got %s (%s)"
                                     % (row["line"], row["text"], row["intent"], res["intent"],
                                        ranked or "no candidate"))
        got = [(e["type"], e["value"]) for e in res["entities"]]
        for want in row["entities"]:
            wanted_entities += 1
            if (want["type"], want["value"]) not in got:
                entity_misses.append("  line %d: %r: want %s=%s, got %s"
                                     % (row["line"], row["text"], want["type"], want["value"],
                                        got or "none"))

    if scored < 300 or wanted_entities < 80:
        fail("the held-out set is too small: %d intents, %d entities" % (scored, wanted_entities))
    accuracy = hits / scored
    print("held-out intents: %d/%d = %.3f; entities: %d/%d"
          % (hits, scored, accuracy, wanted_entities - len(entity_misses), wanted_entities))
    if intent_misses:
        print("intent misses:\n" + "\n".join(intent_misses))
    if entity_misses:
        print("entity misses:\n" + "\n".join(entity_misses))
    problems = []
    if accuracy < MIN_INTENT_ACCURACY:
        problems.append("intent accuracy %.3f < %.2f:\n%s"
                        % (accuracy, MIN_INTENT_ACCURACY, "\n".join(intent_misses)))
    if entity_misses:
        problems.append("%d of %d entities missed or wrong:\n%s"
                        % (len(entity_misses), wanted_entities, "\n".join(entity_misses)))
    if problems:
        fail("\n".join(problems))
