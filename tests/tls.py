"""Certificates made on the spot for the tests that speak TLS to a real server on 127.0.0.1
(HTTPS receivers and desk, SMTP with STARTTLS, Mosquitto with client certificates).

Every certificate names 127.0.0.1 and localhost, lives a day and uses a P-256 key: quick to
make, and nothing in a test depends on more. `self_signed` is a server that is its own CA;
`make_pki` is a CA with certificates signed by it, for servers that check clients too.
Files are PEM: NAME.pem for a certificate, NAME.key for its key (PKCS#8, unencrypted).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

Key = ec.EllipticCurvePrivateKey


def certificate(subject: str, key: Key,
                issuer: tuple[x509.Certificate, Key] | None = None) -> x509.Certificate:
    """A certificate for 127.0.0.1 and localhost: signed by `issuer`, or by its own key as a CA
    (trusting it then trusts exactly this one server)."""
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (x509.CertificateBuilder().subject_name(name)
            .issuer_name(issuer[0].subject if issuer else name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None),
                           critical=True)
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(issuer[1] if issuer else key, hashes.SHA256()))


def write(directory: Path, name: str, cert: x509.Certificate, key: Key) -> tuple[Path, Path]:
    """`cert` and `key` as directory/NAME.pem and directory/NAME.key."""
    directory.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def self_signed(directory: Path, name: str = "server") -> tuple[Path, Path]:
    """A server certificate for 127.0.0.1 that is its own CA, and its key: (cert, key) files.
    A client trusts it with `ssl.create_default_context(cafile=cert)`."""
    key = ec.generate_private_key(ec.SECP256R1())
    return write(directory, name, certificate(name, key), key)


def make_pki(directory: Path, *names: str) -> Path:
    """A CA (ca.pem, ca.key) and, for each of `names`, a certificate it signed (NAME.pem,
    NAME.key), all in `directory`; returns the CA certificate's file."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("fieldwatch test CA", ca_key)
    ca_file, _ = write(directory, "ca", ca, ca_key)
    for name in names:
        key = ec.generate_private_key(ec.SECP256R1())
        write(directory, name, certificate(name, key, (ca, ca_key)), key)
    return ca_file


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server-side TLS context presenting `cert`."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx
