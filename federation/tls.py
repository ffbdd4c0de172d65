"""The federation listener's TLS certificate: the configured pair, or a self-signed one
made in the data dir on first start (enough for tests and for servers behind a proxy
that terminates TLS; a public server should configure a real certificate)."""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALIDITY_DAYS = 3650


def _host_of(server_name: str) -> str:
    """The host part of a server name (``example.org``, ``1.2.3.4:8448``, ``[::1]:8448``)."""
    if server_name.startswith("["):
        return server_name[1:server_name.index("]")]
    host, _, port = server_name.rpartition(":")
    return host if port.isdigit() and host else server_name


def _subject_alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def make_self_signed(cert_path: Path, key_path: Path, server_name: str) -> None:
    host = _host_of(server_name)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=VALIDITY_DAYS))
                   .add_extension(x509.SubjectAlternativeName([_subject_alt_name(host)]), critical=False)
                   .sign(key, hashes.SHA256()))
    key_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def certificate_paths(config) -> tuple[Path, Path]:
    federation = config.federation
    cert = Path(federation.tls_certificate) if federation.tls_certificate else config.data_dir / "tls.crt"
    key = Path(federation.tls_private_key) if federation.tls_private_key else cert.with_suffix(".key")
    if not cert.is_absolute():
        cert = config.base_dir / cert
    if not key.is_absolute():
        key = config.base_dir / key
    return cert, key


def ensure_certificate(config) -> tuple[Path, Path, bool]:
    """The certificate and key paths; a self-signed pair is made when neither exists and
    none was configured. Returns whether one was made."""
    cert, key = certificate_paths(config)
    if cert.exists() and key.exists():
        return cert, key, False
    if config.federation.tls_certificate:
        raise FileNotFoundError(f"federation.tls_certificate {cert} or its key {key} does not exist")
    make_self_signed(cert, key, config.server_name)
    return cert, key, True
