"""A small driver for headless Chromium over the Chrome DevTools Protocol (CDP).

Command-line Chromium (`--dump-dom`, `--screenshot`) cannot click; a page that shows what a test
needs only after a click (the Prefect UI's Resume dialog) is driven here instead: one page,
JavaScript evaluated in it, and screenshots. It speaks CDP over the websocket client that
Prefect already depends on (`websockets`), with no browser-automation package.
"""

import base64
import itertools
import json
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from websockets.sync.client import connect
from websockets.sync.connection import Connection


class Page:
    """One browser tab reached through the browser's CDP websocket (a flattened session)."""

    def __init__(self, socket: Connection, session: str) -> None:
        self.socket = socket
        self.session = session
        self.ids = itertools.count(1)

    def send(self, method: str, timeout: float = 60, **params: Any) -> dict[str, Any]:
        """Call a CDP method in this tab; return its result (events met meanwhile, and late
        answers to calls that timed out, are dropped)."""
        sent = next(self.ids)
        message: dict[str, Any] = {"id": sent, "method": method, "params": params}
        if self.session:  # none: the browser itself
            message["sessionId"] = self.session
        self.socket.send(json.dumps(message))
        while True:
            reply = json.loads(self.socket.recv(timeout=timeout))
            if reply.get("id") != sent:
                continue
            if "error" in reply:
                raise RuntimeError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def evaluate(self, expression: str) -> Any:
        """Return the JSON value of a JavaScript expression evaluated in the page."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll a JavaScript expression until JavaScript finds it truthy; return its value
        (an element's is {}: elements are not JSON)."""
        found = f"[{expression}].filter(Boolean)"
        deadline = time.monotonic() + timeout
        while True:
            values = self.evaluate(found)
            if values:
                return values[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"still false after {timeout}s: {expression}")
            time.sleep(0.5)

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'")

    def screenshot(self, path: Path) -> None:
        """Save a PNG of the visible page."""
        data = self.send("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))


def _websocket_url(profile: Path, process: subprocess.Popen[bytes], timeout: float) -> str:
    """Read the browser's websocket address from DevToolsActivePort once Chromium writes it."""
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromium exited with {process.returncode} before listening")
        lines = active.read_text().split("\n") if active.exists() else []
        if len(lines) >= 2 and lines[1]:
            return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
        time.sleep(0.2)
    raise RuntimeError(f"chromium wrote no {active.name} within {timeout}s")


@contextmanager
def open_page(chromium: str, flags: tuple[str, ...], timeout: float = 60) -> Iterator[Page]:
    """Start Chromium with a fresh profile and yield one blank tab; close Chromium after."""
    # Chromium's helper processes may still write to the profile as the browser exits.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as directory:
        profile = Path(directory)
        process = subprocess.Popen(
            [chromium, *flags, f"--user-data-dir={profile}", "--remote-debugging-port=0"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            url = _websocket_url(profile, process, timeout)
            with connect(url, max_size=None, open_timeout=timeout) as socket:
                browser = Page(socket, "")
                try:
                    target = browser.send("Target.createTarget", url="about:blank")["targetId"]
                    attached = browser.send("Target.attachToTarget", targetId=target, flatten=True)
                    page = Page(socket, attached["sessionId"])
                    page.ids = browser.ids  # one socket, one sequence of message ids
                    yield page
                finally:
                    # Closing lets Chromium stop its helper processes; failing that, it is killed.
                    with suppress(Exception):
                        browser.send("Browser.close")
        finally:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
