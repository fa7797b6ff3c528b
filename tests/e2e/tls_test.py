"""TLS and mTLS on TCP listeners, certificate rotation on SIGHUP, and
spawnctl's --tls/--cacert/--cert/--key (issue 9, SPEC §7).

Certificates are made at test time with Debian's openssl: a CA, a server
certificate for 127.0.0.1, a client certificate from the same CA and one from
another CA.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import grpc  # noqa: E402

import spawnd_harness as h  # noqa: E402
import std_services as std  # noqa: E402

SPAWNCTL = None
try:
    SPAWNCTL = h._find("tools/spawnctl/spawnctl", "SPAWNCTL_BIN")
except FileNotFoundError:
    pass


def openssl(*args, cwd):
    r = subprocess.run(["openssl"] + list(args), cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("openssl %s: %s" % (" ".join(args), r.stderr))


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-days", "2", "-subj", "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".crt",
            cwd=d)
    return os.path.join(d, name + ".crt")


def make_cert(d, ca, name, ext):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", "/CN=%s" % name, "-keyout", name + ".key", "-out", name + ".csr", cwd=d)
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write(ext + "\n")
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".crt", "-CAkey", ca + ".key",
            "-CAcreateserial", "-days", "2", "-out", name + ".crt", "-extfile", name + ".ext", cwd=d)
    return os.path.join(d, name + ".crt"), os.path.join(d, name + ".key")


SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth"
CLIENT_EXT = "extendedKeyUsage=clientAuth"


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Pki:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="spawnd-tls-")
        d = self.dir
        self.ca = make_ca(d, "ca")
        self.other_ca = make_ca(d, "otherca")
        self.server_cert, self.server_key = make_cert(d, "ca", "server", SERVER_EXT)
        self.client_cert, self.client_key = make_cert(d, "ca", "client", CLIENT_EXT)
        self.rogue_cert, self.rogue_key = make_cert(d, "otherca", "rogue", CLIENT_EXT)
        self.next_cert, self.next_key = make_cert(d, "otherca", "server2", SERVER_EXT)
        # What spawnd serves: copies, so that a rotation can replace them.
        self.live_cert = os.path.join(d, "live.crt")
        self.live_key = os.path.join(d, "live.key")
        shutil.copy(self.server_cert, self.live_cert)
        shutil.copy(self.server_key, self.live_key)

    def creds(self, ca=None, client=None):
        cert, key = client if client else (None, None)
        return grpc.ssl_channel_credentials(
            root_certificates=read(ca or self.ca),
            private_key=read(key) if key else None,
            certificate_chain=read(cert) if cert else None)

    def config(self, mtls=False, extra=""):
        tls = "tls: {cert: %s, key: %s%s}\n" % (
            h.yaml_str(self.live_cert), h.yaml_str(self.live_key),
            ", client_ca: %s" % h.yaml_str(self.ca) if mtls else "")
        return ('listen: ["127.0.0.1:0"%s]\n' % extra + tls +
                "targets:\n  echo: {function: builtin:echo}\n")


def health_over(address, creds):
    ch = grpc.secure_channel(address, creds) if creds is not None else grpc.insecure_channel(address)
    try:
        return std.HealthStub(ch).check("", timeout=5.0)
    except grpc.RpcError as e:
        return e.code()
    finally:
        ch.close()


class TlsTest(h.E2ETest):

    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise AssertionError("openssl is needed (tools/deps.sh installs it)")
        cls.pki = Pki()

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pki.dir, True)

    def test_tls_serves_and_plaintext_is_refused(self):
        pki = self.pki
        s = self.server(pki.config(), credentials=pki.creds())
        p = s.run("echo", "over", "tls")
        self.assertEqual(p.result, b"over tls")
        # A plaintext client gets no service from a TLS listener.
        self.assertEqual(health_over(s.address, None), grpc.StatusCode.UNAVAILABLE)
        # Nor does a client that trusts another CA.
        self.assertEqual(health_over(s.address, pki.creds(ca=pki.other_ca)),
                         grpc.StatusCode.UNAVAILABLE)

    def test_mtls_needs_a_client_certificate_from_the_ca(self):
        pki = self.pki
        s = self.server(pki.config(mtls=True),
                        credentials=pki.creds(client=(pki.client_cert, pki.client_key)))
        self.assertEqual(std.HealthStub(s.channel).check(""), "SERVING")
        self.assertEqual(health_over(s.address, pki.creds()), grpc.StatusCode.UNAVAILABLE,
                         "no client certificate")
        self.assertEqual(health_over(s.address, pki.creds(client=(pki.rogue_cert, pki.rogue_key))),
                         grpc.StatusCode.UNAVAILABLE, "a client certificate of another CA")
        self.assertEqual(health_over(s.address, pki.creds(client=(pki.client_cert, pki.client_key))),
                         "SERVING")
        # Without tokens, the record names the caller by its certificate.
        p = s.start_process("echo", "who")
        self.assertTrue(p.caller.startswith("x509:"), p.caller)
        self.assertIn("CN=client", p.caller)

    def test_certificates_rotate_on_sighup(self):
        pki = self.pki
        live = tempfile.mkdtemp(prefix="spawnd-tls-live-")
        self.addCleanup(shutil.rmtree, live, True)
        cert, key = os.path.join(live, "tls.crt"), os.path.join(live, "tls.key")
        shutil.copy(pki.server_cert, cert)
        shutil.copy(pki.server_key, key)
        config = ('listen: ["127.0.0.1:0"]\ntls: {cert: %s, key: %s}\n'
                  "targets:\n  echo: {function: builtin:echo}\n" % (h.yaml_str(cert), h.yaml_str(key)))
        s = self.server(config, credentials=pki.creds())
        # The new certificate is signed by the other CA: only clients that
        # trust it can tell the rotation happened.
        shutil.copy(pki.next_cert, cert)
        shutil.copy(pki.next_key, key)
        os.kill(s.pid, signal.SIGHUP)
        h.wait_until(lambda: any(r.get("msg", "").startswith("certificates re-read")
                                 for r in s.log_records()), h.RPC_TIMEOUT, "the reload")
        self.assertEqual(health_over(s.address, pki.creds(ca=pki.other_ca)), "SERVING")
        self.assertEqual(health_over(s.address, pki.creds()), grpc.StatusCode.UNAVAILABLE)
        # The connection made before the rotation goes on.
        self.assertEqual(std.HealthStub(s.channel).check(""), "SERVING")
        # A broken file at the next SIGHUP keeps the certificates that work.
        with open(key, "w") as f:
            f.write("not a key\n")
        os.kill(s.pid, signal.SIGHUP)
        h.wait_until(lambda: any(r.get("msg", "").startswith("SIGHUP: cannot re-read the tokens or certificates")
                                 for r in s.log_records()), h.RPC_TIMEOUT, "the failed reload")
        self.assertEqual(health_over(s.address, pki.creds(ca=pki.other_ca)), "SERVING")

    def test_unix_listener_beside_tls_is_plaintext(self):
        pki = self.pki
        d = tempfile.mkdtemp(prefix="spawnd-tls-", dir="/tmp")
        self.addCleanup(shutil.rmtree, d, True)
        sock = os.path.join(d, "s.sock")
        s = self.server(pki.config(extra=', "unix:%s"' % sock), credentials=pki.creds())
        self.assertEqual(health_over("unix:" + sock, None), "SERVING")
        self.assertEqual(std.HealthStub(s.channel).check(""), "SERVING")

    def test_missing_certificate_file_is_named(self):
        pki = self.pki
        path = os.path.join(pki.dir, "spawnd.yaml")
        with open(path, "w") as f:
            f.write('listen: ["127.0.0.1:0"]\ntls: {cert: %s, key: %s}\n'
                    "targets:\n  echo: {function: builtin:echo}\n"
                    % (h.yaml_str(pki.dir + "/nope.crt"), h.yaml_str(pki.server_key)))
        r = subprocess.run([h.spawnd_binary(), "--config", path], capture_output=True, text=True,
                           timeout=h.START_TIMEOUT, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("tls.cert %s/nope.crt: No such file or directory" % pki.dir, r.stderr)

    def test_spawnctl_over_tls_and_mtls(self):
        if SPAWNCTL is None:
            self.skipTest("spawnctl is not in this test's runfiles")
        pki = self.pki
        s = self.server(pki.config(mtls=True),
                        credentials=pki.creds(client=(pki.client_cert, pki.client_key)))

        def spawnctl(*args):
            return subprocess.run([SPAWNCTL, "--addr", s.address] + list(args), capture_output=True,
                                  text=True, timeout=h.RPC_TIMEOUT * 2, stdin=subprocess.DEVNULL)

        r = spawnctl("--cacert", pki.ca, "--cert", pki.client_cert, "--key", pki.client_key,
                     "start", "--watch", "echo", "hi")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = spawnctl("--cacert", pki.ca, "health")
        self.assertNotEqual(r.returncode, 0, "mTLS without a client certificate: %s" % r.stdout)
        r = spawnctl("health")
        self.assertNotEqual(r.returncode, 0, "plaintext to a TLS listener: %s" % r.stdout)
        r = spawnctl("--cert", pki.client_cert, "health")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("--cert and --key go together", r.stderr)


if __name__ == "__main__":
    h.main()
