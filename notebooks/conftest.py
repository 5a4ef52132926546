"""pytest + nbval for the notebook series.

* The notebooks use the course's lab (default run dir and ports, see
  :func:`acmelab.course.lab`); each notebook starts it if needed, so any
  notebook can run alone: ``pytest --nbval notebooks/05_account.ipynb``.
* If the lab was not running when the session began, it is stopped when the
  session ends, so ``make test`` leaves no process behind.
* Every executed cell's live output is checked for ``PRIVATE KEY`` material,
  the lab's access key secret and a real one from
  ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``; any of them fails the cell.
"""

from __future__ import annotations

import pytest

collect_ignore = ["build.py"]
collect_ignore_glob = ["course/*", "src/*", ".ipynb_checkpoints/*"]

_lab_was_running: bool | None = None
_secret_cache: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    global _lab_was_running
    from acmelab.lab import status

    _lab_was_running = status() is not None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _lab_was_running is False:
        from acmelab.lab import status, stop

        if status() is not None:
            stop()


def _lab_secret() -> str:
    if not _secret_cache:
        from acmelab.lab import status

        info = status()
        if info is None:
            return ""
        _secret_cache.append(info.aliyun_access_key_secret)
    return _secret_cache[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    result = yield
    outputs = getattr(item, "test_outputs", None)  # nbval's live outputs of this cell
    if outputs:
        from acmelab.lab.run_series import output_leaks

        import os

        secrets = [_lab_secret()] + [os.environ.get(name, "") for name in
                                     ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIYUN_ACCESS_KEY_SECRET")]
        problems = output_leaks(outputs, secrets)
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)
    return result
