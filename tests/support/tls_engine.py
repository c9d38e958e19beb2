"""A second Docker engine on this machine, reached over TCP with TLS (its own certificates, data and
runtime folders, no bridge network), holding the sandbox image: the remote engine a DOCKER_HOST of
`tcp://` with TLS points at."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.tls
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sandbox.container import EngineClient


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    signer: ec.EllipticCurvePrivateKey,
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def make_certificates(folder: Path) -> None:
    """ca.pem; server-cert.pem / server-key.pem for 127.0.0.1; cert.pem / key.pem for the client
    (the names DOCKER_CERT_PATH expects)."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
    )  # fmt: skip
    ca = (
        _cert("sidehand test CA", ca_key, None, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for prefix, usage, san in (
        ("server-", ExtendedKeyUsageOID.SERVER_AUTH, True),
        ("", ExtendedKeyUsageOID.CLIENT_AUTH, False),
    ):
        key = _key()
        builder = (
            _cert("127.0.0.1" if san else "sidehand client", key, ca.subject, ca_key)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
        )
        if san:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        cert = builder.sign(ca_key, hashes.SHA256())
        (folder / f"{prefix}cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(folder / f"{prefix}key.pem", key)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def tls_engine(root: Path, image: str, source: Any) -> Iterator[dict[str, str]]:
    """Start the engine (its folders under `root`), load `image` into it from the `source` engine,
    and yield the environment that points a docker client at it."""
    certs = root / "certs"
    make_certificates(certs)
    port = _free_port()
    host = f"tcp://127.0.0.1:{port}"
    bridge = f"sidehand{port}"
    subprocess.run(["ip", "link", "add", "name", bridge, "type", "bridge"], check=True)
    log = (root / "dockerd.log").open("wb")
    daemon = subprocess.Popen(
        [
            "dockerd",
            "--data-root", str(root / "data"),
            "--exec-root", str(root / "exec"),
            "--pidfile", str(root / "dockerd.pid"),
            "-H", host,
            "--tlsverify",
            "--tlscacert", str(certs / "ca.pem"),
            "--tlscert", str(certs / "server-cert.pem"),
            "--tlskey", str(certs / "server-key.pem"),
            # A bridge of its own: with --bridge=none, dockerd deletes docker0, the other engine's.
            "--bridge", bridge, "--iptables=false", "--ip-masq=false",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    env = {"DOCKER_HOST": host, "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(certs)}
    client = None
    try:
        tls = docker.tls.TLSConfig(
            client_cert=(str(certs / "cert.pem"), str(certs / "key.pem")),
            ca_cert=str(certs / "ca.pem"),
            verify=True,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                client = EngineClient(base_url=host.replace("tcp://", "https://"), tls=tls)
                client.ping()
                break
            except Exception as exc:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the TLS engine did not start: {(root / 'dockerd.log').read_text()[-2000:]}"
                    ) from exc
                time.sleep(0.2)
        client.api.load_image(source.api.get_image(image))
        yield env
    finally:
        if client is not None:
            with contextlib.suppress(Exception):
                for container in client.api.containers(all=True):
                    client.api.remove_container(container["Id"], force=True)
            client.close()
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
        subprocess.run(["ip", "link", "delete", bridge], check=False)
