"""Compiler flags for spawnd's own code (generated code does not get them)."""

SPAWND_COPTS = [
    "-std=c11",
    "-D_GNU_SOURCE",
    "-O2",
    "-g",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wstrict-prototypes",
    "-Wvla",
    "-Wwrite-strings",
    "-Wformat=2",
    "-Wno-format-nonliteral",
    "-U_FORTIFY_SOURCE",
    "-D_FORTIFY_SOURCE=2",
    "-fno-strict-aliasing",
]
