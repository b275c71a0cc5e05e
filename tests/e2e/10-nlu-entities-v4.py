"""10-nlu-entities-v4: entity recall of the demo bot on a fourth held-out set
(tests/e2e/data/nlu_entities_v4.jsonl: 144 customer messages, 163 entities,
written and committed in da0dd8c before the entity changes it measures; no
rule was written from its lines; the rules were written against
nlu_entities_dev_v4.jsonl). `easyflow bot check --eval` prints every wanted
entity it did not find with exactly its normalized value; the recall by type
is counted from those lines.

Then: a repaired reading never changes an e-mail address, a phone or an
order number. Messages whose words the repair stage reads otherwise
(keyboard layout, transliteration) and that hold an address, a URL, a phone
or an order code must come out with the entity exactly as the customer
wrote it (an address lowercased), whichever reading wins.

The floors are the figures reached (docs/nlu-evaluation.md, "Entities v4
(session 5)"), less one entity per type, so that they cannot silently
regress; the issue's target is 99 %."""

import collections
import json
import re
import subprocess

import eftest
from eftest import fail

DATA = eftest.HERE / "data" / "nlu_entities_v4.jsonl"
BOT = str(eftest.REPO / "bots" / "demo.yaml")
NOW = "2026-03-10T12:00:00+03:00"

MIN_ALL = 0.99
MIN_TYPE = {"date": 0.98, "money": 0.96, "order_number": 0.96, "phone": 0.96, "email": 0.92,
            "time": 0.90}

# (message, type, value): the message needs a repair somewhere (layout or
# transliteration), and the entity must keep the customer's own text.
KEEP = [
    ("ljcnfdrf pfrfpf 5512093", "order_number", "5512093"),
    ("gjxnf ivan@почта.рф", "email", "ivan@почта.рф"),
    ("ghbdtn@yandex.ru ghbdtn", "email", "ghbdtn@yandex.ru"),
    ("rjulf ljcnfdrf? vjq ntktajy 9161234567", "phone", "+79161234567"),
    ("pfrfp wb-44821 ult", "order_number", "WB-44821"),
    ("ghbdtn vjq ntktajy 89161234567 b gjxnf ivan.petrov@mail.ru", "email",
     "ivan.petrov@mail.ru"),
    ("ult vjq pfrfp? gbie yf Ivan.Petrov@Mail.ru", "email", "ivan.petrov@mail.ru"),
    ("dthyenm ltymub pf pfrfp 5512093 yf rfhne", "order_number", "5512093"),
    ("ccskrf https://www.wildberries.ru/catalog/12345/detail.aspx ytn pfrfpf 4471902",
     "order_number", "4471902"),
    ("kogda dostavka zakaza 5512093", "order_number", "5512093"),
]


def _eval():
    code, out = eftest.run_bin(["bot", "check", "--eval", str(DATA), "--now", NOW, BOT],
                               timeout=120)
    if code != 0:
        fail("bot check --eval exited %d: %s" % (code, out[-2000:]))
    return out


def test_entities_v4_recall_by_type():
    want = collections.Counter()
    with open(DATA, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                for e in json.loads(line)["entities"]:
                    want[e["type"]] += 1
    out = _eval()
    missed = collections.Counter(m.group(1) for m in
                                 re.finditer(r"entity (\w+)=.* not found", out))
    print(out[out.find("evaluation:"):])
    problems = []
    for t, n in sorted(want.items()):
        got = (n - missed[t]) / n
        print("%-13s %5.1f%% %d/%d" % (t, 100 * got, n - missed[t], n))
        if got + 1e-9 < MIN_TYPE.get(t, MIN_ALL):
            problems.append("%s: recall %.3f < %.3f" % (t, got, MIN_TYPE.get(t, MIN_ALL)))
    total = sum(want.values())
    got = (total - sum(missed.values())) / total
    if got + 1e-9 < MIN_ALL:
        problems.append("all: recall %.4f < %.2f" % (got, MIN_ALL))
    m = re.search(r"^eval: .* entity_recall ([\d.]+)$", out, re.M)
    if not m or abs(float(m.group(1)) - got) > 1e-3:
        problems.append("bot check's own entity_recall %s disagrees with %.4f"
                        % (m.group(1) if m else None, got))
    if problems:
        fail("\n".join(problems))


def test_repair_keeps_addresses_phones_orders():
    proc = subprocess.run(eftest.wrap_cmd() + [eftest.ef_bin(), "nlu", "--bot", BOT, "--now", NOW,
                                               "--lines"],
                          input="".join(t + "\n" for t, _, _ in KEEP).encode("utf-8"),
                          capture_output=True, timeout=120)
    out = proc.stdout.decode("utf-8").splitlines()
    if proc.returncode != 0 or len(out) != len(KEEP):
        fail("nlu --lines exited %d with %d results for %d messages: %s"
             % (proc.returncode, len(out), len(KEEP), proc.stderr.decode()[-1000:]))
    problems, repaired = [], 0
    for (text, typ, value), line in zip(KEEP, out):
        r = json.loads(line)
        reps = r.get("repairs", [])
        repaired += bool(reps)
        got = [e["value"] for e in r["entities"] if e["type"] == typ]
        if value not in got:
            problems.append("%r: want %s %s, got %s (repairs %s)"
                            % (text, typ, value, got, [(x["from"], x["to"]) for x in reps]))
        # no word of an e-mail address or a URL is repaired (the explanation
        # would name "ivan" -> "иван", and a layout repair of an address can
        # make a greeting of it)
        raw = text.encode("utf-8")
        for x in reps:
            a, b = x["start"], x["end"]
            while a > 0 and raw[a - 1:a] not in (b" ", b"\t"):
                a -= 1
            while b < len(raw) and raw[b:b + 1] not in (b" ", b"\t"):
                b += 1
            token = raw[a:b].decode("utf-8", "replace")
            if "@" in token or "://" in token or token.startswith("www."):
                problems.append("%r: the repair reads %r as %r inside the address %r"
                                % (text, x["from"], x["to"], token))
    if repaired < len(KEEP) // 2:
        problems.append("only %d of %d messages were repaired: the check proves little"
                        % (repaired, len(KEEP)))
    if problems:
        fail("\n".join(problems))

