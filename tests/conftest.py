"""Test suite configuration: a real PostGIS prepared by the suite, a real server over HTTP."""

pytest_plugins = ["tests.fix_db", "tests.fix_users", "tests.fix_server", "tests.fix_browser", "tests.fix_mqtt"]
