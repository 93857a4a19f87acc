"""Test suite configuration: a real PostGIS prepared by the suite, a real server over HTTP."""

pytest_plugins = ["tests.fix_db", "tests.fix_users", "tests.fix_server", "tests.fix_browser", "tests.fix_mail", "tests.fix_mqtt"]


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """The accessibility measured (tests/test_accessibility.py), page by page, in the report."""
    from tests import test_accessibility

    if test_accessibility.RESULTS:
        terminalreporter.write_sep("=", "accessibilité (axe-core, WCAG 2 A/AA)")
        terminalreporter.write(test_accessibility.write_report())
