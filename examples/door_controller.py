#!/usr/bin/env python3
"""A door controller for facecaptured, in Python with jeepney (PyPI).

Asks the daemon to authenticate a person over D-Bus, shows the capture feedback
and progress as they arrive, and drives a relay stand-in on the result: the file
given with --relay gets "1" (door open) when access is granted, "0" otherwise,
as a GPIO value file would.

    pip install jeepney
    python3 examples/door_controller.py alice --relay /tmp/door-relay
    python3 examples/door_controller.py --qr    # the person shows a QR code

Exit status: 0 granted, 1 refused or failed, 2 usage.
"""

import argparse
import sys
import time

from jeepney import DBusAddress, MatchRule, MessageType, new_method_call
from jeepney.bus_messages import message_bus
from jeepney.io.blocking import open_dbus_connection

SERVICE = DBusAddress(
    "/org/facecapture/FaceCapture1",
    bus_name="org.facecapture.FaceCapture1",
    interface="org.facecapture.FaceCapture1",
)
# Longer than the daemon's own operation timeout (20 s by default).
CALL_TIMEOUT_S = 60


def set_relay(path, open_door):
    state = "1" if open_door else "0"
    if path:
        with open(path, "w") as f:
            f.write(state + "\n")
    print(f"relay: {'OPEN' if open_door else 'closed'}")


def authenticate(conn, username):
    """Calls Authenticate (or AuthenticateWithQr with an empty URL: scan the QR
    code with the camera) and prints signals until the reply comes."""
    if username is None:
        msg = new_method_call(SERVICE, "AuthenticateWithQr", "s", ("",))
    else:
        msg = new_method_call(SERVICE, "Authenticate", "s", (username,))
    for member in ("Progress", "CaptureFeedback"):
        rule = MatchRule(type="signal", interface=SERVICE.interface, member=member,
                         path=SERVICE.object_path)
        conn.send_and_get_reply(message_bus.AddMatch(rule))
    serial = next(conn.outgoing_serial)
    conn.send(msg, serial=serial)
    deadline = time.monotonic() + CALL_TIMEOUT_S
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no answer from facecaptured")
        reply = conn.receive(timeout=left)
        hdr = reply.header
        if hdr.message_type == MessageType.signal:
            if hdr.fields.get(3) == "CaptureFeedback":  # 3: MEMBER
                print(f"feedback: {reply.body[0]}", flush=True)
            elif hdr.fields.get(3) == "Progress":
                print(f"progress: {reply.body[0]} {reply.body[1]}", flush=True)
            continue
        if hdr.fields.get(5) != serial:  # 5: REPLY_SERIAL
            continue
        if hdr.message_type == MessageType.error:
            name = hdr.fields.get(4, "error")  # 4: ERROR_NAME
            text = reply.body[0] if reply.body else ""
            raise RuntimeError(f"{name.rsplit('.', 1)[-1]}: {text}")
        return reply.body


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("username", nargs="?", help="who is at the door (omit with --qr)")
    p.add_argument("--qr", action="store_true", help="scan the person's QR code instead")
    p.add_argument("--relay", help="relay stand-in: a file that gets 1 (open) or 0")
    p.add_argument("--address", help="D-Bus address (default: the system bus)")
    p.add_argument("--session", action="store_true", help="use the session bus")
    args = p.parse_args()
    if bool(args.username) == bool(args.qr):
        p.error("give a username or --qr")
    bus = args.address or ("SESSION" if args.session else "SYSTEM")
    set_relay(args.relay, False)
    try:
        with open_dbus_connection(bus=bus) as conn:
            body = authenticate(conn, None if args.qr else args.username)
    except Exception as e:  # noqa: BLE001 - any failure keeps the door shut
        print(f"refused: {e}")
        return 1
    if args.qr:
        username, granted, liveness, matched, score, status = body
    else:
        username = args.username
        granted, liveness, matched, score, status = body
    print(f"{username}: granted={granted} liveness={liveness} matched={matched} "
          f"score={score:.1f} auth_status={status}")
    set_relay(args.relay, granted)
    return 0 if granted else 1


if __name__ == "__main__":
    sys.exit(main())
