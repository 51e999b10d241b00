"""The warehouse builds that a whole test session shares (conftest.py: `built_warehouse`, `tiny`).

Each is made once per test run. When the selected tests need one, conftest starts it at the start
of the session in a background thread: its steps are subprocesses (`flsdb generate`, `flsdb load`,
`dbt build`), so it builds on the machine's second core while the tests that need no warehouse
run first. A fixture that asks for a build waits for it (or makes it then, if nothing started it).

Each step's wall and CPU time (the step's process and its children) is kept, and conftest prints
them at the end of the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

# A step that runs longer than this is killed (the build then fails with its output).
STEP_TIMEOUT = 1800


class SharedBuild:
    def __init__(self, name: str, make: Callable[["SharedBuild", Path], dict]):
        self.name = name
        self._make = make
        self._thread: threading.Thread | None = None
        self._value: dict | None = None
        self._error: BaseException | None = None
        self._process: subprocess.Popen | None = None
        self._stopped = False
        self.background = False
        self.steps: list[tuple[str, float, float]] = []      # (step, wall s, CPU s)
        self.waited = 0.0                                    # seconds the tests waited for it

    def start(self, root: Path, background: bool = True) -> None:
        """Start the build in `root` (a new empty folder); a second call does nothing."""
        if self._thread is not None:
            return
        self.background = background
        self._thread = threading.Thread(target=self._build, args=(root,), daemon=True,
                                        name=f"shared build {self.name}")
        self._thread.start()

    def _build(self, root: Path) -> None:
        try:
            self._value = self._make(self, root)
        except BaseException as exc:  # handed to the test that asks for the build
            self._error = exc

    def get(self, new_root: Callable[[], Path]) -> dict:
        """The built warehouse (a dict of paths): waits for it, or builds it now."""
        if self._thread is None:
            self.start(new_root(), background=False)
        started = time.perf_counter()
        self._thread.join()
        self.waited += time.perf_counter() - started
        if self._error is not None:
            raise self._error
        return self._value

    def stop(self) -> None:
        """End of the session: kill a step still running (a run cut short)."""
        self._stopped = True
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()

    def run(self, step: str, command: list[str], env: dict[str, str], cwd: Path,
            log: Path) -> subprocess.CompletedProcess:
        """One step of the build; stdout and stderr both go to `log` and come back as stdout."""
        if self._stopped:
            raise RuntimeError(f"the test session ended before the {self.name} build's {step}")
        started = time.perf_counter()
        with open(log, "w") as out:
            process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out,
                                       stderr=subprocess.STDOUT)
            self._process = process
            timer = threading.Timer(STEP_TIMEOUT, process.kill)
            timer.start()
            try:
                _, status, usage = os.wait4(process.pid, 0)
            finally:
                timer.cancel()
            process.returncode = os.waitstatus_to_exitcode(status)
            self._process = None
        self.steps.append((step, time.perf_counter() - started, usage.ru_utime + usage.ru_stime))
        return subprocess.CompletedProcess(command, process.returncode,
                                           log.read_text(errors="replace"), "")

    def summary(self) -> str:
        if not self.steps:
            return f"{self.name}: not built"
        wall = sum(s[1] for s in self.steps)
        cpu = sum(s[2] for s in self.steps)
        parts = ", ".join(f"{step} {w:.0f} s ({c:.0f} s CPU)" for step, w, c in self.steps)
        how = "in the background" if self.background else "in the foreground"
        return (f"{self.name}: {wall:.0f} s wall, {cpu:.0f} s CPU, built {how}; tests waited "
                f"{self.waited:.0f} s for it [{parts}]")


def copy_build(build: dict, root: Path) -> dict:
    """A private copy of a shared build, for a test that changes it: the warehouse file and the
    dbt target folder are copied into `root`; the landing folder is shared (read only)."""
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / Path(build["warehouse"]).name
    shutil.copyfile(build["warehouse"], warehouse)
    target = root / "target"
    shutil.copytree(build["target"], target)
    return {**build, "root": root, "warehouse": warehouse, "target": target, "logs": root / "logs"}
