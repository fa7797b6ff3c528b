/* grpc.health.v1.Health (SPEC §3 "Also served on the same port").
 *
 * Names: "" and "spawnd.v1.ProcessService" are the server; "spawnd.target.NAME"
 * is target NAME; "spawnd.store" is the store (SERVING while its writes work;
 * unknown when no store is configured); anything else is unknown (Check:
 * NOT_FOUND; Watch: streams SERVICE_UNKNOWN and stays open). The status comes from the registry
 * (spd_registry_health), and a Watch subscribes to its transitions.
 *
 * The service keeps every open Watch, so that the server can end them when it
 * stops: a Watch never ends by itself (the health protocol), and an open one
 * would hold up grpc_server_shutdown_and_notify for its whole grace period.
 */
#ifndef SPAWND_RPC_HEALTH_H
#define SPAWND_RPC_HEALTH_H

#include <grpc/grpc.h>

#include "service/registry/registry.h"

typedef struct spd_rpc_health spd_rpc_health;

/* The service's state for REG (borrowed: it must outlive the service). NULL on
 * allocation failure. */
spd_rpc_health *spd_rpc_health_create(spd_registry *reg);

/* Ends every open Watch and every later one: a subscriber that last heard
 * SERVING hears NOT_SERVING first, then the stream ends with UNAVAILABLE
 * ("spawnd is shutting down") — the status a client of a server going away
 * expects, and one that health clients (grpc-go, Kubernetes) retry with
 * backoff rather than treat as a protocol error. Call before
 * grpc_server_shutdown_and_notify. Any thread. */
void spd_rpc_health_stop(spd_rpc_health *h);

/* Frees H. Call after the server and its CQ are gone (no Watch is left). */
void spd_rpc_health_destroy(spd_rpc_health *h);

#endif
