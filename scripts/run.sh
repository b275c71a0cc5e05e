#!/usr/bin/env bash
# run.sh -- serve easyflow locally (called by `make run`, after deps and the build).
#
#   scripts/run.sh /abs/path/to/easyflow
#
# Starts the private PostgreSQL + Redis of .state/dev (unless EF_DATABASE_URL /
# EF_REDIS_URL are set: then yours are used and that service is not started),
# migrates, and replaces itself with `easyflow serve` serving bots/demo.yaml.
# Every EF_* / TELEGRAM_* / WHATSAPP_* variable you set is honoured; the
# Telegram webhook secret is generated once and kept in .state/dev/telegram_secret.
# The demo operator (demo@easyflow.local, admin) gets a password generated on the
# first run and kept in .state/dev/operator_password (mode 600); each run makes
# sure the account exists with that password. EF_STATE_DIR moves the state folder
# (the tests point it at a temporary one). Each reply the bot queues is logged at
# info level with its chat and first characters (EF_LOG_REPLIES=0: not).
# The banner (URLs, account, Try it) is printed once the gateway answers; if it
# cannot start, only its error is shown and run.sh exits with its code.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-}
if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
    echo "usage: $0 /path/to/easyflow (make run builds it)" >&2
    exit 2
fi
STATE=${EF_STATE_DIR:-$REPO/.state/dev}
mkdir -p "$STATE"

