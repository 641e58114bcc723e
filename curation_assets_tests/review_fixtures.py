"""`curation-assets review` as the tests start it: its own process group, a free port, Ctrl-C to stop."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


class ReviewServer:
    """`curation-assets review --port 0` in its own process group; stopped with Ctrl-C."""

    def __init__(self, data_dir: Path, env: dict, log: Path, port: int = 0):
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen([str(BIN / "curation-assets"), "review", "--data-dir", str(data_dir), "--port", str(port)],
                                     cwd=REPO_ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", log.read_text())
            if found:
                self.url = found.group(1)
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"curation-assets review did not start:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._out.close()
