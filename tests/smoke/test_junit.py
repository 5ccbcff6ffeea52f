"""The JUnit XML report: the counts and elements CI systems read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from videogen_cli.core.smoke.junit import junit_xml
from videogen_cli.core.smoke.results import CheckResult, CheckStatus, SmokeReport


def test_one_testcase_per_check_with_failures_and_skips_as_ci_systems_read_them() -> None:
    report = SmokeReport("http", "https://x.supabase.co", {"provider": None}, "run-1", "u-1")
    report.checks = [
        CheckResult("create_pending", CheckStatus.PASSED, 0.25, "job j pending"),
        CheckResult(
            "replay_same_job",
            CheckStatus.FAILED,
            1.5,
            "expected the same job <j1> & a replay mark; got a new job\nsecond line",
        ),
        CheckResult("refund_once_and_invariant", CheckStatus.SKIPPED, 0.0, "needs the ledger"),
    ]
    root = ET.fromstring(junit_xml(report, timestamp=datetime(2026, 11, 25, 20, 0, tzinfo=UTC)))
    assert root.tag == "testsuites"
    suite = root.find("testsuite")
    assert suite is not None
    counted = ("name", "tests", "failures", "errors", "skipped", "time")
    assert {k: suite.get(k) for k in counted} == {
        "name": "videogen smoke",
        "tests": "3",
        "failures": "1",
        "errors": "0",
        "skipped": "1",
        "time": "1.750",
    }
    assert suite.get("timestamp") == "2026-11-25T20:00:00"
    cases = suite.findall("testcase")
    assert [(c.get("name"), c.get("classname"), c.get("time")) for c in cases] == [
        ("create_pending", "videogen.smoke", "0.250"),
        ("replay_same_job", "videogen.smoke", "1.500"),
        ("refund_once_and_invariant", "videogen.smoke", "0.000"),
    ]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "expected the same job <j1> & a replay mark; got a new job"
    assert failure.text == "expected the same job <j1> & a replay mark; got a new job\nsecond line"
    skipped = cases[2].find("skipped")
    assert skipped is not None and skipped.get("message") == "needs the ledger"
    assert cases[0].find("failure") is None and cases[0].find("skipped") is None
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["target"] == "https://x.supabase.co"
    assert properties["environment.provider"] == "unknown"
