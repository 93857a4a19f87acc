"""What a principal may read and do, from `config/access-policy.yml`.

The policy is data, validated once at start-up. Everything that reads data asks
here which fields exist for the caller (a forbidden property is treated exactly
like one that does not exist), which database role the transaction takes
(column privileges) and which scopes it sets (row-level security). PostgreSQL
enforces the last two, so a bug in Python fails closed.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from resorption.catalog import Collection, Field, Label
from resorption.errors import ConfigurationError
from resorption.identity import Principal

SCOPES = ("nation", "area", "none")
GRANTS = ("always", "never")
SITE_ACTIONS = ("read", "write", "close", "delete")
ACTION_ACTIONS = ("read", "write")
# The collections whose rows and fields the roles govern, each with the collection whose
# rules of the policy apply to it (a site's changelog follows the sites); every other
# collection is public.
# The journals of sites and actions (sql/150_journal.sql), each with the collection of its
# parents: governed by its rules too, and written (a message) by whoever reads a parent.
JOURNALS: Mapping[str, str] = {"site_comments": "sites", "action_comments": "actions"}
PROTECTED: Mapping[str, str] = {
    "sites": "sites",
    "actions": "actions",
    "site_changes": "sites",
    "action_changes": "actions",
    # the activity feed (sql/190_activity.sql): each event also under its source's own rules
    "activity": "sites",
    **JOURNALS,
}
# How long an author may edit or delete a message, unless the policy says (`journal:`).
DEFAULT_EDIT_DELAY_HOURS = 24

ANONYMOUS_DB_ROLE = "resorption_anonymous"
READER_DB_ROLE = "resorption_read"
WRITER_DB_ROLE = "resorption_write"
# The two kinds of transaction role, which the read policies name (sql/005_row_security.sql):
# each reader and writer role is a member of one.
NATIONWIDE_ROLE = "resorption_nationwide"
SCOPED_ROLE = "resorption_scoped"
# resorption_read_owner reads under the scoped policies, resorption_nationwide_read_owner
# under the nationwide ones (and so for the writers).
NATIONWIDE_READER_DB_ROLE = "resorption_nationwide_read"
NATIONWIDE_WRITER_DB_ROLE = "resorption_nationwide_write"


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a principal may act: the nation, some départements, or nowhere."""

    nation: bool
    departements: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        """Nowhere at all."""
        return not self.nation and not self.departements

    def contains(self, departement: str | None) -> bool:
        """Whether the scope covers `departement`."""
        return self.nation or (departement is not None and departement in self.departements)

    def as_setting(self) -> str:
        """The value row-level security reads: '*' for the nation, else a list of codes."""
        return "*" if self.nation else ",".join(sorted(self.departements))


NOWHERE = Scope(nation=False)
NATION = Scope(nation=True)


