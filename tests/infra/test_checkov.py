"""checkov over infra/: no failed check, no file it could not parse, every skip justified.

checkov exits 0 on Bicep it cannot parse and logs (without failing) a check that crashed, so
this asserts on its JSON summary and its log, not on its exit code."""

from typing import Any

from tests.infra.bicep import INFRA, ROOT, bicep_files, resources, skip_comments


def test_checkov_reports_no_failed_check(checkov_report: tuple[dict[str, Any], str]) -> None:
    report, _ = checkov_report
    failed = [
        f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["failed"] == 0


def test_checkov_parses_every_bicep_file(checkov_report: tuple[dict[str, Any], str]) -> None:
    report, stderr = checkov_report
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    assert "Error parsing" not in stderr
    assert "Failed to run check" not in stderr, stderr[-2000:]
    checked = {
        c["file_path"]
        for kind in ("passed_checks", "skipped_checks")
        for c in report["results"][kind]
    }
    with_resources = {"/" + p.relative_to(INFRA).as_posix() for p in bicep_files() if resources(p)}
    # Every file declaring resources checkov knows rules for was scanned (not silently dropped).
    assert {"/app/function.bicep", "/app/storage.bicep", "/app/keyvault.bicep"} <= checked
    assert checked <= with_resources
    assert report["summary"]["resource_count"] >= len(with_resources)


def test_every_skipped_check_is_justified_where_it_is_skipped(
    checkov_report: tuple[dict[str, Any], str],
) -> None:
    report, _ = checkov_report
    skipped = report["results"]["skipped_checks"]
    assert skipped, "expected the documented skips (see infra/README.md)"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "").strip()
        assert len(reason) >= 30, check["check_id"]
    for path in bicep_files():
        for check_id, reason in skip_comments(path):
            assert len(reason) >= 30, f"{path.relative_to(ROOT)}: {check_id} needs a reason"
