"""The access policy file: validated at start-up, with messages that say where and what is wrong."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from resorption.errors import ConfigurationError
from resorption.identity import ANONYMOUS, Principal
from resorption.policy import parse_policy
from tests.fix_users import CATALOG, POLICY

RAW = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "access-policy.yml").read_text())


def broken(change) -> dict:
    raw = copy.deepcopy(RAW)
    change(raw)
    return raw


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (
            lambda r: r["roles"]["operator"]["sites"].update(read="département"),
            ["operator", "sites.read", "département"],
        ),
        (
            lambda r: r["roles"]["operator"]["groups"].update(justice="option:voir_tout"),
            ["voir_tout", "inconnue"],
        ),
        (lambda r: r["roles"]["intervener"]["groups"].pop("owner"), ["intervener", "owner"]),
        (lambda r: r["roles"]["intervener"].pop("actions"), ["intervener", "actions"]),
        (lambda r: r["roles"]["operator"]["sites"].update(export="nation"), ["export", "inconnue"]),
        (lambda r: r["roles"]["local_admin"].update(grantable_roles=["chef"]), ["chef"]),
        (lambda r: r["sensitive_groups"].pop("justice"), ["justice"]),
        (lambda r: r["roles"]["operator"].update(label={"en": "Operator"}), ["operator", "fr"]),
        (lambda r: r.pop("roles"), ["roles"]),
    ],
)
def test_a_broken_policy_is_refused_with_a_clear_message(change, words: list[str]) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_policy(broken(change), CATALOG)
    for word in words:
        assert word in info.value.message, info.value.message


def test_scopes_follow_the_matrix() -> None:
    gironde = dict(area_level="departement", area_code="33", area_departements=frozenset({"33"}))
    operator = Principal(username="o", role="operator", **gironde)
    assert POLICY.scope(operator, "sites").departements == {"33"}
    assert POLICY.scope(operator, "sites", "write").is_empty  # needs the create_site option
    with_option = Principal(username="o", role="operator", options=frozenset({"create_site"}), **gironde)
    assert POLICY.scope(with_option, "sites", "write").departements == {"33"}
    assert POLICY.scope(Principal(username="c", role="correspondent", **gironde), "sites").nation
    assert POLICY.scope(ANONYMOUS, "sites").is_empty
    assert POLICY.readable_groups(operator) == frozenset()
    assert POLICY.readable_groups(
        Principal(username="o", role="operator", options=frozenset({"access_justice"}), **gironde)
    ) == {"justice"}


def test_database_roles_and_settings() -> None:
    admin = Principal(username="a", user_id=7, role="national_admin", area_level="nation")
    settings = POLICY.db_settings(admin)
    assert settings["resorption.sites_scope"] == settings["resorption.actions_scope"] == "*"
    assert settings["resorption.user_id"] == "7"
    assert POLICY.db_role(admin, settings) == "resorption_nationwide_read_finances_justice_owner"
    assert POLICY.db_write_role(admin, settings) == "resorption_nationwide_write_finances_justice_owner"
    assert POLICY.db_role(ANONYMOUS, POLICY.db_settings(ANONYMOUS)) == "resorption_anonymous"


def test_only_settings_reading_the_whole_nation_take_a_nationwide_role() -> None:
    """The role follows the settings the transaction sets, not the principal alone: a national
    reader whose export is narrowed to a département reads under the scoped policies."""
    admin = Principal(username="a", user_id=7, role="national_admin", area_level="nation")
    settings = POLICY.db_settings(admin)
    for narrowed in ("resorption.sites_scope", "resorption.actions_scope"):
        assert POLICY.db_role(admin, {**settings, narrowed: "33"}) == "resorption_read_finances_justice_owner"
        assert POLICY.db_role(admin, {**settings, narrowed: ""}) == "resorption_read_finances_justice_owner"
    gironde = Principal(
        username="g",
        role="operator",
        area_level="departement",
        area_code="33",
        area_departements=frozenset({"33"}),
    )
    assert not POLICY.db_role(gironde, POLICY.db_settings(gironde)).startswith("resorption_nationwide")
