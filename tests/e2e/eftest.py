"""eftest.py -- the end-to-end harness: real PostgreSQL, real Redis, the real binary.

Standard library only. The harness lives in lib/, split by concern; this
module re-exports all of it, so a test imports `eftest` (or names from it):

  lib/stack.py     services, databases (fresh_db, psql, redis), Gateway,
                   PrivatePostgres/PrivateRedis, run_bin, per-test resources
  lib/fakes.py     the fake servers' shared base, fake_telegram(), fake_graph(),
                   closed_at_end()
  lib/fake_telegram.py, lib/fake_graph.py   the fake Bot API and Graph API
  lib/builders.py  Telegram update builders (tg_message...), poll_env()
  lib/asserts.py   assert_eq/assert_status, post_ok, the store queries tests
                   assert on (message_rows, count, conversations...)

The session's PostgreSQL and Redis come from scripts/services.sh (state
.state/test, durability off) unless EF_TEST_DATABASE_URL / EF_TEST_REDIS_URL
name servers to use. tests/e2e/run.py starts them once and hands the URLs to
every test process.

Environment: EF_BIN (required: the binary under test), EF_E2E_WRAP (a command
prefix, e.g. "valgrind --error-exitcode=99"), EF_TEST_STATE (state folder).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lib.stack import *  # noqa: E402,F401,F403
from lib.stack import _clean_env, _psql_bin  # noqa: E402,F401
from lib.fakes import *  # noqa: E402,F401,F403
from lib.fake_telegram import DEFAULT_TOKEN, FakeTelegram  # noqa: E402,F401
from lib.fake_graph import FakeGraph  # noqa: E402,F401
from lib.builders import *  # noqa: E402,F401,F403
from lib.asserts import *  # noqa: E402,F401,F403
