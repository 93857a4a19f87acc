"""The MQTT broker: the embedded Mosquitto, and its dynamic security driven from our accounts.

When ``MQTT_URL`` is unset, Résorption runs its own Mosquitto (Debian's ``mosquitto``, which
ships the dynamic-security plugin) in ``<project>/.local/mosquitto`` (``mosquitto.conf``,
``data/`` with the persistence and ``dynamic-security.json``, ``mosquitto.log``), listening
on 127.0.0.1 only, on ``$RESORPTION_MQTT_PORT`` (else the embedded PostgreSQL's port + 100).
Like the embedded PostGIS (embedded.py) nothing runs at import and each function is
idempotent. In production ``MQTT_URL`` names the broker and its dynamic-security
administrator: ``mqtt://admin:password@host:1883``.

Access lists are derived from the policy: each user is a dynamic-security client with a role
of its own (``user:<name>``) that may subscribe to ``resorption/v1/<collection>/departement/
<code>/#`` for the collections and départements it reads (``resorption/v1/<collection>/#``
for a national scope), and to the same under ``resorption/v1/groupes/<tier>/`` for the exact
set of sensitive groups of the collection it reads (notifications.tiers), nothing else; nobody
but the publisher may publish. The password of a user's client is their newest API token, set
when it is issued (accounts.issue_token): only then does the plaintext exist; the broker keeps
its own salted hash, and the client's description names the token (``jeton:<id>``). The client
is enabled only while that very token is live: revoking or letting expire the token that is the
password shuts the broker's door even when the user holds other tokens (the broker knows one
password per client).

    python -m resorption.broker start|stop|url|status
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import paho.mqtt.client as mqtt

from resorption import embedded

DYNSEC_PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
)
ADMIN_USER = "resorption-admin"
TOPIC_ROOT = "resorption/v1"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"


class BrokerError(RuntimeError):
    """The broker could not be prepared or reached; the message says why and what to do, in French."""


def _say(message: str) -> None:
    print(f"[résorption] {message}", file=sys.stderr, flush=True)


# -- where and how to reach it -------------------------------------------------------------


def default_root() -> Path:
    """``$RESORPTION_MOSQUITTO_DIR``, else ``<project>/.local/mosquitto``."""
    if configured := os.environ.get("RESORPTION_MOSQUITTO_DIR"):
        return Path(configured).absolute()
    return embedded.default_root().parent / "mosquitto"


def default_port() -> int:
    """``$RESORPTION_MQTT_PORT``, else the embedded PostgreSQL's port + 100."""
    return int(os.environ.get("RESORPTION_MQTT_PORT") or embedded.default_port() + 100)


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """A broker and the administrator of its dynamic security."""

    host: str
    port: int
    username: str
    password: str

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://user:password@host:port``."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise BrokerError(
                f"MQTT_URL doit être de la forme mqtt://admin:motdepasse@hôte:1883, reçu « {url} »."
            )
        return cls(
            parts.hostname, parts.port or 1883, unquote(parts.username or ""), unquote(parts.password or "")
        )

    @property
    def public_url(self) -> str:
        """The broker's address without credentials (for documents and messages)."""
        return f"mqtt://{self.host}:{self.port}"


def public_url() -> str:
    """Where MQTT clients connect: ``RESORPTION_MQTT_PUBLIC_URL``, else ``MQTT_URL`` without its
    credentials, else the embedded broker."""
    if configured := os.environ.get("RESORPTION_MQTT_PUBLIC_URL"):
        return configured.rstrip("/")
    if url := configured_url():
        return BrokerAddress.parse(url).public_url
    return f"mqtt://127.0.0.1:{default_port()}"


def configured_url() -> str | None:
    """``MQTT_URL`` when set (a broker elsewhere); None means the embedded one."""
    return os.environ.get("MQTT_URL") or None


# -- the embedded broker -------------------------------------------------------------------


