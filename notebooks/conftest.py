"""pytest + nbval for the notebook series.

* The notebooks use the course's lab (default run dir and ports, see
  :func:`acmelab.course.lab`); each notebook starts it if needed, so any
  notebook can run alone: ``pytest --nbval notebooks/05_account.ipynb``.
* If the lab was not running when the session began, it is stopped when the
  session ends -- unless another session (or ``make run``) still uses it:
  :func:`acmelab.course.join_lab` / :func:`~acmelab.course.leave_lab`.  So
  ``make test`` leaves no process behind, and overlapping sessions do not
  stop the lab under each other.
* A lab that runs with other Pebble settings than the course's is restarted
  when the session starts (with a warning on stderr), so no notebook cell
  shows that warning.
* Every executed cell's live output is checked for ``PRIVATE KEY`` material,
  the lab's access key secret and a real one from
  ``ALIBABA_CLOUD_ACCESS_KEY_SECRET``; any of them fails the cell.
"""

from __future__ import annotations

import pytest

collect_ignore = ["build.py"]
collect_ignore_glob = ["course/*", "src/*", ".ipynb_checkpoints/*"]

_secret_cache: list[str] = []


def pytest_sessionstart(session: pytest.Session) -> None:
    from acmelab import course

    from acmelab.lab import status

    course.join_lab()  # the lab is shared with other sessions; the last one out stops it
    if status() is not None:
        # A lab running with other Pebble settings is restarted here, its
        # warning on this terminal -- not in the first notebook's outputs.
        course.lab()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from acmelab import course

    course.leave_lab()


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
