"""Warehouse builds made once per test run: the two that the whole session shares (conftest.py:
`built_warehouse`, national 1x; `tiny`, tiny_build.py) and the bigger ones a module makes for
itself (test_audit_years, test_hostile_pipeline, test_quality_problems, test_kpi_seed).

A build is a `SharedBuild`: a function of a new empty folder that returns a dict of paths, and a
fixture that returns `BUILD.get(...)`. At the start of a session, conftest queues every build that
a selected test needs (by fixture name); one background thread makes them one after another. Their
steps are subprocesses (`flsdb generate`, `flsdb load`, `dbt build`), so the builds use the
machine's second core while the tests run on the first. A test that needs a build before the
background thread reached it makes it itself (it is then no longer queued); one that needs a build
being made waits for it.

Each step's wall and CPU time (the step's process and its children) is kept; conftest prints them
at the end of the run.
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

REGISTRY: list["SharedBuild"] = []           # every build, in the order the modules define them
_QUEUE: list["SharedBuild"] = []
_QUEUE_LOCK = threading.Lock()
_WORKER: list[threading.Thread] = []


class SharedBuild:
    def __init__(self, name: str, make: Callable[["SharedBuild", Path], dict], fixture: str,
                 module: str | None = None):
        """`make(build, root)` builds into `root`; `fixture` is the fixture that returns it (in
        `module`, a test file's __file__, or in conftest when None)."""
        self.name, self._make, self.fixture = name, make, fixture
        self.module = str(Path(module).resolve()) if module else None
        self._claimed = False
        self._root: Path | None = None
        self._done = threading.Event()
        self._value: dict | None = None
        self._error: BaseException | None = None
        self._process: subprocess.Popen | None = None
        self._stopped = False
        self.made_in = ""
        self.steps: list[tuple[str, float, float]] = []      # (step, wall s, CPU s)
        self.waited = 0.0                                    # seconds the tests waited for it
        REGISTRY.append(self)

    def needed_by(self, item) -> bool:
        if self.fixture not in getattr(item, "fixturenames", ()):
            return False
        return self.module is None or str(Path(item.path).resolve()) == self.module

    def queue(self, root: Path) -> None:
        """Have the background thread make it, into `root` (a new empty folder)."""
        with _QUEUE_LOCK:
            if self._claimed or self in _QUEUE:
                return
            self._root = root
            _QUEUE.append(self)
            if not _WORKER:
                _WORKER.append(threading.Thread(target=_work, daemon=True, name="shared builds"))
                _WORKER[0].start()

    def _claim(self) -> bool:
        with _QUEUE_LOCK:
            if self._claimed:
                return False
            self._claimed = True
            if self in _QUEUE:
                _QUEUE.remove(self)
            return True

    def _build(self, made_in: str) -> None:
        self.made_in = made_in
        try:
            self._value = self._make(self, self._root)
        except BaseException as exc:  # handed to every test that asks for the build
            self._error = exc
        finally:
            self._done.set()

    def get(self, new_root: Callable[[], Path]) -> dict:
        """The build (a dict of paths): made now if nothing has started it, else waited for."""
        if self._claim():
            if self._root is None:
                self._root = new_root()
            self._build("in the test that first needed it")
        started = time.perf_counter()
        self._done.wait()
        self.waited += time.perf_counter() - started
        if self._error is not None:
            raise self._error
        return self._value

    def stop(self) -> None:
        """End of the session: make nothing more, and kill a step still running."""
        self._stopped = True
        process = self._process
        if process is not None and process.returncode is None:
            process.kill()

    def run(self, step: str, command: list[str], env: dict[str, str], cwd: Path,
            log: Path) -> subprocess.CompletedProcess:
        """One step of the build; stdout and stderr both go to `log` and come back as stdout."""
        if self._stopped:
            raise RuntimeError(f"the test session ended before the {self.name} build's {step}")
        log.parent.mkdir(parents=True, exist_ok=True)
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
        wall = sum(s[1] for s in self.steps)
        cpu = sum(s[2] for s in self.steps)
        parts = ", ".join(f"{step} {w:.0f} s ({c:.0f} s CPU)" for step, w, c in self.steps)
        return (f"{self.name}: {wall:.0f} s wall, {cpu:.0f} s CPU in its subprocesses, made "
                f"{self.made_in}; tests waited {self.waited:.0f} s for it [{parts}]")


def _work() -> None:
    while True:
        with _QUEUE_LOCK:
            if not _QUEUE:
                _WORKER.clear()
                return
            build = _QUEUE[0]
        if build._claim():
            if build._stopped:
                build._error = RuntimeError(f"the test session ended before the {build.name} build")
                build._done.set()
            else:
                build._build("in the background")


def stop_all() -> None:
    with _QUEUE_LOCK:
        _QUEUE.clear()
    for build in REGISTRY:
        build.stop()


def copy_build(build: dict, root: Path) -> dict:
    """A private copy of a shared build, for a test that changes it: the warehouse file and the
    dbt target folder are copied into `root`; the landing folder is shared (read only)."""
    root.mkdir(parents=True, exist_ok=True)
    warehouse = root / Path(build["warehouse"]).name
    shutil.copyfile(build["warehouse"], warehouse)
    target = root / "target"
    shutil.copytree(build["target"], target)
    return {**build, "root": root, "warehouse": warehouse, "target": target, "logs": root / "logs"}
