/* SPDX-License-Identifier: GPL-2.0 */
/*
 * conf.h - configuration files of the daemons (/etc/idn/idnd.conf,
 * agent.conf, dataplane.conf): INI "key = value" lines read with libinih.
 * A daemon's keys are its long options (the getopt_long table it already
 * has), so every flag has a key and one apply function serves both.
 */
#ifndef IDN_CONF_H
#define IDN_CONF_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

/* apply option @val (getopt's value) with @arg (NULL for a flag);
 * 0, or nonzero when the value is bad (@why may be set to a reason).
 * @arg lives as long as the process (it may be kept, as argv's strings). */
typedef int (*idn_conf_apply_fn)(void *ctx, int val, const char *arg, const char **why);

struct idn_conf {
	const char *path;
	const struct option *opts;	/* getopt_long table, {0}-terminated */
	idn_conf_apply_fn apply;
	void *ctx;
	/* keys that are no configuration (config, help, version): "unknown" */
	const char *const *skip;
	/* when set, only these keys are applied (a SIGHUP reload) */
	const char *const *only;
};

/*
 * Read @c->path. Flags (options without an argument) take yes/no, true/
 * false, on/off or a count (applied that many times). On error, @err gets
 * "FILE:LINE: what" and the return is negative: unknown key, a section
 * where none is read, a line without '=', a bad value, an unreadable file.
 */
int idn_conf_load(const struct idn_conf *c, char *err, size_t errlen);

/* Call @fn(ctx, key, value) for each key of section @section of @path
 * (dataplane.conf's [IFACE] and [router]); same errors as above.
 * Returns the number of keys found, or negative. */
int idn_conf_section(const char *path, const char *section,
		     int (*fn)(void *ctx, const char *key, const char *value, const char **why),
		     void *ctx, char *err, size_t errlen);

/* free every value handed to an apply function (none may be used after) */
void idn_conf_release(void);

#endif