need=""
[ -n "${EF_DATABASE_URL:-}" ] || need="pg"
[ -n "${EF_REDIS_URL:-}" ] || need="$need redis"
need=${need# }
if [ -n "$need" ]; then
    EF_SERVICES="$need" "$REPO/scripts/services.sh" start "$STATE"
    eval "$(EF_SERVICES="$need" "$REPO/scripts/services.sh" env "$STATE")"
fi
export EF_DATABASE_URL EF_REDIS_URL

if [ -z "${EF_BOT_FILE:-}" ] && [ -f "$REPO/bots/demo.yaml" ]; then
    export EF_BOT_FILE=$REPO/bots/demo.yaml
fi
export EF_LISTEN=${EF_LISTEN:-127.0.0.1:8080}
export EF_LOG_REPLIES=${EF_LOG_REPLIES:-1}
if [ -z "${EF_SQL_DIR:-}" ] && [ -d "$REPO/sql" ]; then
    export EF_SQL_DIR=$REPO/sql
fi

# The webhook secret: yours, else one generated on the first run and kept.
secret_ref="\$(cat $STATE/telegram_secret)"
secret_where="kept in $STATE/telegram_secret"
if [ -n "${TELEGRAM_SECRET_TOKEN:-}" ]; then
    secret_ref="\$TELEGRAM_SECRET_TOKEN"
    secret_where="your TELEGRAM_SECRET_TOKEN"
else
    if [ ! -s "$STATE/telegram_secret" ]; then
        (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/telegram_secret")
    fi
    TELEGRAM_SECRET_TOKEN=$(cat "$STATE/telegram_secret")
fi
export TELEGRAM_SECRET_TOKEN

# The key sealing integration credentials at rest: yours, else one generated
# on the first run and kept (losing it means re-adding the integrations).
if [ -z "${EF_SECRET_KEY:-}" ]; then
    if [ ! -s "$STATE/secret_key" ]; then
        (umask 077 && od -An -N32 -tx1 /dev/urandom | tr -d ' \n' >"$STATE/secret_key")
    fi
    EF_SECRET_KEY=$(cat "$STATE/secret_key")
fi
export EF_SECRET_KEY

"$BIN" migrate

# The demo operator: a password generated on the first run and kept (never a
# fixed default); the account is (re)made with it on every run, so a fresh
# database gets it too (--reset-password: an existing account takes it).
DEMO_EMAIL=demo@easyflow.local
pw_file=$STATE/operator_password
if [ ! -s "$pw_file" ]; then
    (umask 077 && od -An -N15 -tx1 /dev/urandom | tr -d ' \n' >"$pw_file")
fi
chmod 600 "$pw_file"
"$BIN" operator add "$DEMO_EMAIL" --name Demo --role admin --reset-password <"$pw_file" >/dev/null

# The "Try it" update id: one more each time the printed command runs, so a
# second try is a new message and not a duplicate of the first.
try_file=$STATE/try_update_id
[ -s "$try_file" ] || echo 1000 >"$try_file"

host=${EF_LISTEN%:*}
port=${EF_LISTEN##*:}
case "$host" in "" | 0.0.0.0 | "[::]" | "::") host=127.0.0.1 ;; esac
base="http://$host:$port"
mode=${TELEGRAM_MODE:-webhook}

db_url=${EF_DATABASE_URL%%\?*}

# The gateway, in the background until it answers: the banner comes only
# after a successful start. Ctrl-C / SIGTERM reach it through the trap.
"$BIN" serve &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' INT TERM
until curl -s -o /dev/null --max-time 2 "$base/livez"; do
    if ! kill -0 "$pid" 2>/dev/null; then
        rc=0
        wait "$pid" || rc=$?
        echo "run.sh: easyflow serve did not start (exit code $rc): see the lines above" >&2
        exit $((rc ? rc : 1))
    fi
    sleep 0.2
done

cat <<EOF

easyflow is running (state folder: $STATE)

  Talk to the bot:   open $base/chat in a browser (ask for a human: "позовите оператора")
  Answer as the operator: open $base/console, log in as $DEMO_EMAIL
                          with the password in $pw_file

  database      $db_url
  redis         $EF_REDIS_URL
  bot           ${EF_BOT_FILE:-(none)}
  web chat      $base/chat
  console       $base/console
  operator      $DEMO_EMAIL (admin), password in $pw_file
  webhook       POST $base/webhook/telegram   (header X-Telegram-Bot-Api-Secret-Token)
  health        $base/healthz
  metrics       $base/metrics
  secret        $secret_where

Or try the Telegram webhook without Telegram (each run of this sends a new update id, kept in
$try_file; the same update id sent again is a duplicate: answered
{"ok":true,"duplicate":true} and logged as one, stored and answered once):
  n=\$((\$(cat $try_file) + 1)); echo \$n >$try_file
  curl -s -H 'X-Telegram-Bot-Api-Secret-Token: '"$secret_ref" \\
       -H 'Content-Type: application/json' $base/webhook/telegram \\
       -d '{"update_id":'\$n',"message":{"message_id":'\$n',"date":1700000000,"chat":{"id":42,"type":"private"},"from":{"id":42,"is_bot":false,"first_name":"Test"},"text":"Привет"}}'
What the bot understood and answered (the reply stays queued without a bot token):
  psql '$db_url' -c "SELECT * FROM (SELECT created_at, role, left(content, 40) AS text, intent, metadata->'decision'->>'why' AS why, delivery_status FROM messages ORDER BY created_at DESC LIMIT 6) m ORDER BY created_at, role <> 'user'"
Ask for a human (text "позовите оператора"), then open $base/console and log in
as $DEMO_EMAIL with the password in $pw_file.

Connect a real bot (token from @BotFather):
  - long polling, no public URL needed:
      TELEGRAM_MODE=poll TELEGRAM_BOT_TOKEN=<token> make run
  - webhook: expose $base over HTTPS (port 443, 80, 88 or 8443; e.g. a reverse
    proxy or tunnel), then register it with the same secret:
      curl -s "https://api.telegram.org/bot<token>/setWebhook" \\
           -d url=https://<your-host>/webhook/telegram \\
           -d secret_token=$secret_ref
      TELEGRAM_BOT_TOKEN=<token> make run
Connect a second bot while this runs (credentials sealed under the key kept in
$STATE/secret_key; see README "Connecting a second bot"):
  echo '{"bot_token":"<token>","secret_token":"<16+ characters>"}' |
    EF_DATABASE_URL='${EF_DATABASE_URL}' EF_SECRET_KEY=\$(cat $STATE/secret_key) \\
    $BIN integration add telegram --name second-bot
Stop with Ctrl-C; stop the database and Redis with: make services-stop
(with the same EF_STATE_DIR, if you set one). Telegram mode: $mode

EOF

# Until the gateway exits (a trapped signal interrupts wait: wait again).
set +e
rc=0
while kill -0 "$pid" 2>/dev/null; do
    wait "$pid"
    rc=$?
done
wait "$pid" 2>/dev/null
last=$?
[ "$last" -eq 127 ] || rc=$last
exit "$rc"
