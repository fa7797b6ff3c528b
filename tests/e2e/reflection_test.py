"""Server reflection (SPEC §3 "Also served on the same port"), from a raw
ServerReflectionInfo stream: the services, each file with its transitive
imports as protoc wrote them, NOT_FOUND errors, and the echoed request."""

import grpc
from google.protobuf import descriptor_pb2

import spawnd_harness as h
import std_services as std

SERVICES = {
    "spawnd.v1.ProcessService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}
SPAWND_FILES = ["spawnd/v1/spawnd.proto", "google/protobuf/duration.proto",
                "google/protobuf/timestamp.proto"]


def files_of(resp):
    return [descriptor_pb2.FileDescriptorProto.FromString(b)
            for b in resp.file_descriptor_response.file_descriptor_proto]


class ReflectionTest(h.E2ETest):

    def ask(self, s, requests, version="v1"):
        """Sends REQUESTS on one stream; returns one response per request."""
        call = std.reflection_stub(s.channel, version)
        resps = list(call(iter(requests), timeout=h.RPC_TIMEOUT))
        self.assertEqual(len(resps), len(requests), "one response per request")
        return resps

    def test_list_services_on_both_versions(self):
        s = self.server()
        m = std.reflection_pb()
        for version in ("v1", "v1alpha"):
            (r,) = self.ask(s, [m.ServerReflectionRequest(list_services="*")], version)
            self.assertEqual(r.WhichOneof("message_response"), "list_services_response")
            self.assertEqual({x.name for x in r.list_services_response.service}, SERVICES, version)

    def test_file_containing_symbol_returns_the_file_and_its_imports(self):
        s = self.server()
        m = std.reflection_pb()
        req = m.ServerReflectionRequest(host="example:1", file_containing_symbol="spawnd.v1.ProcessService")
        for symbol in ("spawnd.v1.ProcessService", "spawnd.v1.ProcessService.StartProcess",
                       "spawnd.v1.StartProcessRequest", "spawnd.v1.Process.state"):
            req = m.ServerReflectionRequest(host="example:1", file_containing_symbol=symbol)
            (r,) = self.ask(s, [req])
            self.assertEqual(r.valid_host, "example:1")
            self.assertEqual(r.original_request, req)
            files = files_of(r)
            self.assertEqual([f.name for f in files][0], "spawnd/v1/spawnd.proto", symbol)
            self.assertEqual(sorted(f.name for f in files), sorted(SPAWND_FILES), symbol)
        spawnd = files[0]
        self.assertIn("ProcessService", [sv.name for sv in spawnd.service])
        self.assertEqual(set(spawnd.dependency), set(SPAWND_FILES[1:]))
        # Source info is kept, so that clients can show the comments.
        self.assertTrue(spawnd.source_code_info.location, "descriptors carry source info")

    def test_file_by_filename_and_well_known_types(self):
        s = self.server()
        m = std.reflection_pb()
        r1, r2 = self.ask(s, [
            m.ServerReflectionRequest(file_by_filename="grpc/health/v1/health.proto"),
            m.ServerReflectionRequest(file_containing_symbol="google.protobuf.Duration"),
        ])
        self.assertEqual([f.name for f in files_of(r1)], ["grpc/health/v1/health.proto"])
        self.assertEqual([f.name for f in files_of(r2)], ["google/protobuf/duration.proto"])

    def test_unknown_symbol_file_and_type_are_not_found(self):
        s = self.server()
        m = std.reflection_pb()
        reqs = [
            m.ServerReflectionRequest(file_containing_symbol="spawnd.v1.Nope"),
            m.ServerReflectionRequest(file_by_filename="nope.proto"),
            m.ServerReflectionRequest(all_extension_numbers_of_type="spawnd.v1.Nope"),
            m.ServerReflectionRequest(file_containing_extension=m.ExtensionRequest(
                containing_type="spawnd.v1.Process", extension_number=100)),
        ]
        for req, r in zip(reqs, self.ask(s, reqs)):
            self.assertEqual(r.WhichOneof("message_response"), "error_response", h.show(r))
            self.assertEqual(r.error_response.error_code, 5, h.show(r))
            self.assertEqual(r.original_request, req)
        # The stream survives errors, and known types have no extensions.
        (r,) = self.ask(s, [m.ServerReflectionRequest(all_extension_numbers_of_type="spawnd.v1.Process")])
        self.assertEqual(r.all_extension_numbers_response.base_type_name, "spawnd.v1.Process")
        self.assertEqual(list(r.all_extension_numbers_response.extension_number), [])

    def test_garbage_request_is_invalid_argument(self):
        s = self.server()
        call = s.channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        with self.assertRaises(grpc.RpcError) as cm:
            list(call(iter([b"\xff\xff\xff"]), timeout=h.RPC_TIMEOUT))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertServing(s)


if __name__ == "__main__":
    h.main()