@dataclass(frozen=True, slots=True)
class Role:
    """One application role: scopes per collection and action, grants per sensitive group."""

    name: str
    label: Label
    rules: Mapping[str, Mapping[str, str]]  # collection → action → scope or option:…
    groups: Mapping[str, str]  # sensitive group → always / never / option:…
    export: str
    manage_users: str
    grantable_roles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Policy:
    """The whole access policy."""

    sensitive_groups: Mapping[str, Label]
    sensitive_tables: Mapping[str, tuple[str, ...]]
    options: Mapping[str, Label]
    roles: Mapping[str, Role]
    # How long the author of a journal message may edit or delete it.
    journal_edit_delay_hours: int = DEFAULT_EDIT_DELAY_HOURS

    # -- reading ---------------------------------------------------------------

    def readable_groups(self, principal: Principal) -> frozenset[str]:
        """The sensitive groups this principal may read."""
        role = self.roles.get(principal.role or "")
        if role is None:
            return frozenset()
        return frozenset(g for g, grant in role.groups.items() if self._granted(grant, principal))

    def scope(self, principal: Principal, collection: str, action: str = "read") -> Scope:
        """Where `principal` may do `action` on `collection` (sites or actions, or one governed by them)."""
        role = self.roles.get(principal.role or "")
        if role is None:
            return NOWHERE
        rule = role.rules.get(PROTECTED.get(collection, collection), {}).get(action, "none")
        if rule.startswith("option:"):
            rule = "area" if rule.removeprefix("option:") in principal.options else "none"
        if rule == "nation":
            return NATION
        if rule == "area":
            if principal.area_departements is None:  # a national area
                return NATION
            return Scope(nation=False, departements=principal.area_departements)
        return NOWHERE

    def write_scope(self, principal: Principal, collection: str, action: str = "write") -> Scope:
        """Where `principal` may `write`, `close` or `delete` items of `collection`.

        The policy has no rule for deleting actions: only those who may delete sites
        (national administrators) may delete them.
        """
        if collection in JOURNALS:  # a message: on any parent the caller reads (RLS decides the rest)
            return self.scope(principal, JOURNALS[collection])
        if collection == "actions" and action == "delete":
            return self.scope(principal, "sites", "delete")
        if collection == "actions" and action == "close":
            return self.scope(principal, "actions", "write")
        return self.scope(principal, collection, action)

    def export_scope(self, principal: Principal) -> Scope:
        """Where `principal` may export data (the role's `export`: nation, its area or nowhere)."""
        role = self.roles.get(principal.role or "")
        rule = role.export if role is not None else "none"
        if rule.startswith("option:"):
            rule = "area" if rule.removeprefix("option:") in principal.options else "none"
        if rule == "nation" or (rule == "area" and principal.area_departements is None):
            return NATION
        if rule == "area":
            return Scope(nation=False, departements=principal.area_departements)
        return NOWHERE

    def actor_scope(self, principal: Principal) -> Scope:
        """Where `principal` may be declared actor of a site (and declare others there): its
        own intervention area, when its role may carry actions at all (not an observer)."""
        if self.scope(principal, "actions", "write").is_empty:
            return NOWHERE
        if principal.area_departements is None:  # a national area
            return NATION
        return Scope(nation=False, departements=principal.area_departements)

    def manage_scope(self, principal: Principal) -> Scope:
        """Where `principal` manages users and access requests (the role's `manage_users`)."""
        role = self.roles.get(principal.role or "")
        rule = role.manage_users if role is not None else "none"
        if rule.startswith("option:"):
            rule = "area" if rule.removeprefix("option:") in principal.options else "none"
        if rule == "nation" or (rule == "area" and principal.area_departements is None):
            return NATION
        if rule == "area":
            return Scope(nation=False, departements=principal.area_departements)
        return NOWHERE

    def grantable_roles(self, principal: Principal) -> tuple[str, ...]:
        """The roles `principal` may give: its role's `grantable_roles`; every role for a
        national manager whose role lists none; nothing for who manages no one."""
        role = self.roles.get(principal.role or "")
        if role is None or self.manage_scope(principal).is_empty:
            return ()
        if role.grantable_roles:
            return role.grantable_roles
        return tuple(self.roles) if role.manage_users == "nation" else ()

    def grantable_options(self, principal: Principal) -> tuple[str, ...]:
        """The options `principal` may give: those the rules of its grantable roles name."""
        named: set[str] = set()
        for name in self.grantable_roles(principal):
            role = self.roles[name]
            grants = [*role.groups.values(), role.export, role.manage_users]
            grants += [g for actions in role.rules.values() for g in actions.values()]
            named |= {g.removeprefix("option:") for g in grants if g.startswith("option:")}
        return tuple(o for o in self.options if o in named)

    def managers(self) -> dict[str, str]:
        """The roles that manage users, with their reach (nation or area): who hears of a request."""
        return {n: r.manage_users for n, r in self.roles.items() if r.manage_users in ("nation", "area")}

    def manage_settings(self, principal: Principal) -> dict[str, str]:
        """Transaction settings of the account functions (sql/205_accounts_lifecycle.sql)."""
        scope = self.manage_scope(principal)
        return {
            "resorption.manage_scope": "" if scope.is_empty else scope.as_setting(),
            "resorption.grantable_roles": ",".join(self.grantable_roles(principal)),
            "resorption.grantable_options": ",".join(self.grantable_options(principal)),
        }

    def may_read(self, principal: Principal, collection: Collection) -> bool:
        """Whether the collection exists at all for this principal."""
        if collection.id not in PROTECTED:
            return True
        return not self.scope(principal, collection.id).is_empty

    def readable_fields(self, principal: Principal, collection: Collection) -> tuple[Field, ...]:
        """The fields of `collection` this principal may see, in catalog order."""
        key = ("fields", principal, id(collection))
        hit = _answers.get((id(self), key))
        if hit is not None and hit[0] is self and hit[2] is collection:
            return hit[1]
        groups = self.readable_groups(principal)
        fields = tuple(
            f for f in collection.fields.values() if f.group.sensitive is None or f.group.sensitive in groups
        )
        _remember(self, key, fields, collection)
        return fields

    # -- what the database is told ---------------------------------------------

    def db_role(self, principal: Principal, settings: Mapping[str, str]) -> str:
        """The database role of a transaction setting `settings`: its column privileges are the
        readable groups; its read policies the nationwide ones when those settings read the
        whole nation (`nationwide`)."""
        if principal.is_anonymous:
            return ANONYMOUS_DB_ROLE
        return reader_role(self.readable_groups(principal), nationwide(settings))

    def db_write_role(self, principal: Principal, settings: Mapping[str, str]) -> str:
        """The database role of a write: it writes the non-sensitive columns plus the readable
        groups', and reads as `db_role`."""
        return writer_role(self.readable_groups(principal), nationwide(settings))

    def db_settings(self, principal: Principal) -> dict[str, str]:
        """Transaction settings for row-level security and the audit log."""
        key = ("settings", principal)
        hit = _answers.get((id(self), key))
        if hit is not None and hit[0] is self:
            return dict(hit[1])
        settings = self._db_settings(principal)
        _remember(self, key, settings)
        return dict(settings)

    def _db_settings(self, principal: Principal) -> dict[str, str]:
        return {
            "resorption.sites_scope": self.scope(principal, "sites").as_setting(),
            "resorption.actions_scope": self.scope(principal, "actions").as_setting(),
            "resorption.sites_write_scope": self.write_scope(principal, "sites").as_setting(),
            "resorption.sites_close_scope": self.write_scope(principal, "sites", "close").as_setting(),
            "resorption.sites_delete_scope": self.write_scope(principal, "sites", "delete").as_setting(),
            "resorption.actions_write_scope": self.write_scope(principal, "actions").as_setting(),
            "resorption.actions_delete_scope": self.write_scope(principal, "actions", "delete").as_setting(),
            "resorption.actors_scope": self.actor_scope(principal).as_setting(),
            "resorption.user_id": str(principal.user_id or ""),
            "resorption.username": principal.username,
            "resorption.role": principal.role or "",
            "resorption.organisation_id": str(principal.organisation_id or ""),
            "resorption.journal_edit_delay": f"{self.journal_edit_delay_hours} hours",
        }

    def _granted(self, grant: str, principal: Principal) -> bool:
        if grant == "always":
            return True
        if grant.startswith("option:"):
            return grant.removeprefix("option:") in principal.options
        return False


