"""Clients of the standard services spawnd serves beside its API:
grpc.health.v1.Health and grpc.reflection.v1(alpha).ServerReflection.

Messages are generated at test time from the vendored protos with the system
`protoc --python_out` and loaded by file path, as spawnd_harness does (a
generated `grpc/` package on sys.path would shadow grpcio: notes §12.8). The
stubs are written by hand: Debian has neither grpcio-health-checking nor
grpcio-reflection.
"""

import atexit
import os
import shutil
import subprocess
import tempfile
import threading

import spawnd_harness as h

_MODULES = {}
_LOCK = threading.Lock()


def _generated(proto, name):
    with _LOCK:
        if proto in _MODULES:
            return _MODULES[proto]
        out = tempfile.mkdtemp(prefix="spawnd-e2e-std-")
        atexit.register(shutil.rmtree, out, True)
        protoc = shutil.which("protoc") or "/usr/bin/protoc"
        cmd = [protoc, "-I", h.proto_root(), "--python_out=" + out, proto]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), r.returncode, r.stderr))
        mod = h._load_module(name, os.path.join(out, proto.replace(".proto", "_pb2.py")))
        _MODULES[proto] = mod
        return mod


def health_pb():
    return _generated("grpc/health/v1/health.proto", "spawnd_e2e_health_pb2")


def reflection_pb():
    return _generated("grpc/reflection/v1/reflection.proto", "spawnd_e2e_reflection_pb2")


def status_name(resp):
    """SERVING / NOT_SERVING / SERVICE_UNKNOWN / UNKNOWN of a HealthCheckResponse."""
    return health_pb().HealthCheckResponse.ServingStatus.Name(resp.status)


class HealthStub:
    def __init__(self, channel):
        m = health_pb()
        self.Check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=m.HealthCheckRequest.SerializeToString,
            response_deserializer=m.HealthCheckResponse.FromString)
        self.Watch = channel.unary_stream(
            "/grpc.health.v1.Health/Watch",
            request_serializer=m.HealthCheckRequest.SerializeToString,
            response_deserializer=m.HealthCheckResponse.FromString)

    def check(self, service, timeout=h.RPC_TIMEOUT):
        return status_name(self.Check(health_pb().HealthCheckRequest(service=service), timeout=timeout))

    def watch(self, service, timeout=h.RPC_TIMEOUT):
        return self.Watch(health_pb().HealthCheckRequest(service=service), timeout=timeout)


def reflection_stub(channel, version="v1"):
    """ServerReflectionInfo of VERSION (v1 or v1alpha: wire-identical messages)."""
    m = reflection_pb()
    return channel.stream_stream(
        "/grpc.reflection.%s.ServerReflection/ServerReflectionInfo" % version,
        request_serializer=m.ServerReflectionRequest.SerializeToString,
        response_deserializer=m.ServerReflectionResponse.FromString)
