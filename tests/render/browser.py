"""Headless Chromium driven as a person would (real mouse clicks and typing), over the DevTools
protocol on a pipe: no package beyond the standard library. Used by the view tests and by
docs/make_screenshots.py.

    with Browser() as browser:
        browser.open(path)
        browser.click("tr.folded")
        browser.type("#filter", "softmax")
        browser.evaluate("document.title")
        browser.screenshot("page.png")
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class BrowserError(RuntimeError):
    """A DevTools command failed, or the page did not do what was waited for."""


class Browser:
    """One headless Chromium with one page, ``width`` x ``height`` CSS pixels."""

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 60) -> None:
        if CHROMIUM is None:
            raise BrowserError("no Chromium (apt-get install chromium)")
        self.width, self.height, self.timeout = width, height, timeout
        self._profile = tempfile.TemporaryDirectory(prefix="shapetrace-chromium-")
        commands_read, self._commands = os.pipe()  # we write, Chromium reads on its fd 3
        self._replies, replies_write = os.pipe()  # Chromium writes on its fd 4, we read

        def pipes_as_3_and_4() -> None:
            os.dup2(commands_read, 1000)  # out of the way first: either pipe end may be 3 or 4
            os.dup2(replies_write, 1001)
            os.dup2(1000, 3)
            os.dup2(1001, 4)

        self.process = subprocess.Popen(
            [
                CHROMIUM, "--headless", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
                "--force-color-profile=srgb", f"--user-data-dir={self._profile.name}", "about:blank",
            ],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            close_fds=False, preexec_fn=pipes_as_3_and_4,
        )  # fmt: skip
        os.close(commands_read)
        os.close(replies_write)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime"):
            self.command(f"{domain}.enable")
        self.resize(width, height)

    # --- protocol ---------------------------------------------------------------------------------

    def _send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._events.append(reply)

    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("Chromium did not answer")
            chunk = os.read(self._replies, 1 << 20)
            if not chunk:
                raise BrowserError("Chromium closed the pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def command(self, method: str, params: dict | None = None) -> dict:
        """A DevTools command to the page."""
        return self._send(method, params, self._session)

    def _wait_for_event(self, method: str) -> dict:
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method:
                    return self._events.pop(index)
            self._events.append(self._read())

    # --- what a person does -----------------------------------------------------------------------

    def resize(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.command(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    def open(self, path: str | Path) -> None:
        """Load a file (or URL) and wait until it has loaded."""
        url = Path(path).resolve().as_uri() if not str(path).startswith(("file:", "http", "about:", "data:")) else str(path)
        self._events.clear()
        self.command("Page.navigate", {"url": url})
        self._wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self.command(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(details.get("exception", {}).get("description") or details.get("text"))
        return result["result"].get("value")

    def center(self, selector: str) -> tuple[float, float]:
        """Where the element is on screen (scrolled into view first)."""
        box = self.evaluate(
            f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2, r.width, r.height]; }})()"""
        )
        if box is None:
            raise BrowserError(f"nothing matches {selector}")
        if box[2] == 0 or box[3] == 0:
            raise BrowserError(f"{selector} is not visible")
        return box[0], box[1]

    def click(self, selector: str) -> None:
        """A left click in the middle of the element, as the mouse does it."""
        x, y = self.center(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.command(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": x, "y": y, "button": "left" if kind != "mouseMoved" else "none", "clickCount": 1},
            )
        self.settle()

    def type(self, selector: str, text: str) -> None:
        """Click into a text field and type ``text``."""
        self.click(selector)
        self.command("Input.insertText", {"text": text})
        self.settle()

    def press(self, key: str, times: int = 1) -> None:
        """Press a key (``"Backspace"``, ``"Enter"``) where the focus is."""
        codes = {"Backspace": 8, "Enter": 13, "Escape": 27}
        for _ in range(times):
            for kind in ("rawKeyDown", "keyUp"):
                self.command(
                    "Input.dispatchKeyEvent",
                    {"type": kind, "key": key, "code": key, "windowsVirtualKeyCode": codes[key]},
                )
        self.settle()

    def settle(self) -> None:
        """Let the page finish what a click or a key started (two animation frames)."""
        self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")

    def screenshot(self, path: str | Path, full_page: bool = True) -> Path:
        """The page as a PNG (the whole page, or the viewport)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            width, height = self.evaluate(
                "[document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
            )
            params["clip"] = {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.command("Page.captureScreenshot", params)["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    # --- lifetime ---------------------------------------------------------------------------------

    def close(self) -> None:
        try:
            self._send("Browser.close")
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for descriptor in (self._commands, self._replies):
            try:
                os.close(descriptor)
            except OSError:
                pass
        self._profile.cleanup()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
