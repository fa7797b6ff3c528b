/* Validation: the checks that look at more than one value, run once the values
 * they compare are parsed (a target's kind against its other keys, max_running
 * against the descriptor limit, listen addresses against common/address.h), and
 * the refusal of what parses but is not built yet (tls, auth). */
#include "service/config/config_impl.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "service/common/address.h"

/* user/group: they must exist, and spawnd must be able to switch to them
 * (root can; anyone else only to what it already is). Reported at the
 * target, under the key's path. */
static int check_identity(struct loader *ld, const struct pair *p, const spd_target_config *t)
{
	char child[CONFIG_KEY_MAX];
	uid_t euid = geteuid();

	if (t->user != NULL) {
		struct passwd *pw = getpwnam(t->user);
		spd__cfg_key_child(child, sizeof child, p->path, "user", strlen("user"));
		if (pw == NULL)
			return spd__cfg_fail(ld, p->value, child, "no such user '%.64s'", t->user);
		if (euid != 0 && pw->pw_uid != euid)
			return spd__cfg_fail(ld, p->value, child,
					     "spawnd runs as uid %d, not root: it cannot switch to user "
					     "'%.64s' (uid %d)",
					     (int)euid, t->user, (int)pw->pw_uid);
	}
	if (t->group != NULL) {
		struct group *gr = getgrnam(t->group);
		gid_t mine[256];
		int n = euid != 0 ? getgroups(256, mine) : 0;
		bool member = euid == 0;
		spd__cfg_key_child(child, sizeof child, p->path, "group", strlen("group"));
		if (gr == NULL)
			return spd__cfg_fail(ld, p->value, child, "no such group '%.64s'", t->group);
		member = member || gr->gr_gid == getegid();
		for (int i = 0; !member && i < n; i++)
			member = mine[i] == gr->gr_gid;
		if (!member)
			return spd__cfg_fail(ld, p->value, child,
					     "spawnd runs as uid %d, not root: it cannot switch to group "
					     "'%.64s' (gid %d)",
					     (int)euid, t->group, (int)gr->gr_gid);
	}
	return 0;
}

int spd__cfg_check_target(struct loader *ld, const struct pair *p, const spd_target_config *t,
			  const struct target_seen *seen, const yaml_node_t *kind_key,
			  const yaml_node_t *allow_args_key)
{
	const yaml_node_t *method = seen->limits_set[LIMIT_START_METHOD];
	char child[CONFIG_KEY_MAX];

	if (kind_key == NULL)
		return spd__cfg_fail(ld, p->value, p->path, "needs function or exec");
	if (t->kind == SPD_TARGET_FUNCTION && allow_args_key != NULL) {
		spd__cfg_key_child(child, sizeof child, p->path, "allow_args", strlen("allow_args"));
		return spd__cfg_fail(ld, allow_args_key, child, "only for exec targets");
	}
	if (t->kind == SPD_TARGET_EXEC && method != NULL &&
	    t->limits.start_method != SPD_START_SPAWN) {
		spd__cfg_key_child(child, sizeof child, p->path, "start_method",
				   strlen("start_method"));
		return spd__cfg_fail(ld, method, child, "exec targets always use spawn");
	}
	return check_identity(ld, p, t);
}

int spd__cfg_check_listen(struct loader *ld, const yaml_node_t *item, const char *path,
			  size_t i, const char *s)
{
	char why[SPD_CONFIG_ERR_MAX];
	spd_address a;

	(void)i;
	if (s[0] == '\0')
		return spd__cfg_fail(ld, item, path, "must not be empty");
	if (spd_address_parse(s, &a, why, sizeof why) < 0)
		return spd__cfg_fail(ld, item, path, "%s", why);
	return 0;
}

int spd__cfg_check_metrics_listen(struct loader *ld, const yaml_node_t *node, const char *path,
				  const char *s)
{
	char why[SPD_CONFIG_ERR_MAX];
	spd_address a;

	if (spd_address_parse(s, &a, why, sizeof why) < 0)
		return spd__cfg_fail(ld, node, path, "%s", why);
	if (a.kind != SPD_ADDRESS_TCP)
		return spd__cfg_fail(ld, node, path,
				     "must be HOST:PORT (the metrics listener is plain HTTP over "
				     "TCP), e.g. \"127.0.0.1:9464\"");
	return 0;
}

/* The launcher holds SPD_LAUNCHER_FDS_PER_PROCESS descriptors per running
 * process and raises its soft RLIMIT_NOFILE to the hard one (launcher.h): a
 * max_running that the hard limit cannot carry would fail starts with EMFILE. */
int spd__cfg_check_fd_limit(struct loader *ld)
{
	const spd_config *cfg = ld->cfg;
	uint64_t need = spd_config_launcher_fds(cfg);
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_max == RLIM_INFINITY ||
	    need <= (uint64_t)rl.rlim_max)
		return 0;
	if (spd_config_idle_max(cfg) > 0) {
		spd__cfg_printf(ld->err, SPD_CONFIG_ERR_MAX,
			   "%s: max_idle: max_running %u and %u pre-started children need %llu "
			   "file descriptors in the launcher, but the hard limit (RLIMIT_NOFILE) "
			   "is %llu: set a lower max_running, prestart or max_idle, or raise the "
			   "hard limit",
			   ld->name, cfg->max_running, spd_config_idle_max(cfg),
			   (unsigned long long)need, (unsigned long long)rl.rlim_max);
		return -EINVAL;
	}
	if (ld->max_running == NULL) {
		spd__cfg_printf(ld->err, SPD_CONFIG_ERR_MAX,
			   "%s: max_running: the default %u needs %llu file descriptors in the "
			   "launcher, but the hard limit (RLIMIT_NOFILE) is %llu: set a lower "
			   "max_running or raise the hard limit",
			   ld->name, cfg->max_running, (unsigned long long)need,
			   (unsigned long long)rl.rlim_max);
		return -EINVAL;
	}
	return spd__cfg_fail(ld, ld->max_running, "max_running",
			   "%u needs %llu file descriptors in the launcher, but the hard limit "
			   "(RLIMIT_NOFILE) is %llu: set a lower max_running or raise the hard "
			   "limit",
			   cfg->max_running, (unsigned long long)need,
			   (unsigned long long)rl.rlim_max);
}

