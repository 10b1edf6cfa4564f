"""Word when the night ends: e-mail to a local SMTP server (aiosmtpd) and a webhook to a
local HTTP receiver, both started here on 127.0.0.1; a failed notification is one logged
line and never fails the series; the user's config file is the one place for targets."""

import json
import logging
import shutil
import socket
import subprocess
import sys
import threading
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from small_series import run_small_series, write_plan

from labctl.series.catalog import Catalog
from labctl.series.notify import (
    NotifyConfig,
    NotifyConfigError,
    load_config,
    notify_series_end,
)


@pytest.fixture(scope="module")
def finished_series(tmp_path_factory):
    return run_small_series(tmp_path_factory.mktemp("notify") / "series")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    """A local SMTP server; yields (port, the messages it received)."""
    from aiosmtpd.controller import Controller

    received = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    controller = Controller(Keep(), hostname="127.0.0.1", port=free_port())
    controller.start()  # returns when the server answers
    try:
        yield controller.port, received
    finally:
        controller.stop()


@pytest.fixture
def webhook():
    """A local HTTP receiver; yields (port, the JSON bodies POSTed to it)."""
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def targets(smtp_port, hook_port) -> list[str]:
    return [
        f"mailto://127.0.0.1:{smtp_port}?mode=insecure&from=labctl@lab.example"
        "&to=operator@lab.example",
        f"json://127.0.0.1:{hook_port}/labctl-hook",
    ]


def test_a_finished_series_is_told_by_email_and_webhook(finished_series, smtp_server, webhook):
    smtp_port, mails = smtp_server
    hook_port, posts = webhook
    config = NotifyConfig(desktop=False, urls=targets(smtp_port, hook_port))
    assert notify_series_end(finished_series, config) is True
    (mail,) = mails
    assert mail.rcpt_tos == ["operator@lab.example"]
    message = message_from_bytes(mail.content)
    assert message["Subject"] == "labctl: series night-test done"
    assert "4 of 4 steps done, 0 failed" in mail.content.decode()
    ((path, body),) = posts
    assert path == "/labctl-hook"
    assert body["title"] == "labctl: series night-test done" and body["type"] == "success"
    assert "report.html" in body["message"]


def test_an_interlock_is_told_as_a_failure_with_its_reason(finished_series, webhook, tmp_path):
    hook_port, posts = webhook
    series = shutil.copytree(finished_series, tmp_path / "series")
    with Catalog.in_directory(series) as catalog:
        catalog.set_series_state("running")  # resumed (the states' transition table) ...
        catalog.set_series_state("stopped", "anneal 300 °C: furnace interlock: sensor break")
    config = NotifyConfig(desktop=False, urls=[f"json://127.0.0.1:{hook_port}/"])
    assert notify_series_end(series, config) is True
    ((_path, body),) = posts
    assert body["title"] == "labctl: series night-test stopped" and body["type"] == "failure"
    assert body["message"].startswith("anneal 300 °C: furnace interlock: sensor break")


def test_a_failed_notification_is_one_logged_line(finished_series, webhook, caplog):
    hook_port, posts = webhook
    dead = free_port()  # nothing listens there
    config = NotifyConfig(
        desktop=False,
        urls=[
            f"mailto://user:hunter2@127.0.0.1:{dead}?mode=insecure&to=op@lab.example",
            f"json://127.0.0.1:{hook_port}/",
        ],
    )
    with caplog.at_level(logging.INFO):
        assert notify_series_end(finished_series, config) is False
    lines = [r.getMessage() for r in caplog.records]  # apprise's own lines too: none
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith("series end not notified: mailto://") and "hunter2" not in lines[0]
    assert len(posts) == 1  # the other target was still told


def test_config_file_is_read_from_the_user_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("LABCTL_CONFIG", str(tmp_path))
    assert load_config() == NotifyConfig(source="(no config file)")
    (tmp_path / "notify.yaml").write_text(
        "desktop: false\nurls:\n  - json://127.0.0.1:9/\nwhen: [stopped, aborted]\n"
    )
    config = load_config()
    assert (config.desktop, config.urls, config.when) == (
        False, ["json://127.0.0.1:9/"], ("stopped", "aborted"),
    )  # fmt: skip
    (tmp_path / "notify.yaml").write_text("url: json://x/\n")
    with pytest.raises(NotifyConfigError, match=r"notify.yaml: unknown key 'url'"):
        load_config()
    (tmp_path / "notify.yaml").write_text("urls: [json://x/\n")
    with pytest.raises(NotifyConfigError, match=r"notify.yaml:2: not readable YAML"):
        load_config()


def test_a_config_with_passwords_readable_by_others_is_warned_about(tmp_path, caplog):
    path = tmp_path / "notify.yaml"
    path.write_text("urls: ['mailtos://op:hunter2@smtp.lab.example?to=op@lab.example']\n")
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="labctl"):
        load_config(path)
    (line,) = [r.getMessage() for r in caplog.records]
    assert "readable by others: chmod 600" in line and "hunter2" not in line
    caplog.clear()
    path.chmod(0o600)
    load_config(path)
    assert not caplog.records


def test_where_the_desktop_cannot_be_told_it_is_one_info_line(
    finished_series, webhook, monkeypatch, caplog
):
    hook_port, posts = webhook
    monkeypatch.setenv("DISPLAY", ":99")  # a desktop, but no D-Bus bindings in this venv
    config = NotifyConfig(desktop=True, urls=[f"json://127.0.0.1:{hook_port}/"])
    with caplog.at_level(logging.INFO):
        assert notify_series_end(finished_series, config) is True
    assert len(posts) == 1
    lines = [r.getMessage() for r in caplog.records]  # apprise's "dbus:// is disabled": none
    assert len(lines) <= 1 and all(line.startswith("no desktop notification") for line in lines)


def test_a_bad_config_never_fails_the_series(finished_series, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("LABCTL_CONFIG", str(tmp_path))
    (tmp_path / "notify.yaml").write_text("when: [sunrise]\n")
    with caplog.at_level(logging.WARNING, logger="labctl"):
        assert notify_series_end(finished_series) is False
    (line,) = [r.getMessage() for r in caplog.records]
    assert "notify.yaml: when: 'sunrise' is not one of" in line


@pytest.mark.slow
def test_series_run_tells_the_webhook_when_it_ends(tmp_path, webhook):
    hook_port, posts = webhook
    config = tmp_path / "config"
    config.mkdir()
    (config / "notify.yaml").write_text(
        f"desktop: false\nurls: ['json://127.0.0.1:{hook_port}/night']\n"
    )
    plan = write_plan(tmp_path)
    env = {"LABCTL_CONFIG": str(config), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "labctl.cli", "series", "run", str(plan), "--out",
         str(tmp_path / "out"), "--time-scale", "virtual", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    ((path, body),) = posts
    assert path == "/night" and body["title"] == "labctl: series night-test done"
    refused = subprocess.run(  # the same directory again: refused before running, no word
        [sys.executable, "-m", "labctl.cli", "series", "run", str(plan), "--out",
         str(tmp_path / "out"), "--time-scale", "virtual", "--quiet"],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert refused.returncode == 2 and len(posts) == 1
