"""Creating and removing device accounts through the broker's own provisioning interface,
while it runs: no password or ACL file edited, no restart.

    Provisioner           the contract: provision(username, password, acl) / remove(...)
    DynsecProvisioner     Mosquitto's dynamic-security plugin, over MQTT
                          ($CONTROL/dynamic-security/v1, answers on .../response)
    RabbitMQProvisioner   RabbitMQ's management HTTP API (users, permissions, topic
                          permissions on amq.topic, which its MQTT plugin publishes to)

Each credential gets its own role (Mosquitto) or its own user permissions (RabbitMQ) holding
literal topics, so removing one credential during a rotation leaves the other untouched, and
nothing relies on %u substitution (Mosquitto 2.0's dynamic security has none for publish ACLs).
Failures of either broker become ProvisioningError at this boundary.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import uuid
from collections.abc import Iterable
from typing import Any, Protocol
from urllib.parse import quote

import paho.mqtt.client as mqtt
from fieldwatch.collector.enroll.acl import DeviceAcl
from fieldwatch.collector.enroll.config import EnrollConfig

from fieldwatch.config import BrokerConfig
from fieldwatch.errors import ProvisioningError
from fieldwatch.mqtt import make_client

CONTROL = "$CONTROL/dynamic-security/v1"
RESPONSE = CONTROL + "/response"


class Provisioner(Protocol):
    def provision(self, username: str, password: str, acl: DeviceAcl) -> None:
        """Create the account `username` allowed exactly what `acl` lists."""
        ...

    def remove(self, usernames: Iterable[str]) -> None:
        """Delete these accounts and drop their connections now; unknown ones are no error."""
        ...

    def usernames(self) -> set[str]:
        """Every account the broker knows (tests and `devices enrolled` compare)."""
        ...

    def close(self) -> None: ...


# -- Mosquitto dynamic security --------------------------------------------------------------

# Answers that mean the state asked for is already there (a retried provisioning, a second
# retire): not failures.
ALREADY = {"createRole": "Role already exists", "deleteClient": "Client not found",
           "deleteRole": "Role not found"}


def dynsec_role(username: str) -> str:
    return f"fieldwatch-device:{username}"


def dynsec_commands(username: str, password: str, acl: DeviceAcl) -> list[dict[str, Any]]:
    """The commands that create one device credential (pure, so tests read them)."""
    role = dynsec_role(username)
    acls = ([{"acltype": "publishClientSend", "topic": t, "allow": True, "priority": 0}
             for t in acl.publish()]
            + [{"acltype": "subscribePattern", "topic": t, "allow": True, "priority": 0}
               for t in acl.subscribe()])
    return [
        {"command": "createRole", "rolename": role, "acls": acls,
         "textname": f"fieldwatch device {acl.key}"},
        {"command": "createClient", "username": username, "password": password,
         "roles": [{"rolename": role, "priority": 0}],
         "textname": f"fieldwatch device {acl.key}"},
    ]


class DynsecProvisioner:
    """An admin MQTT client of Mosquitto's dynamic-security plugin. One request at a time;
    connects on first use and again after a lost link."""

    def __init__(self, broker: BrokerConfig, timeout: float = 10.0,
                 client_id: str = "") -> None:
        self.broker, self.timeout = broker, timeout
        self.client_id = client_id or f"fieldwatch-enroll-{uuid.uuid4().hex[:8]}"
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()
        self._answers: dict[str, list[dict[str, Any]]] = {}
        self._answered = threading.Condition()

    # -- the link ----------------------------------------------------------------------------

    def _connect(self) -> mqtt.Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        self.close()
        b = self.broker
        c = make_client(self.client_id, b, protocol=mqtt.MQTTv5)
        c.reconnect_delay_set(1, 5)
        ready = threading.Event()
        result: list[Any] = []

        def on_connect(cl: mqtt.Client, u: object, f: object, rc: mqtt.ReasonCode,
                       p: object) -> None:
            result.append(rc)
            if not rc.is_failure:
                cl.subscribe(RESPONSE, qos=1)
            else:
                ready.set()

        c.on_connect = on_connect
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        try:
            c.connect(b.host, b.port, keepalive=int(b.keepalive))
        except OSError as exc:
            raise ProvisioningError(f"broker {b.host}:{b.port}: {exc}") from None
        c.loop_start()
        if not ready.wait(self.timeout) or not result or result[0].is_failure:
            c.loop_stop()
            c._reset_sockets()
            why = result[0] if result else "no answer"
            raise ProvisioningError(f"broker {b.host}:{b.port} refused the provisioning "
                                    f"account {b.username!r}: {why}")
        self._client = c
        return c

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(msg.payload)
            responses = body["responses"]
        except (ValueError, KeyError, TypeError):
            return
        with self._answered:
            for r in responses:
                key = str(r.get("correlationData", ""))
                self._answers.setdefault(key, []).append(r)
            self._answered.notify_all()

    def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send commands in one message; their answers in order. ProvisioningError on any
        error the plugin reports (but those in ALREADY) or on no answer."""
        with self._lock:
            c = self._connect()
            key = uuid.uuid4().hex
            tagged = [{**cmd, "correlationData": key} for cmd in commands]
            info = c.publish(CONTROL, json.dumps({"commands": tagged}), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise ProvisioningError(f"publishing to {CONTROL}: {mqtt.error_string(info.rc)}")
            with self._answered:
                ok = self._answered.wait_for(
                    lambda: len(self._answers.get(key, [])) >= len(commands), self.timeout)
                answers = self._answers.pop(key, [])
        if not ok:
            raise ProvisioningError(f"no answer on {RESPONSE} within {self.timeout:g}s (is "
                                    "the dynamic-security plugin loaded, and may this account "
                                    "use $CONTROL/dynamic-security/#?)")
        for cmd, ans in zip(commands, answers, strict=False):
            err = ans.get("error")
            if err and ALREADY.get(cmd["command"]) != err:
                what = cmd.get("username") or cmd.get("rolename") or ""
                raise ProvisioningError(f"dynamic security {cmd['command']} {what}: {err}")
        return answers

    # -- the contract ------------------------------------------------------------------------

    def provision(self, username: str, password: str, acl: DeviceAcl) -> None:
        self.run(dynsec_commands(username, password, acl))

    def remove(self, usernames: Iterable[str]) -> None:
        cmds: list[dict[str, Any]] = []
        for u in usernames:
            cmds += [{"command": "deleteClient", "username": u},
                     {"command": "deleteRole", "rolename": dynsec_role(u)}]
        if cmds:
            self.run(cmds)

    def usernames(self) -> set[str]:
        ans = self.run([{"command": "listClients", "verbose": False}])
        return set(ans[0].get("data", {}).get("clients", []))

    def setup(self, accounts: dict[str, tuple[str, list[dict[str, Any]]]]) -> None:
        """Create service accounts (the collector, operators): username → (password, ACLs),
        each with its own role; existing ones get the password and ACLs given. Also sets the
        default access the device roles assume (deny publish and subscribe)."""
        cmds: list[dict[str, Any]] = [{"command": "setDefaultACLAccess", "acls": [
            {"acltype": "publishClientSend", "allow": False},
            {"acltype": "subscribe", "allow": False}]}]
        have = self.usernames()
        for user, (password, acls) in accounts.items():
            role = f"fieldwatch-service:{user}"
            cmds += [{"command": "deleteRole", "rolename": role},
                     {"command": "createRole", "rolename": role, "acls": acls}]
            if user in have:
                cmds += [{"command": "setClientPassword", "username": user,
                          "password": password},
                         {"command": "addClientRole", "username": user, "rolename": role}]
            else:
                cmds.append({"command": "createClient", "username": user, "password": password,
                             "roles": [{"rolename": role}]})
        self.run(cmds)

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client._reset_sockets()
            self._client = None


def service_acls(kind: str) -> list[dict[str, Any]]:
    """The dynamic-security ACLs of the collector (`collector`) and of operators' `fieldwatch
    diag run` account (`ops`): what config/mosquitto/fieldwatch.acl gives them too."""
    def acl(t: str, topic: str) -> dict[str, Any]:
        return {"acltype": t, "topic": topic, "allow": True}

    req = "fieldwatch/v1/+/+/diag/req"
    if kind == "collector":
        return [acl("subscribePattern", "fieldwatch/v1/#"), acl("publishClientSend", req)]
    if kind == "ops":
        return [acl("publishClientSend", req),
                acl("subscribePattern", "fieldwatch/v1/+/+/diag/res")]
    raise ValueError(f"unknown service account kind {kind!r}")


# -- RabbitMQ --------------------------------------------------------------------------------


def rabbit_key(topic: str) -> str:
    """An MQTT topic as the routing key RabbitMQ's MQTT plugin uses (`/` → `.`), escaped for
    the regular expressions of topic permissions."""
    return re.escape(topic.replace("/", "."))


def rabbit_permissions(acl: DeviceAcl) -> dict[str, str]:
    """Topic permissions on amq.topic: write (publish) and read (subscribe) as anchored
    alternations of literal routing keys."""
    return {"exchange": "amq.topic",
            "write": "^(" + "|".join(rabbit_key(t) for t in acl.publish()) + ")$",
            "read": "^(" + "|".join(rabbit_key(t) for t in acl.subscribe()) + ")$"}


# What the MQTT plugin itself needs of the vhost: declare and use the client's own
# subscription queue, publish to amq.topic. Topics are then narrowed by topic permissions.
RABBIT_VHOST_PERMISSIONS = {"configure": "^mqtt-subscription-.*$",
                            "write": "^(amq\\.topic|mqtt-subscription-.*)$",
                            "read": "^(amq\\.topic|mqtt-subscription-.*)$"}


class RabbitMQProvisioner:
    """Users and permissions through the management plugin's HTTP API (rabbitmq_management),
    as a management user with the `administrator` tag."""

    def __init__(self, url: str, username: str, password: str, vhost: str = "/",
                 timeout: float = 10.0, ca: str | None = None) -> None:
        import httpx

        self.vhost = quote(vhost, safe="")
        self.http = httpx.Client(base_url=url.rstrip("/") + "/api", auth=(username, password),
                                 timeout=timeout,
                                 verify=ssl.create_default_context(cafile=ca) if ca else True)

    def _call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        import httpx

        try:
            r = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ProvisioningError(f"RabbitMQ management API {path}: {exc}") from None
        if r.status_code in ok:
            return None
        if r.status_code >= 300:
            raise ProvisioningError(f"RabbitMQ management API {method} {path}: "
                                    f"{r.status_code} {r.text[:200]}")
        return r.json() if r.content else None

    def provision(self, username: str, password: str, acl: DeviceAcl) -> None:
        u = quote(username, safe="")
        self._call("PUT", f"/users/{u}", {"password": password, "tags": ""})
        self._call("PUT", f"/permissions/{self.vhost}/{u}", RABBIT_VHOST_PERMISSIONS)
        self._call("PUT", f"/topic-permissions/{self.vhost}/{u}", rabbit_permissions(acl))

    def remove(self, usernames: Iterable[str]) -> None:
        gone = set(usernames)
        for u in gone:
            self._call("DELETE", f"/users/{quote(u, safe='')}", ok=(404,))
        for conn in self._call("GET", "/connections") or []:
            if conn.get("user") in gone:
                self._call("DELETE", f"/connections/{quote(conn['name'], safe='')}",
                           ok=(404,))

    def usernames(self) -> set[str]:
        return {u["name"] for u in self._call("GET", "/users") or []}

    def close(self) -> None:
        self.http.close()


def from_config(cfg: EnrollConfig) -> Provisioner:
    """The provisioner the `enroll:` section names."""
    if cfg.kind == "rabbitmq":
        r = cfg.rabbitmq
        secret = BrokerConfig(password_env=r.password_env, password_file=r.password_file
                              ).password()
        return RabbitMQProvisioner(r.url, r.username,
                                   secret.get_secret_value() if secret else "", r.vhost,
                                   ca=str(r.ca) if r.ca else None)
    return DynsecProvisioner(cfg.admin)