def _plugin() -> str:
    for path in DYNSEC_PLUGIN_PATHS:
        if Path(path).is_file():
            return path
    raise BrokerError(
        "Le greffon de sécurité dynamique de Mosquitto est introuvable : installez Mosquitto "
        "(apt-get install -y mosquitto) — ou définissez MQTT_URL vers un broker existant."
    )


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").is_file() else None
    )
    if not found:
        raise BrokerError(
            "Mosquitto est introuvable : apt-get install -y mosquitto (ou définissez MQTT_URL)."
        )
    return found


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _pid(root: Path) -> int | None:
    try:
        pid = int((root / "mosquitto.pid").read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return pid if b"mosquitto" in command else None


def ensure_broker(root: Path | None = None, port: int | None = None) -> str:
    """Configure (once) and start (if stopped) the embedded Mosquitto; return its admin URL."""
    root = (default_root() if root is None else root).absolute()
    port = default_port() if port is None else port
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    secret = root / "admin-password"
    if not secret.is_file():
        secret.write_text(secrets.token_urlsafe(24))
        secret.chmod(0o600)
    password = secret.read_text().strip()
    url = f"mqtt://{ADMIN_USER}:{quote(password, safe='')}@127.0.0.1:{port}"
    dynsec = data / "dynamic-security.json"
    if not dynsec.is_file():
        done = subprocess.run(
            ["mosquitto_ctrl", "dynsec", "init", str(dynsec), ADMIN_USER, password],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BrokerError(f"mosquitto_ctrl dynsec init a échoué : {done.stdout}{done.stderr}")
        _allow_publisher(dynsec)
    conf = root / "mosquitto.conf"
    user = "root" if os.geteuid() == 0 else None
    conf.write_text(
        "# Written by resorption.broker: the embedded broker of development, demo and tests.\n"
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous false\n"
        "persistence true\n"
        # A subscriber catching up after a burst gets every message (QoS 1): room in its queue,
        # and no Nagle delay on the acknowledgements.
        "max_queued_messages 100000\n"
        "max_inflight_messages 100\n"
        "set_tcp_nodelay true\n"
        f"persistence_location {data}/\n"
        f"pid_file {root / 'mosquitto.pid'}\n"
        f"log_dest file {root / 'mosquitto.log'}\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
        + (f"user {user}\n" if user else "")
        + f"plugin {_plugin()}\n"
        f"plugin_opt_config_file {dynsec}\n"
    )
    if _pid(root) is not None and _listening(port):
        return url
    if _listening(port):
        # Someone else's broker (another checkout's, a stale one): its passwords are not ours.
        raise BrokerError(
            f"Le port {port} est déjà pris par un autre programme que le Mosquitto de {root} : "
            "arrêtez-le, ou choisissez un autre port avec RESORPTION_MQTT_PORT."
        )
    _say(f"démarrage de Mosquitto sur 127.0.0.1:{port} (journal : {root / 'mosquitto.log'})…")
    subprocess.run([_mosquitto(), "-c", str(conf), "-d"], check=False, capture_output=True)
    deadline = time.monotonic() + 10
    while not _listening(port):
        if time.monotonic() > deadline:
            log = root / "mosquitto.log"
            tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
            raise BrokerError(
                f"Mosquitto n'a pas démarré sur le port {port} (déjà pris ? RESORPTION_MQTT_PORT en "
                f"choisit un autre).\n--- fin de {log} ---\n{tail}"
            )
        time.sleep(0.05)
    return url


def _allow_publisher(dynsec: Path) -> None:
    """The administrator is also the publisher: it alone may publish under resorption/."""
    config = json.loads(dynsec.read_text())
    for role in config.get("roles", []):
        if role.get("rolename") == "admin":
            role.setdefault("acls", []).append(
                {"acltype": "publishClientSend", "topic": f"{TOPIC_ROOT}/#", "priority": 0, "allow": True}
            )
    dynsec.write_text(json.dumps(config, indent=2))


def is_running(root: Path | None = None) -> bool:
    """Whether the embedded Mosquitto of `root` runs."""
    return _pid((default_root() if root is None else root).absolute()) is not None


def stop_broker(root: Path | None = None) -> None:
    """Stop the embedded Mosquitto if it runs."""
    root = (default_root() if root is None else root).absolute()
    pid = _pid(root)
    if pid is None:
        _say("Mosquitto embarqué : déjà arrêté.")
        return
    os.kill(pid, 15)
    deadline = time.monotonic() + 10
    while _pid(root) is not None and time.monotonic() < deadline:
        time.sleep(0.05)


def broker_url() -> str:
    """The broker to use: ``MQTT_URL``, else the embedded one (started if need be)."""
    return configured_url() or ensure_broker()


# -- talking to it ---------------------------------------------------------------------------


def connect(address: BrokerAddress, client_id: str | None = None, clean_start: bool = True) -> mqtt.Client:
    """A connected MQTT 5 client of `address`, its network loop running in a thread."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"resorption-{uuid.uuid4().hex[:12]}",
        protocol=mqtt.MQTTv5,
    )
    client.username_pw_set(address.username, address.password)
    connected = threading.Event()
    refused: list[Any] = []

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            refused.append(reason)
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(address.host, address.port, keepalive=30, clean_start=clean_start)
    except OSError as exc:
        raise BrokerError(f"Broker MQTT injoignable ({address.public_url}) : {exc}") from exc
    client.loop_start()
    if not connected.wait(10) or refused:
        client.loop_stop()
        raise BrokerError(
            f"Le broker MQTT ({address.public_url}) refuse la connexion : {refused or 'délai dépassé'}."
        )
    return client


class DynamicSecurity:
    """The administrator's side of Mosquitto's dynamic-security plugin ($CONTROL topic)."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._arrived = threading.Condition()
        client.message_callback_add(f"{CONTROL_TOPIC}/response", self._on_response)
        client.subscribe(f"{CONTROL_TOPIC}/response", qos=1)

    def _on_response(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        body = json.loads(message.payload or b"{}")
        for response in body.get("responses", []):
            with self._arrived:
                self._answers.setdefault(response.get("correlationData", ""), []).append(response)
                self._arrived.notify_all()

    def run(self, commands: list[dict[str, Any]], timeout: float = 10) -> list[dict[str, Any]]:
        """Send commands in one message; their responses, in order (each may carry an `error`)."""
        tag = uuid.uuid4().hex
        for i, command in enumerate(commands):
            command["correlationData"] = f"{tag}-{i}"
        self.client.publish(CONTROL_TOPIC, json.dumps({"commands": commands}), qos=1)
        deadline = time.monotonic() + timeout
        wanted = [f"{tag}-{i}" for i in range(len(commands))]
        with self._arrived:
            while not all(w in self._answers for w in wanted):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerError("Le broker MQTT ne répond pas aux commandes de sécurité dynamique.")
                self._arrived.wait(left)
            return [self._answers.pop(w)[0] for w in wanted]


# -- accounts → clients and roles ----------------------------------------------------------


def user_role(username: str) -> str:
    """The dynamic-security role holding a user's access list."""
    return f"user:{username}"


def tier_root(tier: str) -> str:
    """Where the topics of a tier of readers begin (notifications.tiers): the readers of no
    sensitive group under ``resorption/v1``, the others under ``resorption/v1/groupes/<tier>``
    (outside every collection's ``#``: a national reader's filter does not reach them)."""
    return f"{TOPIC_ROOT}/groupes/{tier}" if tier else TOPIC_ROOT


def subscribe_topics(
    scopes: Mapping[str, Iterable[str] | None], tiers: Mapping[str, str] | None = None
) -> list[str]:
    """The topic filters a user may subscribe to: per readable collection, its départements
    (None: the nation), in the tier of no sensitive group and in their own tier (`tiers`)."""
    topics = []
    for collection, departements in sorted(scopes.items()):
        roots = [TOPIC_ROOT] + ([tier_root(t)] if (t := (tiers or {}).get(collection)) else [])
        for root in roots:
            if departements is None:
                topics.append(f"{root}/{collection}/#")
            else:
                topics += [f"{root}/{collection}/departement/{code}/#" for code in sorted(departements)]
    return topics


@dataclass(frozen=True, slots=True)
class Account:
    """What the broker knows of a user: whether active, their live tokens, where they may subscribe."""

    username: str
    active: bool
    live_tokens: frozenset[int]
    topics: tuple[str, ...]


PASSWORD_TOKEN = "jeton:"


def password_token(client: Mapping[str, Any]) -> int | None:
    """The id of the token a dynamic-security client's password is (None: unknown)."""
    text = str(client.get("textdescription") or "")
    number = text.removeprefix(PASSWORD_TOKEN)
    return int(number) if text.startswith(PASSWORD_TOKEN) and number.isdigit() else None


def sync_account(dynsec: DynamicSecurity, account: Account) -> None:
    """Make the user's client and role match `account` (created if missing; never a password):
    enabled while the user is active and the token that is their password is live.

    Only what differs is changed: the broker disconnects the clients of a role or a client it
    modifies, and an unchanged account must keep its connections (and their subscriptions).
    """
    role = user_role(account.username)
    wanted = set(account.topics)
    role_now, client_now = dynsec.run(
        [{"command": "getRole", "rolename": role}, {"command": "getClient", "username": account.username}]
    )
    commands: list[dict[str, Any]] = []
    if "error" in role_now:
        commands.append({"command": "createRole", "rolename": role, "acls": []})
        have: set[str] = set()
    else:
        acls = role_now["data"]["role"].get("acls", [])
        have = {a["topic"] for a in acls if a.get("acltype") == "subscribePattern" and a.get("allow")}
    commands += [
        {"command": "removeRoleACL", "rolename": role, "acltype": "subscribePattern", "topic": t}
        for t in sorted(have - wanted)
    ]
    commands += [
        {"command": "addRoleACL", "rolename": role, "acltype": "subscribePattern", "topic": t, "allow": True}
        for t in sorted(wanted - have)
    ]
    if "error" in client_now:
        commands.append(
            {"command": "createClient", "username": account.username, "roles": [{"rolename": role}]}
        )
        disabled, enabled = False, False  # no password yet
    else:
        client = client_now["data"]["client"]
        if role not in {r["rolename"] for r in client.get("roles", [])}:
            commands.append({"command": "addClientRole", "username": account.username, "rolename": role})
        disabled = bool(client.get("disabled"))
        enabled = account.active and password_token(client) in account.live_tokens
    if disabled == enabled or "error" in client_now:
        commands.append(
            {"command": "enableClient" if enabled else "disableClient", "username": account.username}
        )
    elif enabled and have != wanted:
        # Its topics changed (another area, role or options): its open connections end now,
        # whatever the broker does on a role's change, and it comes back under the new list.
        commands += [
            {"command": "disableClient", "username": account.username},
            {"command": "enableClient", "username": account.username},
        ]
    if commands:
        dynsec.run(commands)


def ensure_publisher_acl(dynsec: DynamicSecurity, username: str) -> bool:
    """Let the administrator `username` publish under resorption/ (a broker initialised by
    `mosquitto_ctrl dynsec init` only lets it administer); True when the ACL was just added
    (the broker then disconnects the administrator's clients: reconnect)."""
    (client,) = dynsec.run([{"command": "getClient", "username": username}])
    roles = [r["rolename"] for r in client.get("data", {}).get("client", {}).get("roles", [])]
    if not roles:
        raise BrokerError(
            f"Le compte « {username} » du broker MQTT n'a aucun rôle : est-ce son administrateur ?"
        )
    (role,) = dynsec.run([{"command": "getRole", "rolename": roles[0]}])
    topic = f"{TOPIC_ROOT}/#"
    acls = role.get("data", {}).get("role", {}).get("acls", [])
    if any(
        a.get("acltype") == "publishClientSend" and a.get("topic") == topic and a.get("allow") for a in acls
    ):
        return False
    dynsec.run(
        [
            {
                "command": "addRoleACL",
                "rolename": roles[0],
                "acltype": "publishClientSend",
                "topic": topic,
                "allow": True,
            }
        ]
    )
    return True


def remove_account(dynsec: DynamicSecurity, username: str) -> None:
    """A user who no longer exists: no client, no role."""
    dynsec.run(
        [
            {"command": "deleteClient", "username": username},
            {"command": "deleteRole", "rolename": user_role(username)},
        ]
    )


def set_password(address: BrokerAddress, username: str, password: str, token_id: int) -> None:
    """Make `password` (the newly issued API token `token_id`) the user's broker password."""
    client = connect(address)
    try:
        dynsec = DynamicSecurity(client)
        dynsec.run(
            [
                {"command": "createClient", "username": username},
                {"command": "setClientPassword", "username": username, "password": password},
                {
                    "command": "modifyClient",
                    "username": username,
                    "textdescription": f"{PASSWORD_TOKEN}{token_id}",
                },
            ]
        )
    finally:
        client.disconnect()
        client.loop_stop()


def reachable_url() -> str | None:
    """``MQTT_URL``, else the embedded broker's URL when it runs (never started from here)."""
    if url := configured_url():
        return url
    root = default_root()
    secret = root / "admin-password"
    if _pid(root) is None or not secret.is_file():
        return None
    return f"mqtt://{ADMIN_USER}:{quote(secret.read_text().strip(), safe='')}@127.0.0.1:{default_port()}"


def token_issued(username: str, token: str, token_id: int) -> None:
    """A token is being issued: it becomes the user's broker password, when there is a broker.

    Called before the token's transaction commits: the publisher, woken by the commit, then
    finds the broker naming this token and lets the user in (after the commit it could come
    first, see the old token and shut the door until its next check). A transaction that then
    fails leaves a password naming no token: the client stays disabled.

    Best effort: without a broker (none configured, the embedded one stopped) the token works
    for the API as ever; the user issues another one to connect to MQTT.
    """
    url = reachable_url()
    if url is None:
        return
    try:
        set_password(BrokerAddress.parse(url), username, token, token_id)
    except BrokerError as exc:
        _say(f"broker MQTT : mot de passe de « {username} » non transmis ({exc}).")


def main(argv: list[str]) -> int:
    """python -m resorption.broker start|stop|url|status"""
    command = argv[0] if argv else "status"
    if command == "start":
        ensure_broker()
        print(BrokerAddress.parse(ensure_broker()).public_url)
    elif command == "stop":
        stop_broker()
    elif command == "url":
        print(BrokerAddress.parse(broker_url()).public_url)
    elif command == "status":
        running = _pid(default_root()) is not None
        print(f"Mosquitto embarqué : {'en marche' if running else 'arrêté'} ({default_root()})")
    else:
        print(main.__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
