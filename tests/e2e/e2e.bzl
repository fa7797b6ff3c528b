"""One end-to-end test file as an sh_test: tests/e2e/run_py.sh runs NAME.py
with Debian's python3 against the real spawnd."""

E2E_DATA = [
    "//tests/e2e:spawnd_harness.py",
    "//config:default.yaml",
    "//proto:api_protos",
    "//proto:google/protobuf/duration.proto",
    "//proto:google/protobuf/timestamp.proto",
    "//service/front:spawnd",
    "//service/front:spawnd-worker",
    "//service/target:libspawnd_samples.so",
]

# What the tests of the standard services (std_services.py) need besides.
STD_SERVICES = [
    "std_services.py",
    "//proto:grpc/health/v1/health.proto",
    "//proto:grpc/reflection/v1/reflection.proto",
]

def e2e_test(name, data = [], tags = [], script = None, args = []):
    """SCRIPT defaults to NAME.py; DATA and TAGS add to the common ones."""
    script = script or (name + ".py")
    native.sh_test(
        name = name,
        size = "medium",
        srcs = ["run_py.sh"],
        args = ["$(location %s)" % script] + args,
        data = E2E_DATA + [script] + data,
        tags = ["e2e"] + tags,
    )
