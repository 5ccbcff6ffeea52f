"""JUnit XML, the report format GitHub Actions, GitLab and Jenkins all display.

One <testsuite> inside <testsuites>, one <testcase> per check (classname
``videogen.smoke``): failures carry the check's message as both the ``message``
attribute (the one-line summary dashboards show) and the element text; skips carry
their reason. Written with the standard library's ElementTree.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

from videogen_cli.core.smoke.results import CheckStatus, SmokeReport

CLASSNAME = "videogen.smoke"
SUITE_NAME = "videogen smoke"


def junit_xml(report: SmokeReport, *, timestamp: datetime | None = None) -> bytes:
    failures = report.count(CheckStatus.FAILED)
    skipped = report.count(CheckStatus.SKIPPED)
    counts = {
        "tests": str(len(report.checks)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{report.seconds:.3f}",
    }
    root = ET.Element("testsuites", {"name": SUITE_NAME, **counts})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": SUITE_NAME,
            **counts,
            "timestamp": (timestamp or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": socket.gethostname(),
        },
    )
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("target", report.target),
        ("mode", report.mode),
        ("run_id", report.run_id),
        ("user_id", report.user_id or ""),
        *((f"environment.{k}", _shown(v)) for k, v in report.environment.items()),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": value})
    for check in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            {"name": check.name, "classname": CLASSNAME, "time": f"{check.seconds:.3f}"},
        )
        if check.status is CheckStatus.FAILED:
            failure = ET.SubElement(
                case, "failure", {"message": _one_line(check.message), "type": "AssertionError"}
            )
            failure.text = check.message
        elif check.status is CheckStatus.SKIPPED:
            ET.SubElement(case, "skipped", {"message": _one_line(check.message)})
        elif check.message:
            out = ET.SubElement(case, "system-out")
            out.text = check.message
    if report.unreachable:
        err = ET.SubElement(suite, "system-err")
        err.text = report.unreachable
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body + b"\n"


def write_junit(report: SmokeReport, path: Path) -> None:
    """Write the report; the folder is created when missing (CI report folders often are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(junit_xml(report))


def _shown(value: object) -> str:
    return "unknown" if value is None else str(value)


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:500]
