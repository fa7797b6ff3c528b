/* spawnd's version (`spawnd --version`). Bumped by hand at a release; the
 * build line says what the binary was built with. */
#ifndef SPAWND_COMMON_VERSION_H
#define SPAWND_COMMON_VERSION_H

#define SPAWND_VERSION "0.9.0"

#ifdef SPAWND_ASAN
#define SPAWND_BUILD_KIND "asan+ubsan"
#else
#define SPAWND_BUILD_KIND "release"
#endif

#endif