def nationwide(settings: Mapping[str, str]) -> bool:
    """Whether a transaction's settings read the whole nation's sites and actions: then its role
    is a nationwide one, whose read policies test no row (sql/005_row_security.sql)."""
    return all(settings.get(f"resorption.{c}_scope") == "*" for c in ("sites", "actions"))


def reader_role(groups: frozenset[str] | set[str], nationwide: bool = False) -> str:
    """The database role reading the non-sensitive columns plus those of `groups`, under the
    nationwide read policies or the scoped ones."""
    return "_".join([NATIONWIDE_READER_DB_ROLE if nationwide else READER_DB_ROLE, *sorted(groups)])


def writer_role(groups: frozenset[str] | set[str], nationwide: bool = False) -> str:
    """The database role writing the non-sensitive columns plus those of `groups` (and reading
    them as `reader_role`)."""
    return "_".join([NATIONWIDE_WRITER_DB_ROLE if nationwide else WRITER_DB_ROLE, *sorted(groups)])


# -- loading and validation ------------------------------------------------------


def _label(raw: Any, where: str) -> Label:
    if not isinstance(raw, Mapping) or not raw.get("fr"):
        raise ConfigurationError(f"access-policy.yml, {where} : un libellé français (fr) est obligatoire.")
    return Label(raw["fr"], raw.get("en") or raw["fr"])


def _check_grant(value: Any, allowed: tuple[str, ...], options: Mapping[str, Label], where: str) -> str:
    if isinstance(value, str) and value.startswith("option:"):
        if value.removeprefix("option:") not in options:
            raise ConfigurationError(
                f"access-policy.yml, {where} : option « {value.removeprefix('option:')} » inconnue "
                f"(options : {', '.join(options)})."
            )
        return value
    if value not in allowed:
        raise ConfigurationError(
            f"access-policy.yml, {where} : « {value} » n'est pas permis "
            f"({', '.join(allowed)} ou option:<nom>)."
        )
    return value


