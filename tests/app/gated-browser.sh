#!/bin/sh
# $BROWSER for the app tests: the scripted browser (tests/idp/user-agent.js), held back until the
# test opens the gate, so the "Continue in your browser" screen can be looked at first. The test
# writes "go" to $KEYLINK_TEST_GATE to let it sign in, or "abandon" to make it give up.
#
# Keylink starts its browser without any KEYLINK_* variable (SECURITY 51), so the gate's path
# comes from the app that started this program, as user-agent.js takes its settings.
if [ -z "${KEYLINK_TEST_GATE:-}" ] && [ -r "/proc/$PPID/environ" ]; then
    KEYLINK_TEST_GATE="$(tr '\0' '\n' <"/proc/$PPID/environ" | sed -n 's/^KEYLINK_TEST_GATE=//p')"
fi
if [ -n "${KEYLINK_TEST_GATE:-}" ]; then
    waited=0
    while [ ! -s "$KEYLINK_TEST_GATE" ]; do
        waited=$((waited + 1))
        # At most 5 minutes, so a test that died never leaves this behind for long.
        [ "$waited" -gt 3000 ] && exit 1
        sleep 0.1
    done
    [ "$(cat "$KEYLINK_TEST_GATE")" = go ] || exit 1
    rm -f "$KEYLINK_TEST_GATE"
fi
exec node "$(dirname "$0")/../idp/user-agent.js" "$@"
