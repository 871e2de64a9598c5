"""Take the README's screenshot of the profile page (docs/img/profile-page.png).

    .venv/bin/python scripts/screenshot_page.py [--out docs/img/profile-page.png]

Starts ``propsync serve`` on a temporary warehouse and a free loopback port, tracks one demo
customer through the tracking API, saves one edit through the page's form (so its notice shows)
and photographs the whole page in Debian's headless Chromium (a 1000x700 viewport).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

TOKEN = "00000000-0000-0000-0000-000000000000"
KEY = ("ui", "demo-secret")
CUSTOMER = {
    "customer_ids": {"registered": "mgalik", "cookie": "4f9c1e2a"},
    "properties": {
        "first_name": "Marian",
        "last_name": "Galik",
        "email": "marian@example.com",
        "birthday": 579571200,  # a `date` property: 1988-05-14, as UNIX seconds
        "newsletter": True,
        "lifetime_value": 1234.5,
        "tags": ["vip", "beta"],
        "city": "Brno",
    },
    "update_timestamp": 1570001049,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(warehouse: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PROPSYNC_PROJECT_TOKENS": TOKEN,
        "PROPSYNC_API_KEYS": ":".join(KEY),
    }
    env.pop("PROPSYNC_CONFIG", None)
    cmd = [sys.executable, "-m", "propsync.cli", "serve", "--warehouse", str(warehouse)]
    return subprocess.Popen([*cmd, "--port", str(port)], env=env, stderr=subprocess.DEVNULL)


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"timed out waiting for {what}")


def track(url: str) -> None:
    body = {"commands": [{"name": "customers", "data": CUSTOMER}]}
    httpx.post(f"{url}/track/v2/projects/{TOKEN}/batch", json=body).raise_for_status()
    customer = f"{url}/api/customers/registered:mgalik"
    wait_for(lambda: httpx.get(customer, auth=KEY).status_code == 200, "the applied customer")


def photograph(url: str, out: Path) -> None:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        context = browser.new_context(
            viewport={"width": 1000, "height": 700},
            http_credentials={"username": KEY[0], "password": KEY[1]},
        )
        page = context.new_page()
        page.goto(f"{url}/customers/registered:mgalik")
        page.fill("#edit-name", "city")
        page.fill("#edit-value", "Bratislava")
        page.click("#edit-form button[type=submit]")
        page.wait_for_url("**saved=city")
        page.screenshot(path=str(out), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/img/profile-page.png"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = serve(Path(tmp) / "warehouse", port)
        try:
            wait_for(lambda: httpx.get(f"{url}/healthz").status_code == 200, "the server")
            track(url)
            photograph(url, args.out)
        finally:
            server.terminate()
            server.wait(30)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
