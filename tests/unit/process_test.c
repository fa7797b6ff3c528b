/* The process state table (registry/process.h, SPEC §2): every state x every
 * event, written out here from the spec rather than copied from process.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "service/registry/process.h"

#define P SPD_STATE_PENDING
#define R SPD_STATE_RUNNING
#define S SPD_STATE_SUCCEEDED
#define F SPD_STATE_FAILED
#define C SPD_STATE_CANCELED
#define X 0 /* cannot happen */

/* What the spec says, row by row. */
static const int expected[SPD_STATE_COUNT][SPD_EV_COUNT] = {
	/*       STARTED SUCCEEDED FAILED CANCELED DESTROY LOST */
	/* A pending process starts, fails to launch (FAILED/LAUNCH), is canceled
	 * by a destroy before it starts, or is lost with the launcher. It cannot
	 * succeed without having run. Destroy changes only flags. */
	[P] = {R, X, F, C, P, F},
	/* A running process cannot start again; it ends in any terminal state. */
	[R] = {X, S, F, C, R, F},
	/* Terminal states are final: destroy after the end only sets `destroyed`,
	 * and a launcher lost afterwards does not touch the record. */
	[S] = {X, X, X, X, S, S},
	[F] = {X, X, X, X, F, F},
	[C] = {X, X, X, X, C, C},
};

static const char *const event_names[SPD_EV_COUNT] = {
	"STARTED", "SUCCEEDED", "FAILED", "CANCELED", "DESTROY", "LOST",
};

static void every_state_every_event(void **state)
{
	(void)state;
	for (int s = P; s <= C; s++) {
		for (int e = 0; e < SPD_EV_COUNT; e++) {
			int got = (int)spd_state_next((spd_state)s, (spd_event)e);
			if (got != expected[s][e])
				fail_msg("%s + %s: got %d, want %d", spd_state_name((spd_state)s),
					 event_names[e], got, expected[s][e]);
		}
	}
}

static void destroy_before_start_stays_pending(void **state)
{
	(void)state;
	assert_int_equal(spd_state_next(P, SPD_EV_DESTROY), P);
	/* ... and the launcher's report then ends it CANCELED, not RUNNING. */
	assert_int_equal(spd_state_next(P, SPD_EV_CANCELED), C);
}

static void destroy_after_end_stays(void **state)
{
	(void)state;
	assert_int_equal(spd_state_next(S, SPD_EV_DESTROY), S);
	assert_int_equal(spd_state_next(F, SPD_EV_DESTROY), F);
	assert_int_equal(spd_state_next(C, SPD_EV_DESTROY), C);
}

static void impossible_events_return_zero(void **state)
{
	(void)state;
	assert_int_equal(spd_state_next(P, SPD_EV_SUCCEEDED), 0);
	assert_int_equal(spd_state_next(R, SPD_EV_STARTED), 0);
	assert_int_equal(spd_state_next(S, SPD_EV_FAILED), 0);
	assert_int_equal(spd_state_next(F, SPD_EV_SUCCEEDED), 0);
	assert_int_equal(spd_state_next(C, SPD_EV_STARTED), 0);
}

static void out_of_range_returns_zero(void **state)
{
	(void)state;
	assert_int_equal(spd_state_next((spd_state)0, SPD_EV_STARTED), 0);
	assert_int_equal(spd_state_next((spd_state)SPD_STATE_COUNT, SPD_EV_DESTROY), 0);
	assert_int_equal(spd_state_next((spd_state)-1, SPD_EV_DESTROY), 0);
	assert_int_equal(spd_state_next(R, SPD_EV_COUNT), 0);
	assert_int_equal(spd_state_next(R, (spd_event)-1), 0);
}

static void terminal(void **state)
{
	(void)state;
	assert_false(spd_state_terminal(P));
	assert_false(spd_state_terminal(R));
	assert_true(spd_state_terminal(S));
	assert_true(spd_state_terminal(F));
	assert_true(spd_state_terminal(C));
	assert_false(spd_state_terminal((spd_state)0));
	assert_false(spd_state_terminal((spd_state)SPD_STATE_COUNT));
}

static void names(void **state)
{
	(void)state;
	assert_string_equal(spd_state_name(P), "PENDING");
	assert_string_equal(spd_state_name(R), "RUNNING");
	assert_string_equal(spd_state_name(S), "SUCCEEDED");
	assert_string_equal(spd_state_name(F), "FAILED");
	assert_string_equal(spd_state_name(C), "CANCELED");
	/* Out of range: a name, never NULL nor a read past the table. */
	assert_string_equal(spd_state_name((spd_state)0), "UNSPECIFIED");
	assert_string_equal(spd_state_name((spd_state)SPD_STATE_COUNT), "UNSPECIFIED");
	assert_string_equal(spd_state_name((spd_state)-3), "UNSPECIFIED");
}

/* Every state change the table allows leads forward: nothing leaves a terminal
 * state, and nothing goes back to PENDING. */
static void no_way_back(void **state)
{
	(void)state;
	for (int s = P; s <= C; s++) {
		for (int e = 0; e < SPD_EV_COUNT; e++) {
			spd_state to = spd_state_next((spd_state)s, (spd_event)e);
			if (to == 0 || to == (spd_state)s)
				continue;
			assert_false(spd_state_terminal((spd_state)s));
			assert_int_not_equal(to, P);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_state_every_event),
		cmocka_unit_test(destroy_before_start_stays_pending),
		cmocka_unit_test(destroy_after_end_stays),
		cmocka_unit_test(impossible_events_return_zero),
		cmocka_unit_test(out_of_range_returns_zero),
		cmocka_unit_test(terminal),
		cmocka_unit_test(names),
		cmocka_unit_test(no_way_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
