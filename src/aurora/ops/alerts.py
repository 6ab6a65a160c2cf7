"""Alert rules over a run record, and their delivery: log, store, post to a webhook.

Rules are small pure functions returning a list of `Alert` (empty: nothing to say):
- `rule_failed_run`: the run failed. This is the one alert of a failed run: it names the
  error, and the coverage and failed gates of the run go into its message and details;
- `rule_coverage`: a run that succeeded delivered fewer symbols than its universe (the
  quarantined ones, `details["quarantined"]`, named with their reasons);
- `rule_quality`: a validation / quality gate failed in a run that went on;
- `rule_slow_stages`: a stage took more than `ops.slow_factor` times its recent median
  (needs `MIN_SAMPLES` earlier successful runs of that stage, and at least `MIN_SLOW_SECONDS`
  so that noise on sub-second stages does not page anyone);
- `rule_stale`: the latest stored session is older than the session due by the deadline;
- `rule_history_unavailable`: the run-history database cannot be used (it names the file and
  the SQLite error). The other rules work without history, except `rule_slow_stages`, which
  needs earlier runs.

Without a usable history (`history=None`, or a `StoreError` while storing) alerts are still
logged and posted, just not stored: there is no deduplication then, so a lasting condition
is announced again by every run until the database is usable.

Delivery posts `{"text": ..., "alert": {...}}` (Slack-compatible `text`) to
`config.ops.webhook_url` with retries and exponential backoff on connection errors, HTTP 429
and 5xx. The URL is a secret (it often embeds a token): it is never logged or stored, and
delivery errors are described without it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from aurora.config import AuroraConfig
from aurora.errors import StoreError
from aurora.ops.freshness import Freshness
from aurora.ops.history import MOVE_ASIDE, History, RunRecord
from aurora.redaction import redact, redact_url

log = logging.getLogger("aurora.ops.alerts")

MIN_SAMPLES = 3
MIN_SLOW_SECONDS = 1.0
MEDIAN_WINDOW = 10


@dataclass(frozen=True)
class Alert:
    """An alert to raise. `key` identifies the condition (for deduplication while open)."""

    rule: str
    severity: str  # "critical" or "warning"
    message: str
    key: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Delivery:
    """The outcome of posting one alert to the webhook."""

    delivered: bool
    attempts: int
    error: str | None = None


# -- rules -------------------------------------------------------------------------------
def rule_failed_run(run: RunRecord) -> list[Alert]:
    if run.success:
        return []
    details: dict[str, Any] = {"exit_code": run.exit_code}
    text = f"aurora {run.command} failed (exit {run.exit_code}): {run.error or 'unknown'}"
    missing = list(run.details.get("missing_symbols", []))
    if run.coverage is not None and run.coverage < 1.0:
        text += f"; coverage {run.coverage:.1%}, {_listed(missing)} missing"
        details.update(coverage=run.coverage, missing_symbols=missing)
    failed = [q.name for q in run.quality if not q.ok]
    if failed:
        details["failed_gates"] = failed
    return [Alert("failed_run", "critical", text, f"failed_run:{run.id}", details)]


def _listed(symbols: list[str], shown: int = 10) -> str:
    more = f" (+{len(symbols) - shown} more)" if len(symbols) > shown else ""
    return f"{len(symbols)} symbol(s): {', '.join(symbols[:shown])}{more}"


def rule_coverage(run: RunRecord) -> list[Alert]:
    if not run.success or run.coverage is None or run.coverage >= 1.0:
        return []
    missing = list(run.details.get("missing_symbols", []))
    quarantined = dict(run.details.get("quarantined") or {})
    text = f"coverage {run.coverage:.1%} in aurora {run.command}"
    if missing:
        text += f": {_listed(missing)} missing"
    details: dict[str, Any] = {"coverage": run.coverage, "missing_symbols": missing}
    if quarantined:
        shown = "; ".join(f"{s} ({why})" for s, why in list(quarantined.items())[:10])
        more = f" (+{len(quarantined) - 10} more)" if len(quarantined) > 10 else ""
        text += (f"; quarantined: {shown}{more}: check their bars, then `aurora quarantine "
                 "release SYMBOL`")
        details["quarantined"] = quarantined
    return [Alert("coverage", "critical", text, f"coverage:{run.id}", details)]


def rule_quality(run: RunRecord) -> list[Alert]:
    if not run.success:
        return []
    alerts = []
    for result in run.quality:
        if not result.ok:
            first = result.errors[0] if result.errors else "no detail"
            more = f" (+{len(result.errors) - 1} more)" if len(result.errors) > 1 else ""
            alerts.append(Alert("quality_gate", "critical",
                                f"quality gate {result.name} failed: {first}{more}",
                                f"quality_gate:{run.id}:{result.name}",
                                {"gate": result.name, "errors": result.errors[:20]}))
    return alerts


def rule_slow_stages(run: RunRecord, medians: dict[str, tuple[float | None, int]],
                     factor: float) -> list[Alert]:
    """`medians` maps stage name to (median seconds of earlier runs, number of samples)."""
    alerts = []
    for stage in run.stages:
        median, samples = medians.get(stage.name, (None, 0))
        if median is None or samples < MIN_SAMPLES or stage.seconds < MIN_SLOW_SECONDS:
            continue
        if stage.seconds > factor * median:
            alerts.append(Alert(
                "slow_stage", "warning",
                f"stage {stage.name} took {stage.seconds:.1f}s, {stage.seconds / median:.1f}x "
                f"its median of {median:.1f}s over the last {samples} runs",
                f"slow_stage:{run.id}:{stage.name}",
                {"stage": stage.name, "seconds": stage.seconds, "median": median,
                 "samples": samples, "factor": factor},
            ))
    return alerts


def rule_stale(freshness: Freshness | None) -> list[Alert]:
    if freshness is None or not freshness.stale:
        return []
    return [Alert("stale_data", "critical", f"data stale past the deadline: {freshness.summary()}",
                  f"stale_data:{freshness.due_session.isoformat()}", freshness.to_dict())]


def rule_history_unavailable(problem: str | None, run: RunRecord) -> list[Alert]:
    """`problem` is the one-line error of the unusable run-history database (None: usable)."""
    if problem is None:
        return []
    return [Alert("history_unavailable", "critical",
                  f"run history unavailable: {problem}; alerts and metrics still work but runs "
                  f"are not recorded: {MOVE_ASIDE}",
                  f"history_unavailable:{run.id}", {"error": problem})]


def evaluate_rules(run: RunRecord, history: History | None, freshness: Freshness | None,
                   config: AuroraConfig) -> list[Alert]:
    """All alerts for `run` (median timings come from earlier runs in `history`; with no
    history, None, the slow-stage rule has nothing to compare with and is skipped)."""
    medians = ({s.name: history.stage_median(s.name, MEDIAN_WINDOW, exclude_run=run.id)
                for s in run.stages} if history is not None else {})
    return [
        *rule_failed_run(run),
        *rule_coverage(run),
        *rule_quality(run),
        *rule_slow_stages(run, medians, config.ops.slow_factor),
        *rule_stale(freshness),
    ]


# -- delivery ----------------------------------------------------------------------------
def naming_report(alerts: Iterable[Alert], report: Path | str | None) -> list[Alert]:
    """`alerts` with `details["report"]`: the report the run published, what the person
    alerted opens first (unchanged when the run published none)."""
    if report is None:
        return list(alerts)
    return [replace(a, details={**a.details, "report": str(report)}) for a in alerts]


def alert_payload(alert: Alert, run_id: str | None, alert_id: int | None = None) -> dict:
    """The JSON body posted to the webhook (Slack reads `text`, which names the run's
    report when there is one)."""
    icon = ":rotating_light:" if alert.severity == "critical" else ":warning:"
    report = alert.details.get("report")
    return {
        "text": f"{icon} Aurora {alert.severity}: {alert.message}"
                + (f" (report: {report})" if report else ""),
        "alert": {**asdict(alert), "id": alert_id, "run_id": run_id},
    }


WEBHOOK_MAX_BACKOFF_SECONDS = 30.0


def post_webhook(url: str, payload: dict, *, retries: int = 3, backoff_seconds: float = 0.5,
                 timeout_seconds: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> Delivery:
    """POST `payload` as JSON to `url`; retry connection errors, timeouts, 429 and 5xx.

    Each POST must get its status line and headers within `timeout_seconds` in all
    (`aurora.bounded_http`: a receiver that drips bytes cannot hold the command); the body
    of the answer is not read. Retries follow `aurora.retry.RetryPolicy`: at most `retries`
    retries, waiting `backoff_seconds` doubling each time (no jitter), capped at 30 s, so a
    delivery takes at most (retries + 1) * timeout_seconds plus those waits. Any other
    answer (3xx, 4xx) is final at once. Never raises for delivery problems: the result says
    what happened, without the URL.
    """
    import httpx  # deferred: start-up time (only a run with a webhook posts)

    from aurora.bounded_http import Overdue, bounded_request
    from aurora.retry import GaveUp, RetryPolicy, TransientFailure

    policy = RetryPolicy(max_retries=retries, base_seconds=backoff_seconds,
                         max_seconds=WEBHOOK_MAX_BACKOFF_SECONDS, jitter=False)
    where = redact_url(url)
    with httpx.Client(timeout=timeout_seconds, follow_redirects=False) as client:

        def attempt(retries_done: int) -> Delivery:
            try:
                response = bounded_request(client, "POST", url, seconds=timeout_seconds,
                                           max_body_bytes=0, json=payload)
            except Overdue as exc:
                raise TransientFailure(f"timeout ({exc}) posting to {where}") from None
            except httpx.HTTPError as exc:
                raise TransientFailure(f"{type(exc).__name__} posting to {where}") from None
            if response.status < 300:
                return Delivery(True, retries_done + 1)
            error = f"HTTP {response.status} from {where}"
            if response.status == 429 or response.status >= 500:
                raise TransientFailure(error)
            return Delivery(False, retries_done + 1, error)

        try:
            return policy.call(attempt, sleep=sleep)
        except GaveUp as exc:
            return Delivery(False, exc.attempts, exc.problem)


Raised = list[tuple[int | None, Alert, Delivery | None]]


def raise_alerts(alerts: Iterable[Alert], history: History | None, config: AuroraConfig,
                 run_id: str | None, secrets: tuple[str, ...] = (), *,
                 sleep: Callable[[float], None] = time.sleep) -> Raised:
    """Log, store and post each alert not already open; return (id, alert, delivery).

    Without a usable `history` (None, or StoreError while storing: logged once) alerts are
    logged and posted all the same, with id None.
    """
    raised: Raised = []
    url = config.ops.webhook_url.get_secret_value() if config.ops.webhook_url else None
    for alert in alerts:
        alert = Alert(alert.rule, alert.severity, redact(alert.message, secrets), alert.key,
                      alert.details)
        alert_id: int | None = None
        if history is not None:
            try:
                alert_id = history.add_alert(run_id=run_id, rule=alert.rule, key=alert.key,
                                             severity=alert.severity, message=alert.message,
                                             details=alert.details)
            except StoreError as exc:
                log.warning("alerts not stored: %s", redact(str(exc), secrets))
                history = None
            else:
                if alert_id is None:
                    continue  # the same condition is already open and was announced
        # INFO: the alert is stored and delivered; on a terminal the command's own error
        # line already says what failed, and saying it twice helps nobody
        log.info("alert [%s] %s", alert.severity, alert.message)
        delivery = None
        if url:
            delivery = post_webhook(url, alert_payload(alert, run_id, alert_id), sleep=sleep)
            if history is not None and alert_id is not None:
                try:
                    history.mark_delivery(alert_id, delivery.delivered, delivery.attempts,
                                          delivery.error and redact(delivery.error, secrets))
                except StoreError as exc:
                    log.warning("alerts not stored: %s", redact(str(exc), secrets))
                    history = None
            if not delivery.delivered:
                log.warning("alert %s [%s] not delivered after %d attempt(s): %s",
                            alert_id if alert_id is not None else "(not stored)", alert.rule,
                            delivery.attempts, delivery.error)
        raised.append((alert_id, alert, delivery))
    return raised