def _role(name: str, raw: Any, groups: Mapping[str, Label], options: Mapping[str, Label]) -> Role:
    where = f"rôle « {name} »"
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"access-policy.yml, {where} : une table de règles est attendue.")
    rules: dict[str, dict[str, str]] = {}
    for collection, actions in (("sites", SITE_ACTIONS), ("actions", ACTION_ACTIONS)):
        given = raw.get(collection)
        if not isinstance(given, Mapping):
            raise ConfigurationError(f"access-policy.yml, {where} : la clé « {collection} » manque.")
        unknown = set(given) - set(actions)
        if unknown:
            raise ConfigurationError(
                f"access-policy.yml, {where}, {collection} : action « {unknown.pop()} » inconnue "
                f"({', '.join(actions)})."
            )
        rules[collection] = {
            a: _check_grant(given.get(a, "none"), SCOPES, options, f"{where}, {collection}.{a}")
            for a in actions
        }
    given_groups = raw.get("groups") or {}
    if set(given_groups) != set(groups):
        missing = sorted(set(groups) ^ set(given_groups))
        raise ConfigurationError(
            f"access-policy.yml, {where} : « groups » doit dire always, never ou option:… pour chaque "
            f"groupe sensible ({', '.join(groups)}) ; en trop ou manquant : {', '.join(missing)}."
        )
    return Role(
        name=name,
        label=_label(raw.get("label"), where),
        rules=rules,
        groups={g: _check_grant(v, GRANTS, options, f"{where}, groups.{g}") for g, v in given_groups.items()},
        export=_check_grant(raw.get("export", "none"), SCOPES, options, f"{where}, export"),
        manage_users=_check_grant(raw.get("manage_users", "none"), SCOPES, options, f"{where}, manage_users"),
        grantable_roles=tuple(raw.get("grantable_roles") or ()),
    )


def parse_policy(raw: Any, catalog: Mapping[str, Collection]) -> Policy:
    """Validate the policy document against the catalog; errors say where and what is wrong."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError("access-policy.yml : le document doit être une table.")
    for key in ("sensitive_groups", "options", "roles"):
        if not isinstance(raw.get(key), Mapping) or not raw[key]:
            raise ConfigurationError(f"access-policy.yml : la clé « {key} » est obligatoire.")
    groups = {name: _label(v, f"groupe « {name} »") for name, v in raw["sensitive_groups"].items()}
    declared = {g.sensitive for c in catalog.values() for g in c.groups.values() if g.sensitive}
    undeclared = sorted(declared - set(groups))
    if undeclared:
        raise ConfigurationError(
            f"access-policy.yml : le catalogue marque sensible le groupe « {undeclared[0]} », "
            "absent de sensitive_groups."
        )
    options = {name: _label(v, f"option « {name} »") for name, v in raw["options"].items()}
    roles = {name: _role(name, v, groups, options) for name, v in raw["roles"].items()}
    for role in roles.values():
        for grantable in role.grantable_roles:
            if grantable not in roles:
                raise ConfigurationError(
                    f"access-policy.yml, rôle « {role.name} » : "
                    f"grantable_roles cite « {grantable} », inconnu."
                )
    tables = raw.get("sensitive_tables") or {}
    for group in tables:
        if group not in groups:
            raise ConfigurationError(
                f"access-policy.yml : sensitive_tables cite le groupe « {group} », inconnu."
            )
    for collection in sorted(set(PROTECTED.values())):
        if collection not in catalog:
            raise ConfigurationError(
                f"access-policy.yml : la collection protégée « {collection} » manque au catalogue."
            )
    return Policy(
        sensitive_groups=groups,
        sensitive_tables={g: tuple(t) for g, t in tables.items()},
        options=options,
        roles=roles,
        journal_edit_delay_hours=_edit_delay(raw.get("journal")),
    )


def _edit_delay(raw: Any) -> int:
    """The `journal: edit_delay_hours` of the policy: a whole number of hours, 0 to 8760."""
    if raw is None:
        return DEFAULT_EDIT_DELAY_HOURS
    hours = raw.get("edit_delay_hours") if isinstance(raw, Mapping) else None
    if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= 8760:
        raise ConfigurationError(
            "access-policy.yml, journal.edit_delay_hours : un nombre entier d'heures (0 à 8760) est attendu."
        )
    return hours


# What a policy answered for a principal (its readable fields, its transaction settings): the
# answer depends on the principal's every attribute (the key) and on the policy, which never
# changes once loaded, so each request of the same user need not work it out again (~0.1 ms).
# The policy (and the collection) are kept in the value, so that their id()s are never reused.
_answers: dict[tuple[int, tuple[Any, ...]], tuple[Policy, Any, Any]] = {}
_ANSWERS_MAX = 4096


def _remember(policy: Policy, key: tuple[Any, ...], value: Any, also: Any = None) -> None:
    if len(_answers) >= _ANSWERS_MAX:
        _answers.clear()
    _answers[(id(policy), key)] = (policy, value, also)


@functools.cache
def load_policy(path: Path, catalog_dir: Path) -> Policy:
    """Read and validate the policy file once per process."""
    from resorption.catalog import load_catalog

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path} est illisible ({exc.strerror}).") from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path.name} : YAML invalide ({exc}).") from exc
    return parse_policy(raw, load_catalog(catalog_dir))
