"""systemd integration: readiness and watchdog notifications, and a hardened unit file.

The notify protocol is one datagram to $NOTIFY_SOCKET; no library needed. Outside systemd every
call is a no-op.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path


def notify(message: str) -> bool:
    """Send e.g. "READY=1" or "WATCHDOG=1" to systemd; False when not run by systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec), or None when there is no watchdog."""
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec or os.environ.get("WATCHDOG_PID", str(os.getpid())) != str(os.getpid()):
        return None
    return int(usec) / 2_000_000


def unit(workdir: Path, user: str = "numpolville") -> str:
    """A hardened unit running `numpolville run` from `workdir` (config, data and .env there)."""
    exe = Path(sys.argv[0]).resolve() if sys.argv[0].endswith("numpolville") else Path(
        sys.executable).with_name("numpolville")
    return f"""[Unit]
Description=numpolville-bot: curates a hashtag on Mastodon and Bluesky
After=network-online.target
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
User={user}
WorkingDirectory={workdir}
ExecStart={exe} run --log-format json
Restart=on-failure
RestartSec=10
WatchdogSec=120
TimeoutStopSec=10
# Hardening: the bot needs the network and write access to its data folder only.
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=read-only
ReadWritePaths={workdir / "data"}
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX
RestrictNamespaces=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
SystemCallFilter=@system-service
CapabilityBoundingSet=
MemoryMax=512M

[Install]
WantedBy=multi-user.target
"""
