#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Prepare a private docker-registry (Debian's `docker-registry`) for the tests.

    registry.py FLAVOUR WORKDIR

writes WORKDIR/config.yml, and what the flavour needs, and prints a JSON object that tells
the test how to start and use it:

    {"argv": [...], "port": N, "url": "127.0.0.1:N", "cert_dir": DIR or null,
     "username": ... or null, "password": ... or null}

Flavours:
  http    plain HTTP, no authentication
  https   HTTPS with a certificate from a CA made here (WORKDIR/certs holds ca.crt, which
          is what skopeo's --cert-dir wants)
  auth    HTTPS as above, plus htpasswd basic authentication

The registry listens on 127.0.0.1 only, on a port that was free a moment ago, and keeps its
storage in WORKDIR. The test starts it (so that it dies with the test) and stops it by pid.
"""

import json
import os
import socket
import subprocess
import sys

USERNAME = "cimgproxy"
PASSWORD = "not-a-real-secret-7f3a"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run(*argv, **kwargs):
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                   **kwargs)


def make_certificates(workdir):
    """A CA, and a server certificate for 127.0.0.1 signed by it."""
    certs = os.path.join(workdir, "certs")
    os.makedirs(certs, exist_ok=True)
    ca_key, ca_crt = os.path.join(workdir, "ca.key"), os.path.join(certs, "ca.crt")
    key, csr, crt = (os.path.join(workdir, name) for name in ("server.key", "server.csr",
                                                              "server.crt"))
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", "/CN=libcimgproxy test CA", "-keyout", ca_key, "-out", ca_crt)
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", key, "-out", csr)
    extensions = os.path.join(workdir, "server.ext")
    with open(extensions, "w", encoding="utf-8") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("openssl", "x509", "-req", "-in", csr, "-CA", ca_crt, "-CAkey", ca_key,
        "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", crt)
    return certs, crt, key


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("http", "https", "auth"):
        sys.exit(f"Usage: {sys.argv[0]} http|https|auth WORKDIR")
    flavour, workdir = sys.argv[1], os.path.abspath(sys.argv[2])
    os.makedirs(workdir, exist_ok=True)
    port = free_port()

    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {workdir}/storage",
        "  delete:",
        "    enabled: true",
        "http:",
        f"  addr: 127.0.0.1:{port}",
    ]
    cert_dir = None
    if flavour in ("https", "auth"):
        cert_dir, crt, key = make_certificates(workdir)
        lines += ["  tls:", f"    certificate: {crt}", f"    key: {key}"]
    if flavour == "auth":
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USERNAME, PASSWORD], check=True,
                                  capture_output=True, text=True).stdout
        with open(os.path.join(workdir, "htpasswd"), "w", encoding="utf-8") as f:
            f.write(htpasswd)
        lines += ["auth:", "  htpasswd:", "    realm: libcimgproxy-tests",
                  f"    path: {workdir}/htpasswd"]

    config = os.path.join(workdir, "config.yml")
    with open(config, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")

    print(json.dumps({
        "argv": ["docker-registry", "serve", config],
        "port": port,
        "url": f"127.0.0.1:{port}",
        "cert_dir": cert_dir,
        "username": USERNAME if flavour == "auth" else None,
        "password": PASSWORD if flavour == "auth" else None,
    }))


if __name__ == "__main__":
    main()
