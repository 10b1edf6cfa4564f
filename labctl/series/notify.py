"""Word when the night ends: the operator is told that a series finished, stopped or failed.

The rule: telling is best effort and never costs the series. Targets are
configured once per user, in ``notify.yaml`` in labctl's config directory
(``$LABCTL_CONFIG``, else ``$XDG_CONFIG_HOME/labctl``, else ``~/.config/labctl``)
— never in plans or station files, which are shared and hold no secrets::

    desktop: true            # a desktop notification where there is a desktop (default)
    urls:                    # apprise URLs: e-mail, webhooks, chat services
      - mailtos://user:app-password@smtp.example.org?to=operator@example.org
      - json://hooks.example.org/labctl
    when: [done, done-with-failures, stopped, aborted]  # which ends to tell (default: all)

Sending goes through apprise (a kept library covering SMTP, JSON/form
webhooks, Slack, Matrix, ntfy, … and the desktop), one target at a time so a
failure names its target (password masked). Every failure — an unreadable
config, a refused connection — is one logged line; :func:`notify_series_end`
never raises.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CONFIG_ENV = "LABCTL_CONFIG"
CONFIG_NAME = "notify.yaml"
ENDS = ("done", "done-with-failures", "stopped", "aborted")


@dataclass
class NotifyConfig:
    desktop: bool = True
    urls: list[str] = field(default_factory=list)
    when: tuple[str, ...] = ENDS
    source: str = ""


def config_dir() -> Path:
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV]).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / "labctl"


class NotifyConfigError(ValueError):
    """notify.yaml cannot be used; the message names the file and the key."""


def load_config(path: str | Path | None = None) -> NotifyConfig:
    """The user's notification targets (defaults: desktop only when the file is absent)."""
    import yaml

    path = Path(path) if path is not None else config_dir() / CONFIG_NAME
    if not path.exists():
        return NotifyConfig(source="(no config file)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        where = getattr(exc, "problem_mark", None)
        line = f":{where.line + 1}" if where is not None else ""
        raise NotifyConfigError(f"{path}{line}: not readable YAML: {exc}") from None
    if not isinstance(data, dict):
        raise NotifyConfigError(f"{path}: expected keys desktop, urls, when")
    unknown = set(data) - {"desktop", "urls", "when"}
    if unknown:
        raise NotifyConfigError(f"{path}: unknown key {sorted(unknown)[0]!r} (desktop, urls, when)")
    urls = data.get("urls") or []
    if isinstance(urls, str):
        urls = [urls]
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        raise NotifyConfigError(f"{path}: urls: a list of apprise URLs")
    when = data.get("when") or ENDS
    when = (when,) if isinstance(when, str) else tuple(when)
    bad = [e for e in when if e not in ENDS]
    if bad:
        raise NotifyConfigError(f"{path}: when: {bad[0]!r} is not one of {', '.join(ENDS)}")
    if path.stat().st_mode & 0o077 and any(_has_password(u) for u in urls):
        log.warning("%s holds passwords and is readable by others: chmod 600 %s", path, path)
    return NotifyConfig(bool(data.get("desktop", True)), urls, when, str(path))


def _has_password(url: str) -> bool:
    from urllib.parse import urlsplit

    try:
        return bool(urlsplit(url).password)
    except ValueError:
        return True


def desktop_url() -> str | None:
    """apprise's desktop target for this machine, or None where there is no desktop."""
    if sys.platform == "darwin":
        return "macosx://"
    if sys.platform == "win32":
        return "windows://"
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return "dbus://"  # needs dbus-python (Debian: python3-dbus); glib:// is tried after
    return None


def series_end_message(directory: str | Path) -> tuple[str, str, str] | None:
    """(state, title, body) of the ended series in ``directory``, or None if it has none."""
    from labctl.errors import LabctlError
    from labctl.series.catalog import Catalog

    directory = Path(directory)
    try:
        with Catalog.read_only(directory) as catalog:
            series = catalog.series() or {}
            steps = catalog.steps()
    except LabctlError:
        return None
    state = series.get("state") or "unknown"
    count = {s: sum(1 for r in steps if r["state"] == s) for s in ("done", "failed", "skipped")}
    title = f"labctl: series {series.get('name')} {state}"
    lines = [
        f"{count['done']} of {len(steps)} steps done, {count['failed']} failed, "
        f"{count['skipped']} skipped.",
    ]
    if series.get("message"):
        lines.insert(0, series["message"])
    lines.append(f"Series directory: {directory.resolve()}")
    if (directory / "report.html").exists():
        lines.append(f"Report: {(directory / 'report.html').resolve()}")
    return state, title, "\n".join(lines)


def _send(url: str, title: str, body: str, kind: str) -> str | None:
    """One target; None when sent, else why not (one line, secrets masked)."""
    import apprise

    target = apprise.Apprise()
    library_log = logging.getLogger("apprise")
    propagate, library_log.propagate = library_log.propagate, False  # its lines become ours
    try:
        with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as captured:
            if not target.add(url):
                shown = url.split("://", 1)[0] + "://…"
                return f"{shown}: not a usable apprise URL (or its plugin is not installed)"
            shown = target[0].url(privacy=True)
            if target.notify(title=title, body=body, notify_type=kind):
                return None
    finally:
        library_log.propagate = propagate
    why = " ".join(line.strip() for line in captured.getvalue().splitlines() if line.strip())
    return f"{shown}: {why[-300:] or 'not delivered'}"


def notify_series_end(directory: str | Path, config: NotifyConfig | None = None) -> bool:
    """Tell every configured target how the series in ``directory`` ended; True if all were
    told. Never raises: a failure is one warning line naming the target."""
    try:
        import apprise

        if config is None:
            config = load_config()
        message = series_end_message(directory)
        if message is None:
            return False
        state, title, body = message
        if state not in config.when:
            return True
        kind = {
            "done": apprise.NotifyType.SUCCESS,
            "done-with-failures": apprise.NotifyType.WARNING,
        }.get(state, apprise.NotifyType.FAILURE)
        urls = list(config.urls)
        desktop = desktop_url() if config.desktop else None
        ok = True
        for url in urls:
            failure = _send(url, title, body, kind)
            if failure:
                ok = False
                log.warning("series end not notified: %s", failure)
        if desktop is not None:
            failure = _send(desktop, title, body, kind)
            if failure and desktop == "dbus://":
                failure = _send("glib://", title, body, kind)
            if failure:  # a desktop without bindings is the machine's business, not an error
                log.info(
                    "no desktop notification (%s): on Linux it needs dbus-python or PyGObject "
                    "(Debian: python3-dbus)",
                    failure,
                )
        return ok
    except Exception as exc:  # noqa: BLE001 - telling must never fail the series
        log.warning("series end not notified: %s: %s", type(exc).__name__, exc)
        return False
